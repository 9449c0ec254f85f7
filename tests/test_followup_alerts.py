"""Follow-up alerts and escalations on real parts: the aiosmtpd sink, a webhook server in a thread,
the job runner (its thread, or run_due driven by the test), SQLite.

Business hours are pure functions, tested across zones and DST changes in test_followup_hours.py.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
import sqlalchemy as sa

from kb import articles as kb_articles
from kb import jobs
from kb.db import session_scope
from kb.followup import cases, signals, webhook
from kb.followup.models import Case, CaseEvent
from kb.jobs.models import Job
from kb.jobs.runner import close_app as stop_runner
from kb.models import Agent, utcnow
from tests.agent_helpers import make_agent
from tests.servers import free_port
from tests.webhookserver import webhook_server  # noqa: F401  (the fixture)

WORDS = "The reset link in the article expired before I could use it. Secret-ish words 7731."
TEAM = "team@kb.example"


@pytest.fixture
def make_app(app_factory, smtp_sink, webhook_server):
    """Apps sending to the sink and the webhook server; runner threads stopped at the end."""
    made = []

    def factory(**overrides):
        settings = {**smtp_sink.settings(), "TEAM_ADDRESS": TEAM, "ALERT_WEBHOOK_URL": webhook_server.url,
                    "JOBS_RETRY_SECONDS": 0.01, "BASE_URL": "https://help.example.com", **overrides}
        app = app_factory(**settings)
        made.append(app)
        return app

    yield factory
    for app in made:
        stop_runner(app)


def record(app, key: str = "vote:1", **fields) -> tuple[int, int]:
    """record_signal and commit; the case's and the signal's ids."""
    fields = {"source": "vote", "address": "ann@customer.example", "name": "Ann Lee", "words": WORDS,
              "reason": "not_answered", **fields}
    with session_scope(app) as session:
        result = signals.record_signal(session, key=key, settings=app.config, **fields)
        session.flush()
        return result.case.id, result.signal.id


def make_due(app, kind: str) -> None:
    """Move the pending jobs of ``kind`` to the past, as if their time had come."""
    with session_scope(app) as session:
        session.execute(sa.update(Job).where(Job.kind == kind, Job.state == "pending")
                        .values(run_at=utcnow() - timedelta(seconds=1)))


def job(app, kind: str) -> Job:
    """The one job of ``kind``."""
    with session_scope(app) as session:
        found = session.scalars(sa.select(Job).where(Job.kind == kind)).all()
        assert len(found) == 1, [(j.kind, j.key) for j in found]
        session.expunge(found[0])
        return found[0]


def events(app, case_id: int, kind: str) -> list[CaseEvent]:
    """The case's events of ``kind``."""
    with session_scope(app) as session:
        found = session.scalars(sa.select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == kind)).all()
        session.expunge_all()
        return list(found)


def get_case(app, case_id: int) -> Case:
    with session_scope(app) as session:
        case = session.get(Case, case_id)
        session.expunge(case)
        return case


def kb_logs(caplog) -> str:
    """What kb logged (the SMTP sink's own debug log holds the messages it received, by design)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("kb"))


def parsed(mail):
    return message_from_bytes(mail.data, policy=default_policy)


def test_alert_email_and_webhook_arrive_within_the_minute_with_the_runner_running(make_app, smtp_sink, webhook_server,
                                                                                  shared_db_url):
    app = make_app(JOBS_RUNNER=True, DATABASE_URL=shared_db_url)
    case_id, _signal_id = record(app)
    committed = time.monotonic()
    mail = smtp_sink.wait_for(1, timeout=60)[0]
    email_seconds = time.monotonic() - committed
    post = webhook_server.wait_for(1, timeout=60)[0]
    assert email_seconds < 60 and post["at"] - committed < 60  # the bound: within the minute

    message = parsed(mail)
    assert mail.rcpt_tos == [TEAM]
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Subject"].startswith("[kb] ") and f"case {case_id}" in message["Subject"]
    assert message["Reply-To"].addresses[0].addr_spec == "ann@customer.example"
    body = message.get_content()
    for expected in ("Ann Lee <ann@customer.example>", 'A "No" vote on an article', "didn't answer my question",
                     WORDS, f"https://help.example.com/agent/followups/{case_id}"):
        assert expected in body
    fields = post["json"]
    assert post["content_type"].startswith("application/json")
    assert fields["event"] == "alert" and fields["case_id"] == case_id and fields["source"] == "vote"
    assert fields["customer"] == {"name": "Ann Lee", "address": "ann@customer.example"}
    assert fields["words"] == WORDS and fields["url"].endswith(f"/agent/followups/{case_id}")
    assert WORDS in fields["text"] and f"/agent/followups/{case_id}|" in fields["text"]

    deadline = time.monotonic() + 30  # the runner commits the bookkeeping right after the effects
    while len(events(app, case_id, "alert")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(events(app, case_id, "alert")) == 2  # one for the email, one for the POST
    assert get_case(app, case_id).alerted_at is not None
    assert message["Message-ID"] == job(app, "followup.alert").message_id


def test_anonymous_vote_alerts_the_article_author_too(make_app, smtp_sink):
    app = make_app()
    author_id = make_agent(app, "author@kb.example", name="Bob Writer")
    with session_scope(app) as session:
        article = kb_articles.create_article(session, kb_articles.ArticleDraft(title="Reset your password"),
                                             author=session.get(Agent, author_id), status="published")
        session.flush()
        article_id = article.id
    case_id, _ = record(app, address="", name="", article_id=article_id, words="Too vague.")
    jobs.run_due(app)
    mail = smtp_sink.wait_for(1)[0]
    assert sorted(mail.rcpt_tos) == ["author@kb.example", TEAM]
    body = parsed(mail).get_content()
    assert "an anonymous visitor" in body and "Reset your password" in body and "Bob Writer" in body
    assert parsed(mail)["Reply-To"] is None


@pytest.mark.parametrize("configured", ["", "boss@kb.example, night@kb.example"])
def test_an_unacknowledged_case_escalates(make_app, smtp_sink, webhook_server, configured):
    app = make_app(ESCALATION_ADDRESS=configured)
    make_agent(app, "ada@kb.example", role="admin")
    make_agent(app, "old@kb.example", role="admin", active=False)
    make_agent(app, "edith@kb.example", role="editor")
    case_id, _ = record(app)
    done = jobs.run_due(app)["done"] + jobs.run_due(app)["done"]  # the alert, then the POST it scheduled
    assert done == 2  # the escalation waits for its time
    assert len(smtp_sink.wait_for(1)) == 1 and get_case(app, case_id).escalated_at is None
    make_due(app, "followup.escalate")
    jobs.run_due(app)
    jobs.run_due(app)  # the escalation's POST, scheduled by it
    escalation = parsed(smtp_sink.wait_for(2)[1])
    expected = ["boss@kb.example", "night@kb.example"] if configured else ["ada@kb.example"]
    assert sorted(smtp_sink.messages[1].rcpt_tos) == expected
    assert "Not acknowledged" in escalation["Subject"] and WORDS in escalation.get_content()
    assert get_case(app, case_id).escalated_at is not None
    assert len(events(app, case_id, "escalation")) == 2  # the email and the POST
    posts = webhook_server.wait_for(2)
    assert [p["json"]["event"] for p in posts] == ["alert", "escalation"]


def test_an_acknowledged_case_does_not_escalate(make_app, smtp_sink, webhook_server):
    app = make_app()
    agent_id = make_agent(app, "ada@kb.example", role="admin")
    case_id, _ = record(app)
    jobs.run_due(app)
    jobs.run_due(app)
    with session_scope(app) as session:
        assert cases.change_state(session, session.get(Case, case_id), "acknowledge", agent_id=agent_id)
    make_due(app, "followup.escalate")
    assert jobs.run_due(app)["done"] == 1
    assert job(app, "followup.escalate").state == "done"
    assert len(smtp_sink.messages) == 1 and len(webhook_server.posts) == 1  # the alert's only
    assert get_case(app, case_id).escalated_at is None and not events(app, case_id, "escalation")


def test_the_deadline_of_an_earlier_opening_does_not_escalate_a_reopened_case(make_app, smtp_sink):
    app = make_app(TEAM_ADDRESS="", ALERT_WEBHOOK_URL="", ESCALATION_ADDRESS="boss@kb.example")
    agent_id = make_agent(app, "ada@kb.example", role="admin")
    case_id, _ = record(app, key="vote:1")
    with session_scope(app) as session:
        case = session.get(Case, case_id)
        assert cases.change_state(session, case, "acknowledge", agent_id=agent_id)
        assert cases.change_state(session, case, "resolve", agent_id=agent_id, settings=app.config, root_cause="article")
    with session_scope(app) as session:  # the first deadline has not run yet (a runner was down, say)
        first = session.scalars(sa.select(Job.id).where(Job.kind == "followup.escalate")).one()
    time.sleep(0.01)
    assert record(app, key="vote:2")[0] == case_id  # unhappy again within 7 days: reopened
    with session_scope(app) as session:
        session.execute(sa.update(Job).where(Job.id == first).values(run_at=utcnow() - timedelta(seconds=1)))
    jobs.run_due(app)
    assert not smtp_sink.messages and get_case(app, case_id).escalated_at is None  # not this opening's deadline
    make_due(app, "followup.escalate")  # the reopening's own deadline
    jobs.run_due(app)
    assert smtp_sink.wait_for(1)[0].rcpt_tos == ["boss@kb.example"]
    assert get_case(app, case_id).escalated_at is not None


def test_the_escalation_waits_for_business_hours(make_app):
    from zoneinfo import ZoneInfo

    from kb.followup.hours import DAYS

    oslo = ZoneInfo("Europe/Oslo")
    day = (utcnow().astimezone(oslo) + timedelta(days=2)).date()  # business hours only on that weekday
    app = make_app(BUSINESS_HOURS=f"{DAYS[day.weekday()]} 09:00-17:00", TIME_ZONE="Europe/Oslo")
    record(app)
    run_at = job(app, "followup.escalate").run_at.astimezone(oslo)
    assert (run_at.date(), run_at.hour, run_at.minute, run_at.second) == (day, 9, 15, 0)


class Killed(Exception):
    """The runner process dying at a step (kb.jobs lets it through)."""

    stops_runner = True


@pytest.mark.parametrize(("kind", "step"), [
    ("followup.alert", "claimed"), ("followup.alert", "prepared"), ("followup.alert", "sent"),
    ("followup.alert", "done"), ("followup.alert_webhook", "claimed"), ("followup.alert_webhook", "sent"),
    ("followup.alert_webhook", "done")])
def test_a_runner_killed_between_two_steps_sends_the_alert_once(make_app, smtp_sink, webhook_server, kind, step):
    app = make_app(JOBS_LEASE_SECONDS=1)
    case_id, _ = record(app)

    def hook(name, running_job):
        if running_job.kind == kind and name == step:
            raise Killed(step)

    with pytest.raises(Killed):
        for _ in range(3):  # the alert runs first; its POST is scheduled by it
            jobs.run_due(app, hook=hook)
    with session_scope(app) as session:  # the lease of the dead runner runs out
        session.execute(sa.update(Job).values(lease_until=utcnow() - timedelta(seconds=1)))
    jobs.run_due(app)
    jobs.run_due(app)
    assert len(smtp_sink.wait_for(1)) == 1 and len(webhook_server.wait_for(1)) == 1
    time.sleep(0.3)  # a duplicate would have arrived by now
    assert len(smtp_sink.messages) == 1 and len(webhook_server.posts) == 1
    assert {job(app, k).state for k in ("followup.alert", "followup.alert_webhook")} == {"done"}
    assert len(events(app, case_id, "alert")) == 2
    assert parsed(smtp_sink.messages[0])["Message-ID"] == job(app, "followup.alert").message_id


def test_a_webhook_500_is_retried_and_then_recorded_once(make_app, smtp_sink, webhook_server, caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app(TEAM_ADDRESS="")
    webhook_server.statuses = [500, 200]
    case_id, _ = record(app)
    jobs.run_due(app)
    jobs.run_due(app)  # the POST, scheduled by the alert job
    failed = job(app, "followup.alert_webhook")
    assert failed.state == "pending" and failed.attempts == 1 and "HTTP 500" in failed.last_error
    assert get_case(app, case_id).alerted_at is None
    time.sleep(0.05)  # JOBS_RETRY_SECONDS is 0.01
    assert jobs.run_due(app)["done"] == 1
    posts = webhook_server.wait_for(2)
    assert [p["status"] for p in posts] == [500, 200]
    assert job(app, "followup.alert_webhook").state == "done"
    assert len(events(app, case_id, "alert")) == 1 and get_case(app, case_id).alerted_at is not None
    assert not smtp_sink.messages  # no KB_TEAM_ADDRESS: the webhook is the alert
    # The failure is logged by kind (its text, which may quote a customer, stays on the job).
    assert "followup.alert_webhook" in kb_logs(caplog) and "WebhookFailed" in kb_logs(caplog)
    assert WORDS not in kb_logs(caplog) and webhook_server.url not in kb_logs(caplog) + failed.last_error


def test_a_failing_smtp_server_does_not_hold_back_the_webhook(make_app, smtp_sink, webhook_server, caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app()
    smtp_sink.stop()  # connection refused
    case_id, _ = record(app)
    jobs.run_due(app)
    jobs.run_due(app)
    assert len(webhook_server.wait_for(1)) == 1
    failed = job(app, "followup.alert")
    assert failed.state == "pending" and "Cannot reach the SMTP server" in failed.last_error
    smtp_sink.start()
    time.sleep(0.05)
    jobs.run_due(app)
    assert len(smtp_sink.wait_for(1)) == 1 and job(app, "followup.alert").state == "done"
    assert "followup.alert" in kb_logs(caplog) and "SendFailed" in kb_logs(caplog)  # logged by kind only
    assert WORDS not in kb_logs(caplog) and "Ann Lee" not in kb_logs(caplog)


@pytest.mark.parametrize("problem", ["timeout", "refused"])
def test_a_slow_or_absent_webhook_fails_fast_and_is_retried(make_app, webhook_server, monkeypatch, problem):
    monkeypatch.setattr(webhook, "TIMEOUT_SECONDS", 0.3)
    url = webhook_server.url if problem == "timeout" else f"http://127.0.0.1:{free_port()}/hook"
    webhook_server.delay = 2.0
    app = make_app(TEAM_ADDRESS="", ALERT_WEBHOOK_URL=url)
    record(app)
    jobs.run_due(app)
    started = time.monotonic()
    jobs.run_due(app)  # the POST job, scheduled by the alert job
    assert time.monotonic() - started < 1.5
    failed = job(app, "followup.alert_webhook")
    assert failed.state == "pending" and failed.attempts == 1
    assert ("did not answer within 0.3 s" if problem == "timeout" else "Cannot reach") in failed.last_error


def test_an_alert_about_any_customer_input_is_a_well_formed_email_to_the_team_only(app):
    # The customer's name, words and address, and the article's title, come from outside: none may
    # add a recipient, break a header or make the alert unsendable.
    from email import message_from_bytes
    from email.policy import default as default_policy

    from kb.autoreply.compose import message_bytes
    from kb.followup import alert_compose
    from kb.followup.models import Signal
    from tests.test_autoreply_compose import hostile_strings

    with session_scope(app) as session:
        result = signals.record_signal(session, key="vote:odd", source="vote", settings=app.config,
                                       address="ann@customer.example", words="x")
        for n, value in enumerate(hostile_strings(150, seed=7)):
            facts = alert_compose.facts(session, result.case, result.signal, app.config)
            odd = dataclasses.replace(facts, customer_name=value, words=value, article_title=value,
                                      customer_address=value if n % 2 else facts.customer_address)
            for event in ("alert", "escalation"):
                built = alert_compose.build_email(odd, event=event, to=[TEAM], settings=app.config,
                                                  message_id="<a@help.example.com>")
                data = message_bytes(built)
                assert all(len(line) <= 998 for line in data.split(b"\r\n")), (n, value)
                back = message_from_bytes(data, policy=default_policy)
                assert back["To"] == TEAM and back["Bcc"] is None and back["Cc"] is None, (n, value)
                assert not back.defects and back["Subject"].strip().startswith("[kb] ") and back.get_content(), (n, value)
        assert session.scalar(sa.select(sa.func.count()).select_from(Signal)) == 1
