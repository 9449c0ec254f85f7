"""The signals that open follow-up cases: a "No" vote, "Still need help", a write-back into kb's thread.

Each opens exactly one case: through the portal (Flask test client), through the mail worker on a
real IMAP server (pymap) and SMTP sink, and when the same signal arrives twice at once (two threads
on PostgreSQL, where the unique keys decide).
"""

from __future__ import annotations

import threading
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
import sqlalchemy as sa

from kb.articles import ArticleDraft, create_article
from kb.autoreply import ledger, links
from kb.autoreply.models import MailRecord
from kb.db import session_scope
from kb.followup import cases, signals, sources
from kb.followup.models import Case, Customer, CustomerIdentity, Signal
from kb.jobs.models import Job
from kb.models import Vote, utcnow
from tests.conftest import TEST_SECRET, csrf_token_from
from tests.test_browser import Shots, base_url, browser, live_app, nojs_page  # noqa: F401
from tests.test_autoreply_worker import Killed, articles_db, mail_app, make_email, make_worker, records  # noqa: F401
from tests.concurrency import at_once

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def person(app, address: str = "192.0.2.10"):
    """A fresh browser (its own cookies) at ``address``."""
    client = app.test_client()
    client.environ_base.update(REMOTE_ADDR=address, HTTP_USER_AGENT=BROWSER)
    return client


def vote(client, slug: str = "tents", *, helpful: str = "no", follow: bool = True, lang: str = "en", **fields):
    """Open the article and answer "Was this helpful?" with the form's other ``fields``."""
    token = csrf_token_from(client.get(f"/{lang}/articles/{slug}").text)
    return client.post(f"/{lang}/articles/{slug}/vote", data={"helpful": helpful, "csrf_token": token, **fields},
                       follow_redirects=follow)


def rows(app, model) -> list:
    """Every row of ``model``, oldest first, detached."""
    with session_scope(app) as session:
        found = list(session.scalars(sa.select(model).order_by(model.id)))
        session.expunge_all()
    return found


@pytest.fixture
def article(make_article):
    """The published article the tests vote on."""
    return make_article("Pitching a tent", slug="tents", body_md="Stake the corners first.")


# --- "No" votes -------------------------------------------------------------------------------------

def test_a_no_vote_with_an_address_opens_one_case_about_the_customer(app, article):
    page = vote(person(app), comment="Step 3 lost me.", reason="hard_to_follow", email="Ann.Lee@Example.org")
    assert page.status_code == 200 and "Someone from our team will get back to you" in page.text
    [stored] = rows(app, Vote)
    assert (stored.helpful, stored.comment, stored.reason) == (False, "Step 3 lost me.", "hard_to_follow")
    [signal] = rows(app, Signal)
    assert (signal.key, signal.source, signal.channel) == (f"vote:{stored.id}", "vote", "web")
    assert (signal.words, signal.reason, signal.article_id) == ("Step 3 lost me.", "hard_to_follow", article.id)
    [case] = rows(app, Case)
    [identity] = rows(app, CustomerIdentity)
    assert (case.customer_id, case.article_id, case.source, case.state, case.lang) == (
        identity.customer_id, article.id, "vote", "new", "en")
    assert identity.display == "Ann.Lee@Example.org" and case.open_key == f"customer:{identity.customer_id}"
    kinds = sorted(job.kind for job in rows(app, Job))
    assert kinds == ["followup.alert", "followup.escalate"]  # the team hears of it within the minute


def test_a_double_click_and_a_retried_post_record_one_vote_and_one_signal(app, article):
    browser = person(app)
    token = csrf_token_from(browser.get("/en/articles/tents").text)
    form = {"helpful": "no", "csrf_token": token, "comment": "Wrong pegs.", "email": "bo@example.org"}
    first = browser.post("/en/articles/tents/vote", data=form)
    again = browser.post("/en/articles/tents/vote", data=form, follow_redirects=True)
    assert first.status_code == 303 and "You already told us about this article" in again.text
    assert len(rows(app, Vote)) == len(rows(app, Signal)) == len(rows(app, Case)) == 1


def test_a_no_vote_without_an_address_opens_a_case_about_the_article(app, article):
    vote(person(app, "192.0.2.10"), comment="Out of date pictures.", reason="out_of_date")
    vote(person(app, "198.51.100.7"), reason="not_answered")  # another visitor: same article, same case
    [case] = rows(app, Case)
    assert (case.customer_id, case.article_id, case.open_key) == (None, article.id, f"article:{article.id}")
    signals = rows(app, Signal)
    assert [(s.case_id, s.customer_id, s.reason) for s in signals] == [
        (case.id, None, "out_of_date"), (case.id, None, "not_answered")]
    assert rows(app, Customer) == []


def test_a_yes_vote_opens_no_case_and_keeps_no_address(app, article):
    page = vote(person(app), helpful="yes", reason="other", email="ann@example.org")
    assert "Thanks for your feedback!" in page.text
    [stored] = rows(app, Vote)
    assert stored.helpful and stored.reason == ""
    assert rows(app, Signal) == rows(app, Case) == rows(app, Customer) == []


@pytest.mark.parametrize("bad", ["not-an-address", "ann@", "ann@example", "a b@example.org", "x" * 320 + "@e.org"])
def test_a_bad_address_is_refused_at_the_field_and_nothing_is_recorded(app, article, bad):
    browser = person(app)
    page = vote(browser, follow=False, comment="Keep my words.", reason="other", email=bad)
    assert page.status_code == 422
    html = page.text
    assert 'id="vote-email-error"' in html and "Enter an email address such as name@example.com" in html
    assert 'aria-invalid="true" aria-describedby="vote-email-error"' in html
    assert ">Keep my words.</textarea>" in html and '<option value="other" selected>' in html  # nothing is lost
    assert rows(app, Vote) == rows(app, Signal) == rows(app, Case) == []
    fixed = vote(browser, comment="Keep my words.", reason="other", email="ann@example.org")
    assert "Someone from our team will get back to you" in fixed.text and len(rows(app, Case)) == 1


def test_a_bad_address_after_the_vote_was_recorded_only_says_so(app, article):
    browser = person(app)
    token = csrf_token_from(browser.get("/en/articles/tents").text)
    form = {"helpful": "no", "csrf_token": token, "email": "ann@example.org"}
    browser.post("/en/articles/tents/vote", data=form)
    again = browser.post("/en/articles/tents/vote", data={**form, "email": "nope"}, follow_redirects=True)
    assert again.status_code == 200 and "You already told us about this article" in again.text
    assert len(rows(app, Signal)) == 1


def test_the_form_and_the_case_keep_the_pages_language(app, article):
    browser = person(app)
    page = vote(browser, follow=False, lang="nb", email="nope")
    assert page.status_code == 422 and 'lang="nb"' in page.text and 'id="vote-email-error"' in page.text
    vote(browser, lang="nb", email="kari@example.no")
    assert [case.lang for case in rows(app, Case)] == ["nb"]  # follow-ups speak the customer's language


def test_an_unknown_reason_is_refused(app, article):
    assert vote(person(app), follow=False, reason="spam").status_code == 400
    assert rows(app, Vote) == []


def test_the_vote_form_still_needs_its_csrf_token(app, article):
    browser = person(app)
    browser.get("/en/articles/tents")
    assert browser.post("/en/articles/tents/vote", data={"helpful": "no", "email": "a@example.org"}).status_code == 400
    assert rows(app, Vote) == rows(app, Signal) == []


# --- "Still need help" ------------------------------------------------------------------------------

def replied_record(app, *, address: str = "ann@example.org", lang: str = "en") -> int:
    """An email kb answered automatically; its id."""
    with session_scope(app) as session:
        record = ledger.claim(session, dedupe_key=f"<q-{address}@x>", message_id=f"<q-{address}@x>", folder="INBOX",
                              uidvalidity=1, uid=1, from_addr=address, reply_to=address, subject="Parcel",
                              text="Where is my parcel?")
        ledger.record_decision(session, record, "reply", "confident", [], lang)
        ledger.begin_sending(session, record, f"<r-{address}@kb>")
        ledger.finish_sent(session, record)
        return record.id


def click_help(client, record_id: int):
    """Open the "Still need help" link and confirm, as the customer does."""
    path = "/mail/feedback/" + links.make_token(TEST_SECRET, record_id, links.HELP)
    page = client.get(path)
    assert page.status_code == 200
    return client.post(path, data={"csrf_token": csrf_token_from(page.text)})


def test_still_need_help_opens_one_case_with_the_question_and_the_thread(app):
    record_id = replied_record(app, lang="nb")
    browser = person(app)
    assert rows(app, Signal) == []  # opening the link (a mail scanner) records nothing
    click_help(browser, record_id)
    click_help(browser, record_id)  # the double click
    [signal] = rows(app, Signal)
    assert (signal.key, signal.source, signal.channel) == (f"mail:{record_id}:still_need_help", "still_need_help", "email")
    assert (signal.words, signal.mail_record_id) == ("Where is my parcel?", record_id)
    [case] = rows(app, Case)
    assert (case.thread_message_id, case.thread_subject, case.lang) == ("<q-ann@example.org@x>", "Parcel", "nb")
    [identity] = rows(app, CustomerIdentity)
    assert identity.value == "ann@example.org" and case.customer_id == identity.customer_id


def test_a_retried_click_whose_first_request_died_after_the_click_opens_the_case(app):
    record_id = replied_record(app)
    with session_scope(app) as session:  # the first request recorded the click, then died
        ledger.resolve(session, record_id, "help")
    page = click_help(person(app), record_id)
    assert "already" in page.text
    assert len(rows(app, Signal)) == len(rows(app, Case)) == 1


def test_solved_opens_no_case(app):
    record_id = replied_record(app)
    path = "/mail/feedback/" + links.make_token(TEST_SECRET, record_id, links.SOLVED)
    browser = person(app)
    browser.post(path, data={"csrf_token": csrf_token_from(browser.get(path).text)})
    assert rows(app, Signal) == rows(app, Case) == []


# --- the same signal twice at once, on PostgreSQL ------------------------------------------------------

@pytest.fixture
def past_the_check(monkeypatch):
    """Both threads pass record_signal's look for an earlier signal before either writes: then only
    the database's unique keys can keep one case, and the race happens every time, not by luck."""
    barrier, local, real = threading.Barrier(2), threading.local(), signals._existing

    def existing(session, key):
        found = real(session, key)
        if not getattr(local, "waited", False):  # the first look of this thread; the retry after a clash runs on
            local.waited = True
            barrier.wait(10)
        return found

    monkeypatch.setattr(signals, "_existing", existing)


@pytest.fixture
def pg_app(app_factory, pg_database_url):
    """An app on a fresh PostgreSQL database."""
    return app_factory(DATABASE_URL=pg_database_url)


def no_vote(app, visitor: str) -> int:
    """A stored "No" vote on a new article; its id."""
    with session_scope(app) as session:
        art = create_article(session, ArticleDraft(title=f"Article {visitor}", body_md="Text."), status="published")
        stored = Vote(article_id=art.id, visitor=visitor, helpful=False, comment="Did not help.", reason="other")
        session.add(stored)
        session.commit()
        return stored.id


def racing_call(app, source: str, n: int):
    """A call that records signal ``n`` of ``source`` (each n its own record and customer)."""
    settings, address = app.config, f"customer-{n}@example.org"
    if source.startswith("vote"):
        vote_id = no_vote(app, f"v{n}")
        address = "" if source == "vote_without_address" else address
        return lambda session: sources.from_vote(session, session.get(Vote, vote_id), address, settings, "en").created
    record_id = replied_record(app, address=address)
    if source == "still_need_help":
        def call(session):
            record, _changed = ledger.resolve(session, record_id, "help")
            return sources.from_still_need_help(session, record, settings).created
        return call
    return lambda session: sources.from_writeback(
        session, session.get(MailRecord, record_id), address=address, words="Still broken.", lang="en",
        thread_message_id=f"<w{n}@x>", thread_subject="Re: Parcel", settings=settings).created


@pytest.mark.postgres
@pytest.mark.parametrize("source", ["vote", "vote_without_address", "still_need_help", "writeback"])
def test_the_same_signal_twice_at_once_opens_one_case(pg_app, past_the_check, source):
    rounds = 3  # fresh signals each round: their customers, cases and keys all race
    for n in range(rounds):
        call = racing_call(pg_app, source, n)
        assert sorted(at_once(pg_app, [call, call])) == [False, True], n  # exactly one of the two recorded it
    signals, opened = rows(pg_app, Signal), rows(pg_app, Case)
    assert len(signals) == len(opened) == rounds and len({s.case_id for s in signals}) == rounds
    assert len([job for job in rows(pg_app, Job) if job.kind == "followup.alert"]) == rounds
    assert len(rows(pg_app, Customer)) == (0 if source == "vote_without_address" else rounds)


@pytest.mark.postgres
def test_two_signals_of_one_customer_at_once_join_one_case(pg_app, past_the_check):
    vote_id, record_id = no_vote(pg_app, "v1"), replied_record(pg_app, address="ann@example.org")
    settings = pg_app.config

    def by_vote(session):
        return sources.from_vote(session, session.get(Vote, vote_id), "Ann@Example.org", settings, "en").case.id

    def by_click(session):
        record, _changed = ledger.resolve(session, record_id, "help")
        return sources.from_still_need_help(session, record, settings).case.id

    case_ids = at_once(pg_app, [by_vote, by_click])
    assert len(set(case_ids)) == 1
    [case] = rows(pg_app, Case)
    assert sorted(s.source for s in rows(pg_app, Signal)) == ["still_need_help", "vote"]
    assert len(rows(pg_app, Customer)) == 1 and case.customer_id == rows(pg_app, Customer)[0].id


# --- a customer writing back into a thread kb auto-answered ----------------------------------------

def sent_message_id(mail) -> str:
    """The Message-ID of a message the SMTP sink received."""
    return message_from_bytes(mail.data, policy=default_policy)["Message-ID"]


def answered_then_written_back(mail_app, pymap_server, smtp_sink, *, sender="carol@customer.example",  # noqa: F811
                               body="It still says my password is wrong after the reset."):
    """A question kb answers, then the customer's answer to kb's reply; (the question's, the reply's) ids."""
    question = "<q-1@customer.example>"
    pymap_server.append(make_email(sender=sender, message_id=question))
    assert make_worker(mail_app).run_once()["replied"] == 1
    reply_id = sent_message_id(smtp_sink.wait_for(1)[0])
    pymap_server.append(make_email(subject="Re: How do I reset my password?", body=body, sender=sender,
                                   message_id="<w-1@customer.example>", In_Reply_To=reply_id,
                                   References=f"{question} {reply_id}"))
    return question, reply_id


def test_a_write_back_goes_to_a_person_and_opens_one_case(mail_app, pymap_server, smtp_sink):  # noqa: F811
    _question, reply_id = answered_then_written_back(mail_app, pymap_server, smtp_sink)
    counts = make_worker(mail_app).run_once()
    assert counts["person"] == 1 and counts["replied"] == 0
    answered, written = records(mail_app)
    assert written.state == "person" and written.reason == f"writeback: the customer answered kb's auto-reply {reply_id}"
    assert "kb-needs-person" in pymap_server.flags()[written.uid]
    [signal] = rows(mail_app, Signal)
    assert (signal.key, signal.source, signal.channel) == (f"mail:{written.id}:writeback", "writeback", "email")
    assert "still says my password is wrong" in signal.words and signal.mail_record_id == written.id
    [case] = rows(mail_app, Case)
    assert (case.thread_message_id, case.thread_subject) == ("<w-1@customer.example>", "Re: How do I reset my password?")
    assert case.lang == "en" and case.source == "writeback"
    [identity] = rows(mail_app, CustomerIdentity)
    assert identity.value == "carol@customer.example"
    assert sum(make_worker(mail_app).run_once().values()) == 0  # read again: nothing new, no second signal
    assert len(rows(mail_app, Signal)) == 1
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["carol@customer.example"]]  # never auto-answered again


@pytest.mark.parametrize("step", ["signalled", "decided", "marked"])
def test_a_worker_killed_around_the_write_back_records_it_once(mail_app, pymap_server, smtp_sink, step):  # noqa: F811
    answered_then_written_back(mail_app, pymap_server, smtp_sink)

    def kill(name, record):
        if name == step and record.message_id == "<w-1@customer.example>":
            raise Killed(step)

    with pytest.raises(Killed):
        make_worker(mail_app, hook=kill).run_once()
    make_worker(mail_app, stale_seconds=0).run_once()  # restarted: the email is taken over
    make_worker(mail_app, stale_seconds=0).run_once()
    written = records(mail_app)[1]
    assert written.state == "person" and written.reason.startswith("writeback:") and written.marked
    assert [s.key for s in rows(mail_app, Signal)] == [f"mail:{written.id}:writeback"]
    assert len(rows(mail_app, Case)) == 1 and len(smtp_sink.messages) == 1


def test_a_write_back_after_still_need_help_joins_the_clicks_case(mail_app, pymap_server, smtp_sink):  # noqa: F811
    question = "<q-3@customer.example>"
    pymap_server.append(make_email(sender="eve@customer.example", message_id=question))
    make_worker(mail_app).run_once()
    reply_id = sent_message_id(smtp_sink.wait_for(1)[0])
    [answered] = records(mail_app)
    click_help(person(mail_app), answered.id)
    write_back_again(mail_app, pymap_server, reply_id, 3, sender="eve@customer.example")
    assert records(mail_app)[1].reason.startswith("writeback:")
    [case] = rows(mail_app, Case)
    assert sorted(s.source for s in rows(mail_app, Signal)) == ["still_need_help", "writeback"]
    assert case.thread_message_id == question  # the first email the case learnt of stays its thread


def test_an_out_of_office_answering_kbs_reply_opens_no_case(mail_app, pymap_server, smtp_sink):  # noqa: F811
    pymap_server.append(make_email(sender="dan@customer.example", message_id="<q-2@customer.example>"))
    make_worker(mail_app).run_once()
    reply_id = sent_message_id(smtp_sink.wait_for(1)[0])
    pymap_server.append(make_email(subject="Automatic reply: away", sender="dan@customer.example",
                                   In_Reply_To=reply_id, Auto_Submitted="auto-replied"))
    assert make_worker(mail_app).run_once()["skipped"] == 1
    assert rows(mail_app, Signal) == rows(mail_app, Case) == []


def test_a_shadow_worker_records_no_signal(mail_app, pymap_server, smtp_sink):  # noqa: F811
    answered_then_written_back(mail_app, pymap_server, smtp_sink)
    make_worker(mail_app, dry_run=True).run_once()
    assert any(r.reason.startswith("dry-run: writeback:") for r in records(mail_app))
    assert rows(mail_app, Signal) == []


def resolve_case(app, *, days_ago: float = 0) -> int:
    """Resolve the one open case with the first root cause, ``days_ago``; its id."""
    with session_scope(app) as session:
        case = session.scalars(sa.select(Case).where(Case.open_key.is_not(None))).one()
        assert cases.change_state(session, case, "resolve", agent_id=None, settings=app.config,
                                  root_cause=cases.root_causes(app.config)[0])
        case.resolved_at = utcnow() - timedelta(days=days_ago)
        session.commit()
        return case.id


def write_back_again(mail_app, pymap_server, reply_id: str, n: int, sender="carol@customer.example") -> None:  # noqa: F811
    """The customer answers kb's reply once more, as a new email in the same thread."""
    pymap_server.append(make_email(subject="Re: How do I reset my password?", sender=sender,
                                   body=f"Still not working (try {n}).", message_id=f"<w-{n}@customer.example>",
                                   In_Reply_To=reply_id))
    make_worker(mail_app).run_once()


def test_a_write_back_within_seven_days_of_a_resolved_case_reopens_it(mail_app, pymap_server, smtp_sink):  # noqa: F811
    _question, reply_id = answered_then_written_back(mail_app, pymap_server, smtp_sink)
    make_worker(mail_app).run_once()
    case_id = resolve_case(mail_app, days_ago=6)
    write_back_again(mail_app, pymap_server, reply_id, 2)
    [case] = rows(mail_app, Case)
    assert (case.id, case.state, case.resolved_at) == (case_id, "reopened", None)
    assert [s.case_id for s in rows(mail_app, Signal)] == [case_id, case_id]


def test_a_write_back_long_after_a_resolved_case_opens_a_new_one(mail_app, pymap_server, smtp_sink):  # noqa: F811
    _question, reply_id = answered_then_written_back(mail_app, pymap_server, smtp_sink)
    make_worker(mail_app).run_once()
    old_id = resolve_case(mail_app, days_ago=8)
    write_back_again(mail_app, pymap_server, reply_id, 2)
    old, new = rows(mail_app, Case)
    assert (old.id, old.state) == (old_id, "resolved") and (new.state, new.source) == ("new", "writeback")


# --- the vote form in a browser without JavaScript --------------------------------------------------

@pytest.mark.browser
def test_a_no_vote_with_a_mistyped_address_in_a_browser_without_javascript(nojs_page, base_url, live_app):  # noqa: F811
    from playwright.sync_api import expect

    page, shot = nojs_page, Shots(nojs_page, "followup-vote")
    page.goto(base_url + "/en/articles/reset-password")
    page.locator("#vote-comment").fill("The reset email never came.")
    page.locator("#vote-reason").select_option("not_answered")
    page.locator("#vote-email").fill("kari@example")  # the browser accepts it; kb wants a domain with a dot
    shot("filled")
    page.get_by_role("button", name="No", exact=True).click()
    error = page.locator("#vote-email-error")
    expect(error).to_contain_text("Enter an email address such as name@example.com")
    expect(page.locator("#vote-comment")).to_have_value("The reset email never came.")
    expect(page.locator("#vote-reason")).to_have_value("not_answered")
    shot("refused-at-the-field")
    page.locator("#vote-email").fill("kari@example.no")
    page.get_by_role("button", name="No", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("Someone from our team will get back to you")
    shot("recorded")
    with session_scope(live_app) as session:
        signal = session.scalars(sa.select(Signal).where(Signal.words == "The reset email never came.")).one()
        assert signal.reason == "not_answered" and signal.customer_id is not None
