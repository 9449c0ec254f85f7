"""The re-survey ("know the result"): once per resolved case, links that survive mail scanners, the result.

Real parts: the job runner (run_due, with a test hook that "kills" it between steps), the aiosmtpd
sink for the emails, and the Flask test client for the survey page.
"""

from __future__ import annotations

import email
import re
import threading
import time
from datetime import timedelta
from email.policy import default as default_policy

import pytest
import sqlalchemy as sa

from kb import jobs
from kb.autoreply import links
from kb.db import session_scope
from kb.followup import cases, surveys
from kb.followup.models import Case, CaseEvent, Signal, Survey
from kb.followup.signals import record_signal
from kb.i18n import TRANSLATIONS_DIR, compiling
from kb.jobs.models import Job
from kb.models import utcnow
from tests.conftest import TEST_SECRET, csrf_token_from

CUSTOMER = "ana@example.org"
BASE_URL = "http://kb.example"


class Killed(Exception):
    """The test's "kill -9": the runner stops here (run_one re-raises it)."""

    stops_runner = True


@pytest.fixture
def survey_app(app_factory, smtp_sink):
    """An app that mails the sink, with a short lease so a "killed" runner's job is taken over soon."""
    return app_factory(**smtp_sink.settings(BASE_URL=BASE_URL, JOBS_LEASE_SECONDS=1))


def resolved_case(app, *, address: str = CUSTOMER, lang: str = "", thread: str = "", score: int | None = None,
                  article_id: int | None = None, key: str = "vote:1") -> int:
    """A case opened by a signal and resolved with a root cause; its id. The re-survey is scheduled."""
    with session_scope(app) as session:
        result = record_signal(session, key=key, source="vote", settings=app.config, address=address, name="Ana",
                               words="It did not help.", score=score, article_id=article_id, lang=lang,
                               thread_message_id=thread, thread_subject="My parcel is late" if thread else "")
        session.commit()
        assert cases.change_state(session, result.case, "resolve", agent_id=None, settings=app.config,
                                  root_cause="delivery")
        return result.case.id


def make_due(app, case_id: int) -> None:
    """Move the re-survey's time to now (as if KB_RESURVEY_DELAY_HOURS had passed)."""
    with session_scope(app) as session:
        session.execute(sa.update(Job).where(Job.kind == surveys.JOB_KIND, Job.key == f"case:{case_id}")
                        .values(run_at=utcnow() - timedelta(seconds=1)))


def surveys_to(sink, address: str = CUSTOMER) -> list[email.message.EmailMessage]:
    """The survey emails the sink received for ``address`` (alerts to the team are not counted)."""
    found = []
    for mail in sink.messages:
        message = email.message_from_bytes(mail.data, policy=default_policy)
        if address in mail.rcpt_tos:
            found.append(message)
    return found


def text_of(message) -> str:
    """The plain-text part."""
    return message.get_body(("plain",)).get_content()


def survey_links(message) -> list[str]:
    """Every survey link of the email, as paths for the test client."""
    urls = re.findall(r"https?://\S+", text_of(message))
    return [url.removeprefix(BASE_URL) for url in urls if "/survey/" in url]


def the_survey(app, case_id: int) -> Survey | None:
    """The case's Survey row, read fresh."""
    with session_scope(app) as session:
        survey = session.scalar(sa.select(Survey).where(Survey.case_id == case_id))
        if survey is not None:
            session.expunge(survey)
        return survey


def survey_events(app, case_id: int) -> list[str]:
    """The notes of the case's "survey" events, oldest first."""
    with session_scope(app) as session:
        return list(session.scalars(sa.select(CaseEvent.note).where(
            CaseEvent.case_id == case_id, CaseEvent.kind == "survey").order_by(CaseEvent.id)))


def sent_survey(app, sink, **case_options) -> tuple[int, list[str]]:
    """A resolved case whose survey went out: (case id, the email's survey links)."""
    case_id = resolved_case(app, **case_options)
    make_due(app, case_id)
    jobs.run_due(app)
    [message] = surveys_to(sink)
    return case_id, survey_links(message)


# --- sending: once, after the delay, to whom may be answered -------------------------------------

def test_the_survey_goes_out_once_after_the_delay_threaded_on_the_customers_email(survey_app, smtp_sink):
    case_id = resolved_case(survey_app, thread="<q1@customer.example>")
    jobs.run_due(survey_app)
    assert surveys_to(smtp_sink) == []  # KB_RESURVEY_DELAY_HOURS (24) has not passed
    assert the_survey(survey_app, case_id) is None
    make_due(survey_app, case_id)
    assert jobs.run_due(survey_app)["done"] >= 1
    jobs.run_due(survey_app)
    [message] = surveys_to(smtp_sink)
    assert message["In-Reply-To"] == "<q1@customer.example>"
    assert "<q1@customer.example>" in message["References"]
    assert message["Subject"] == "Re: My parcel is late"
    assert message["From"].addresses[0].addr_spec == "support@kb.example"
    assert message["Auto-Submitted"] == "auto-generated"
    paths = survey_links(message)
    assert len(paths) == 6 and len({p.split("?")[0] for p in paths}) == 1  # one per score, one to the form
    assert [p.rsplit("=", 1)[1] for p in paths if "?score=" in p] == ["1", "2", "3", "4", "5"]
    assert all(p.startswith("/en/survey/") for p in paths)
    survey = the_survey(survey_app, case_id)
    assert (survey.state, survey.address, survey.sent_at is not None) == ("sent", CUSTOMER, True)
    with session_scope(survey_app) as session:
        event = session.scalar(sa.select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == "survey"))
        assert event.message_id == message["Message-ID"]


def test_a_delay_of_zero_sends_at_the_next_run(app_factory, smtp_sink):
    app = app_factory(**smtp_sink.settings(BASE_URL=BASE_URL, RESURVEY_DELAY_HOURS=0))
    resolved_case(app)
    jobs.run_due(app)
    assert len(surveys_to(smtp_sink)) == 1
    assert message_subject(surveys_to(smtp_sink)[0]) == "How did we do?"  # no email to thread on


def message_subject(message) -> str:
    """The decoded Subject."""
    return str(message["Subject"])


@pytest.mark.parametrize("step", ["claimed", "prepared", "sent", "done"])
def test_a_runner_killed_between_steps_sends_the_survey_once(survey_app, smtp_sink, step):
    case_id = resolved_case(survey_app)
    make_due(survey_app, case_id)

    def kill(name, job):
        if name == step and job.kind == surveys.JOB_KIND:
            raise Killed(step)

    with pytest.raises(Killed):
        jobs.run_due(survey_app, hook=kill)
    time.sleep(1.2)  # the dead runner's lease (JOBS_LEASE_SECONDS=1) runs out; a new runner takes over
    jobs.run_due(survey_app)
    jobs.run_due(survey_app)
    messages = surveys_to(smtp_sink)
    assert len(messages) == 1
    assert the_survey(survey_app, case_id).state == "sent"
    assert survey_events(survey_app, case_id) == ["Satisfaction survey sent."]
    with session_scope(survey_app) as session:
        job = session.scalar(sa.select(Job).where(Job.kind == surveys.JOB_KIND))
        assert job.state == "done" and job.message_id == messages[0]["Message-ID"]


def test_a_refused_send_is_retried_and_still_sends_once(app_factory, smtp_sink):
    app = app_factory(**smtp_sink.settings(BASE_URL=BASE_URL, JOBS_RETRY_SECONDS=0.01))
    case_id = resolved_case(app)
    make_due(app, case_id)
    smtp_sink.refuse = "451 4.3.0 try again later"
    jobs.run_due(app)
    assert surveys_to(smtp_sink) == [] and the_survey(app, case_id).state == "scheduled"
    smtp_sink.refuse = None
    time.sleep(0.05)
    jobs.run_due(app)
    jobs.run_due(app)
    assert len(surveys_to(smtp_sink)) == 1
    assert survey_events(app, case_id) == ["Satisfaction survey sent."]


@pytest.mark.parametrize("address", ["no-reply@shop.example", "mailer-daemon@mx.example", "support@kb.example",
                                     "Support+cases@KB.example", "bounces+123=x@list.example"])
def test_no_survey_to_an_address_that_must_not_be_answered(survey_app, smtp_sink, address):
    case_id = resolved_case(survey_app, address=address)
    make_due(survey_app, case_id)
    jobs.run_due(survey_app)
    assert smtp_sink.messages == []
    assert the_survey(survey_app, case_id) is None
    assert surveys.address_problem(address, survey_app.config)  # the auto-responder's rules say why


def test_the_address_rules_let_a_customer_through(survey_app):
    assert surveys.address_problem("bounce.fitness@gym.example", survey_app.config) is None
    assert surveys.address_problem(CUSTOMER, survey_app.config) is None


def test_no_survey_for_a_case_without_an_email(survey_app, smtp_sink, make_article):
    article = make_article("Tracking a parcel")
    case_id = resolved_case(survey_app, address="", article_id=article.id)
    make_due(survey_app, case_id)
    jobs.run_due(survey_app)
    assert smtp_sink.messages == [] and the_survey(survey_app, case_id) is None


def test_no_survey_for_a_case_reopened_before_it_was_due(survey_app, smtp_sink):
    case_id = resolved_case(survey_app)
    with session_scope(survey_app) as session:
        assert cases.change_state(session, session.get(Case, case_id), "reopen", agent_id=None, note="called back")
    make_due(survey_app, case_id)
    jobs.run_due(survey_app)
    assert surveys_to(smtp_sink) == [] and the_survey(survey_app, case_id) is None


def test_a_survey_prepared_by_a_dead_runner_is_cancelled_when_the_case_reopened(survey_app, smtp_sink):
    case_id = resolved_case(survey_app)
    make_due(survey_app, case_id)

    def kill(name, job):
        if name == "prepared":
            raise Killed(name)

    with pytest.raises(Killed):
        jobs.run_due(survey_app, hook=kill)
    assert the_survey(survey_app, case_id).state == "scheduled"
    with session_scope(survey_app) as session:
        assert cases.change_state(session, session.get(Case, case_id), "reopen", agent_id=None)
    time.sleep(1.2)
    jobs.run_due(survey_app)
    assert surveys_to(smtp_sink) == []
    assert the_survey(survey_app, case_id).state == "cancelled"


# --- the links: GET shows, POST records ----------------------------------------------------------

def test_a_scanner_opening_every_link_records_nothing(survey_app, smtp_sink):
    case_id, paths = sent_survey(survey_app, smtp_sink)
    client = survey_app.test_client()
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200
        assert b'name="score"' in response.data
    survey = the_survey(survey_app, case_id)
    assert (survey.state, survey.score, survey.answered_at) == ("sent", None, None)
    with session_scope(survey_app) as session:
        assert session.get(Case, case_id).score_after is None
    assert survey_events(survey_app, case_id) == ["Satisfaction survey sent."]


def test_the_clicked_score_is_chosen_on_the_page(survey_app, smtp_sink):
    _case_id, paths = sent_survey(survey_app, smtp_sink)
    page = survey_app.test_client().get(next(p for p in paths if p.endswith("score=4"))).get_data(as_text=True)
    assert re.search(r'value="4"\s+checked', page)
    assert not re.search(r'value="[1235]"\s+checked', page)
    general = survey_app.test_client().get(next(p for p in paths if "?" not in p)).get_data(as_text=True)
    assert "checked" not in general and "<textarea" in general


def answer(client, path: str, score, comment: str = ""):
    """Open the survey page, then submit it as the customer's browser does."""
    page = client.get(path)
    return client.post(path.split("?")[0], data={"csrf_token": csrf_token_from(page.get_data(as_text=True)),
                                                 "score": score, "comment": comment})


def test_the_customers_submit_records_the_score_and_comment_once(survey_app, smtp_sink):
    case_id, paths = sent_survey(survey_app, smtp_sink, score=2)
    client = survey_app.test_client()
    second_tab = csrf_token_from(client.get(paths[0]).get_data(as_text=True))  # opened before answering
    response = answer(client, paths[3], 4, "Quick and friendly.")
    assert response.status_code == 200 and b"Thank you for your answer" in response.data
    survey = the_survey(survey_app, case_id)
    assert (survey.state, survey.score, survey.comment) == ("answered", 4, "Quick and friendly.")
    with session_scope(survey_app) as session:
        case = session.get(Case, case_id)
        assert (case.score_before, case.score_after, case.state) == (2, 4, "resolved")
        assert session.scalar(sa.select(sa.func.count()).select_from(Signal)) == 1  # no new signal for a 4
    assert survey_events(survey_app, case_id) == ["Satisfaction survey sent.", "Survey answered: 4 out of 5."]
    again = client.post(paths[0].split("?")[0], data={"csrf_token": second_tab, "score": 1, "comment": "changed"})
    assert again.status_code == 200 and b"We already have your answer" in again.data
    assert (the_survey(survey_app, case_id).score, the_survey(survey_app, case_id).comment) == (4, "Quick and friendly.")
    assert len(survey_events(survey_app, case_id)) == 2
    assert b"We already have your answer" in client.get(paths[0]).data


def test_a_submit_without_csrf_or_score_records_nothing(survey_app, smtp_sink):
    case_id, paths = sent_survey(survey_app, smtp_sink)
    client = survey_app.test_client()
    assert client.post(paths[5].split("?")[0], data={"score": 5}).status_code == 400  # no CSRF token
    response = answer(client, paths[5], "", "no score chosen")
    assert response.status_code == 400 and b"Choose a score from 1 to 5." in response.data
    assert b"no score chosen" in response.data  # the comment is kept in the form
    assert answer(client, paths[5], 9).status_code == 400
    assert the_survey(survey_app, case_id).state == "sent"


def test_a_low_score_reopens_the_case_and_opens_a_signal(survey_app, smtp_sink):
    case_id, paths = sent_survey(survey_app, smtp_sink, thread="<q2@customer.example>")
    response = answer(survey_app.test_client(), paths[1], 2, "Still no parcel.")
    assert b"a person from our team will contact you" in response.data
    survey = the_survey(survey_app, case_id)
    with session_scope(survey_app) as session:
        case = session.get(Case, case_id)
        assert (case.state, case.score_after, case.open_key) == ("reopened", 2, f"customer:{case.customer_id}")
        signal = session.scalar(sa.select(Signal).where(Signal.key == f"survey:{survey.id}"))
        assert (signal.source, signal.score, signal.words, signal.case_id) == ("survey", 2, "Still no parcel.", case_id)
        assert session.scalar(sa.select(Job).where(Job.kind == "followup.alert", Job.key == f"signal:{signal.id}"))


# --- tokens: signed, tied to the survey, expiring ------------------------------------------------

def test_tampered_tokens_get_a_400_page(survey_app, smtp_sink):
    case_id, paths = sent_survey(survey_app, smtp_sink)
    path = paths[5]
    token = path.rsplit("/", 1)[1]
    altered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    feedback = links.make_token(TEST_SECRET, 1, links.SOLVED)  # signed by kb, but for another purpose
    other_case = surveys._serializer(TEST_SECRET).dumps({"c": case_id + 1, "s": the_survey(survey_app, case_id).id})
    client = survey_app.test_client()
    for bad in (altered, token[:20], feedback):
        response = client.get(f"/en/survey/{bad}")
        assert response.status_code == 400 and b"not valid" in response.data
        assert client.post(f"/en/survey/{bad}", data={"score": 5}).status_code == 400
    assert client.get(f"/en/survey/{other_case}").status_code == 404  # signed, but not this case's survey
    assert the_survey(survey_app, case_id).state == "sent"


def test_expired_links_get_a_410_page_with_the_support_address(survey_app, smtp_sink):
    case_id, paths = sent_survey(survey_app, smtp_sink)
    client = survey_app.test_client()
    page = client.get(paths[4])
    assert page.status_code == 200
    with session_scope(survey_app) as session:  # KB_SURVEY_LINK_DAYS (14) after sending have passed
        session.execute(sa.update(Survey).where(Survey.case_id == case_id)
                        .values(sent_at=utcnow() - timedelta(days=14, minutes=1)))
    response = client.get(paths[4])
    assert response.status_code == 410
    assert b"expired" in response.data and b"support@kb.example" in response.data and b"14 days" in response.data
    late = client.post(paths[4].split("?")[0], data={"csrf_token": csrf_token_from(page.get_data(as_text=True)),
                                                     "score": 5})
    assert late.status_code == 410
    assert the_survey(survey_app, case_id).state == "sent"


def test_tokens_are_stable_and_read_back(survey_app):
    survey = Survey(id=7, case_id=3)
    token = surveys.make_survey_token(TEST_SECRET, survey)
    assert token == surveys.make_survey_token(TEST_SECRET, survey)  # a retried job writes the same links
    assert surveys.read_survey_token(TEST_SECRET, token) == (3, 7)
    with pytest.raises(surveys.InvalidSurveyLink):
        surveys.read_survey_token("another-secret-key-that-is-long-enough-000", token)


# --- languages ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("lang", "subject", "question"), [
    ("zh", "我们做得怎么样？", "您对得到的帮助满意吗？"),
    ("nb", "Hvordan gjorde vi det?", "Hvor fornøyd er du med hjelpen du fikk?"),
])
def test_the_survey_speaks_the_cases_language(app_factory, smtp_sink, lang, subject, question):
    app = app_factory(**smtp_sink.settings(BASE_URL=BASE_URL))
    case_id, paths = sent_survey(app, smtp_sink, lang=lang)
    [message] = surveys_to(smtp_sink)
    assert message_subject(message) == subject and message["Content-Language"] == lang
    assert question in text_of(message)
    assert all(path.startswith(f"/{lang}/survey/") for path in paths)
    client = app.test_client()
    page = client.get(paths[2]).get_data(as_text=True)
    assert f'lang="{lang}"' in page and question in page
    done = answer(client, paths[4], 5).get_data(as_text=True)
    catalog = compiling.read_catalog(compiling.po_files(TRANSLATIONS_DIR)[lang])
    assert catalog["Thank you for your answer! It helps us improve."].string in done
    assert the_survey(app, case_id).score == 5
