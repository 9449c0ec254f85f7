"""Each outcome of kb's answers from real emails: pymap (IMAP, in-process), aiosmtpd and the worker.

Time is moved by passing ``now=`` to the sweep (the "assumed" job's function), never by waiting.
"""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import sqlalchemy as sa

from kb.autoreply import ledger, links
from kb.autoreply.models import MailRecord
from kb.db import session_scope
from kb.insights import outcomes
from kb.jobs import run_due
from kb.jobs.models import Job
from kb.jobs.scheduling import schedule_daily
from kb.models import utcnow
from tests.conftest import TEST_SECRET, csrf_token_from
from tests.test_autoreply_worker import articles_db, mail_app, make_email, make_worker, records  # noqa: F401

ANN = "Ann <ann@customer.example>"


def reply_once(app, smtp_sink, pymap_server, sender: str = ANN, **email) -> MailRecord:
    """Send one customer email through the worker; the record kb replied to (the newest one)."""
    pymap_server.append(make_email(sender=sender, **email))
    make_worker(app).run_once()
    return records(app)[-1]


def click(app, mail, action: str):
    """Follow the reply's own "Solved" or "Still need help" link and confirm, as the customer does."""
    text = message_from_bytes(mail.data, policy=default_policy).get_body(("plain",)).get_content()
    tokens = re.findall(r"/mail/feedback/([A-Za-z0-9_.\-]+)", text)
    [token] = [t for t in tokens if links.read_token(TEST_SECRET, t)[1] == action]
    browser = app.test_client()
    page = browser.get(f"/mail/feedback/{token}")
    assert browser.post(f"/mail/feedback/{token}", data={"csrf_token": csrf_token_from(page.text)}).status_code == 200


def sweep(app, after: timedelta) -> int:
    """Run the "assumed" sweep as if ``after`` had passed since now."""
    with session_scope(app) as session:
        count = outcomes.assume_due(session, app.config, now=utcnow() + after)
        session.commit()
    return count


def test_a_solved_click_confirms_and_a_later_question_leaves_it_confirmed(mail_app, pymap_server, smtp_sink):
    record = reply_once(mail_app, smtp_sink, pymap_server)
    [mail] = smtp_sink.wait_for(1)
    assert record.state == "replied" and record.outcome is None and record.outcome_at is not None
    assert record.category == "Account"  # the top article's: "Reset your password"
    with session_scope(mail_app) as session:  # the sweep of the hour the wait ends is scheduled once
        [job] = session.scalars(sa.select(Job).where(Job.kind == outcomes.SWEEP)).all()
        assert timedelta(hours=72) <= job.run_at - record.outcome_at < timedelta(hours=73)
    click(mail_app, mail, links.SOLVED)
    assert records(mail_app)[0].outcome == "confirmed"
    reply_once(mail_app, smtp_sink, pymap_server, subject="And my order?", body="Where is my order 123?")
    assert [r.outcome for r in records(mail_app)] == ["confirmed", None]
    assert sweep(mail_app, timedelta(hours=80)) == 0  # confirmed stays confirmed


def test_no_further_contact_within_the_wait_is_assumed(mail_app, pymap_server, smtp_sink):
    record = reply_once(mail_app, smtp_sink, pymap_server)
    assert sweep(mail_app, timedelta(hours=71)) == 0
    assert records(mail_app)[0].outcome is None
    assert sweep(mail_app, timedelta(hours=72, minutes=1)) == 1
    [after] = records(mail_app)
    assert (after.id, after.outcome) == (record.id, "assumed")


def test_writing_again_within_seven_days_reopens_but_robots_and_older_answers_do_not(mail_app, pymap_server,
                                                                                     smtp_sink):
    first = reply_once(mail_app, smtp_sink, pymap_server)
    sweep(mail_app, timedelta(hours=73))
    with session_scope(mail_app) as session:  # an answer from eight days ago, also assumed
        old = ledger.claim(session, dedupe_key="<old@customer.example>", message_id="", folder="INBOX", uidvalidity=1,
                           uid=999, from_addr="ann@customer.example", reply_to="ann@customer.example", subject="Old")
        old.state, old.outcome, old.created_at = "replied", "assumed", utcnow() - timedelta(days=8)
        session.commit()
    robot = reply_once(mail_app, smtp_sink, pymap_server, subject="Automatic reply: Re: password",
                       Auto_Submitted="auto-replied")
    assert robot.state == "skipped" and {r.outcome for r in records(mail_app) if r.id != robot.id} == {"assumed"}
    again = reply_once(mail_app, smtp_sink, pymap_server, subject="Still locked out",
                       body="The reset link did not work, I still cannot sign in.")
    assert again.state == "person"  # one auto-reply a day per sender: a person answers this one
    outcome = {r.id: r.outcome for r in records(mail_app)}
    assert outcome[first.id] == "reopened" and outcome[old.id] == "assumed" and outcome[again.id] is None


def test_still_need_help_reopens_even_after_solved(mail_app, pymap_server, smtp_sink):
    reply_once(mail_app, smtp_sink, pymap_server)
    [mail] = smtp_sink.wait_for(1)
    click(mail_app, mail, links.SOLVED)
    click(mail_app, mail, links.HELP)
    [record] = records(mail_app)
    assert (record.resolution, record.outcome) == ("still_need_help", "reopened")
    click(mail_app, mail, links.SOLVED)  # a reopened answer is never counted as resolved
    assert sweep(mail_app, timedelta(hours=80)) == 0 and records(mail_app)[0].outcome == "reopened"


def test_a_reply_sent_on_a_retry_starts_its_wait_too(mail_app, pymap_server, smtp_sink):
    smtp_sink.refuse = "451 4.3.0 try again later"
    pymap_server.append(make_email(sender=ANN))
    worker = make_worker(mail_app, retry_base=60)
    assert worker.run_once()["retry"] == 1
    assert records(mail_app)[0].outcome_at is None  # not answered yet
    smtp_sink.refuse = None
    with session_scope(mail_app) as session:  # the retry is due (instead of waiting a minute)
        session.execute(sa.update(MailRecord).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    worker.run_once()
    [record] = records(mail_app)
    assert record.state == "replied" and record.outcome_at is not None and record.category == "Account"


def test_records_from_before_outcomes_get_theirs_from_the_daily_job(app_factory, shared_db_url):
    app = app_factory(DATABASE_URL=shared_db_url)
    now, long_ago = utcnow(), utcnow() - timedelta(days=4)
    rows = {  # name: (sender, state, resolution, sending_since, outcome_at)
        "solved": ("a@x.example", "replied", "solved", long_ago, None),
        "help": ("b@x.example", "person", "still_need_help", long_ago, None),
        "quiet": ("c@x.example", "replied", None, long_ago, None),
        "asked_again": ("d@x.example", "replied", None, long_ago, None),
        "recent": ("e@x.example", "replied", None, now - timedelta(hours=2), None),
        "waiting": ("f@x.example", "replied", None, long_ago, long_ago),  # answered(), its sweep never ran
        "person": ("g@x.example", "person", None, None, None),
    }
    with session_scope(app) as session:
        ids = {}
        for name, (sender, state, resolution, sent, waiting) in rows.items():
            record = MailRecord(dedupe_key=name, reply_to=sender, state=state, resolution=resolution,
                                sending_since=sent, outcome_at=waiting, created_at=long_ago - timedelta(minutes=5),
                                reply_message_id=f"<{name}@kb>" if sent else None)
            session.add(record)
            session.flush()
            ids[name] = record.id
        session.add(MailRecord(dedupe_key="later", reply_to="d@x.example", state="person", created_at=now - timedelta(days=2)))
        schedule_daily(session)
        session.commit()
    run_due(app)
    with session_scope(app) as session:
        assert session.scalar(sa.select(Job.state).where(Job.kind == outcomes.DAILY)) == "done"
        got = {name: session.get(MailRecord, id_).outcome for name, id_ in ids.items()}
    assert got == {"solved": "confirmed", "help": "reopened", "quiet": "assumed", "asked_again": "reopened",
                   "recent": None, "waiting": "assumed", "person": None}


def test_contact_form_answers_through_the_seam(session, make_article, app):
    """The contact form calls the same three functions with records it has not flushed yet."""
    article = make_article("Returns", category="Orders")
    first = MailRecord(dedupe_key="w1", channel="web_form", state="person", reply_to="Zoe+shop@x.example",
                       matches=[{"article_id": article.id}])
    session.add(first)
    outcomes.answered(session, first, app.config)
    assert first.outcome_at is not None and first.category == "Orders"
    first.resolution = "solved"  # "Does this answer your question?" yes
    outcomes.resolved(session, first)
    second = MailRecord(dedupe_key="w2", channel="web_form", state="person", reply_to="zoe@x.example",
                        matches=[{"article_id": article.id}])
    session.add(second)
    outcomes.answered(session, second, app.config)
    session.commit()
    email = MailRecord(dedupe_key="e1", reply_to="ZOE+other@x.example", state="person")
    session.add(email)
    assert outcomes.question_received(session, email, app.config) == 1  # the same mailbox, +tags aside
    session.commit()
    session.expire_all()
    assert (first.outcome, second.outcome, email.outcome) == ("confirmed", "reopened", None)


def test_a_failing_outcome_step_never_changes_how_the_email_is_handled(mail_app, pymap_server, smtp_sink,
                                                                        monkeypatch, caplog):
    def broken(session, record, settings):
        raise RuntimeError("insights bug")

    monkeypatch.setattr(outcomes, "question_received", broken)
    monkeypatch.setattr(outcomes, "answered", broken)
    record = reply_once(mail_app, smtp_sink, pymap_server)
    smtp_sink.wait_for(1)
    assert record.state == "replied" and record.outcome_at is None  # the daily sweep gives it its outcome later
    assert "outcome not recorded (RuntimeError: insights bug)" in caplog.text
