"""The auto-responder worker against real servers: pymap (IMAP, in-process) and aiosmtpd.

Short wake-up, reconnect and retry delays are passed as Worker arguments so the suite stays fast.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
import sqlalchemy as sa

from kb.autoreply import ledger, smtp
from kb.autoreply.mailbox import Mailbox
from kb.autoreply.models import MailRecord
from kb.autoreply.worker import Worker
from kb.cli import run_import
from kb.db import session_scope
from kb.models import WorkerHeartbeat, utcnow
from kb.web import create_app
from tests.concurrency import together
from tests.conftest import REPO, close_app, make_config

BASE_URL = "https://help.kb.example"
OUR_HOST = "help.kb.example"
FAST = {"wake_seconds": 0.3, "backoff": (0.05, 0.3), "retry_base": 0.2}


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the step runs (BaseException passes every except Exception)."""


def make_email(subject: str = "How do I reset my password?",
               body: str = "I forgot my password and cannot sign in. How can I reset the password?",
               sender: str | None = None, message_id: str | None = None, **headers: str) -> bytes:
    """A customer's email; extra headers as keyword arguments (underscores become dashes)."""
    message = EmailMessage(policy=default_policy)
    message["From"] = sender or f"Carol {uuid.uuid4().hex[:6]} <carol-{uuid.uuid4().hex[:8]}@customer.example>"
    message["To"] = "support@kb.example"
    message["Subject"] = subject
    message["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@customer.example>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


@pytest.fixture(scope="session")
def articles_db(tmp_path_factory) -> Path:
    """A SQLite database holding the starter articles, imported once and copied by each test."""
    folder = tmp_path_factory.mktemp("articles-db")
    app = create_app(make_config(folder))
    try:
        run_import(app, REPO / "articles")
    finally:
        close_app(app)  # the last connection closing folds the WAL into the file
    return folder / "kb.sqlite3"


def seeded_app(app_factory, tmp_path: Path, articles_db: Path, **settings):
    """An app on a copy of the starter-articles database (the default database path of app_factory)."""
    shutil.copyfile(articles_db, tmp_path / "kb.sqlite3")
    return app_factory(BASE_URL=BASE_URL, **settings)


@pytest.fixture
def mail_app(app_factory, tmp_path, articles_db, pymap_server, smtp_sink):
    """An app wired to the test IMAP and SMTP servers, with the starter articles published."""
    return seeded_app(app_factory, tmp_path, articles_db, **pymap_server.settings(), **smtp_sink.settings(),
                      TEAM_ADDRESS="team@kb.example", AUTOREPLY_WAKE_SECONDS=1)


def make_worker(app, **options) -> Worker:
    """A worker with the fast test delays unless overridden."""
    return Worker(app, **{**FAST, **options})


def records(app) -> list[MailRecord]:
    """Every mail record, oldest first."""
    with session_scope(app) as session:
        rows = list(session.scalars(sa.select(MailRecord).order_by(MailRecord.id)))
        session.expunge_all()
    return rows


@pytest.fixture
def running(mail_app):
    """Start ``run_forever`` workers in threads; all are stopped and joined at the end."""
    started: list[tuple[threading.Thread, threading.Event, list]] = []

    def start(app=None, **options) -> Worker:
        worker = make_worker(app or mail_app, **options)
        errors = []

        def target():
            try:
                worker.run_forever()
            except BaseException as exc:  # surfaced by the fixture's teardown
                errors.append(exc)

        thread = threading.Thread(target=target, name="kb-autoreply-test", daemon=True)
        thread.start()
        started.append((thread, worker, errors))
        return worker

    yield start
    for _, worker, _ in started:
        worker.interrupt()
    for thread, _, errors in started:
        thread.join(15)
        assert not thread.is_alive(), "the worker did not stop"
        assert not errors, errors


def wait_until(predicate, timeout: float = 8.0, what: str = "condition"):
    """Poll ``predicate`` until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def parsed(mail) -> EmailMessage:
    """A message the sink received, parsed."""
    return message_from_bytes(mail.data, policy=default_policy)


def test_reply_arrives_within_seconds_while_idle_threaded_and_marked(mail_app, pymap_server, smtp_sink, running):
    worker = running(wake_seconds=20)  # a long wake-up: only IDLE's push can make it this fast
    wait_until(lambda: worker.waiting, what="the worker to enter IDLE")
    original = make_email(message_id="<q1@customer.example>", sender="Carol <carol@customer.example>",
                          References="<earlier@customer.example>")
    started = time.monotonic()
    pymap_server.append(original)
    [mail] = smtp_sink.wait_for(1, timeout=5)
    assert time.monotonic() - started < 3
    reply = parsed(mail)
    assert mail.rcpt_tos == ["carol@customer.example"]
    assert reply["Subject"] == "Re: How do I reset my password?"
    assert reply["In-Reply-To"] == "<q1@customer.example>"
    assert reply["References"].split() == ["<earlier@customer.example>", "<q1@customer.example>"]
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["X-Auto-Response-Suppress"] == "All"
    assert reply["Message-ID"].endswith(f"@{OUR_HOST}>")
    text = reply.get_body(("plain",)).get_content()
    assert f"{BASE_URL}/articles/reset-password" in text
    assert f"{BASE_URL}/mail/feedback/" in text
    [record] = wait_until(lambda: [r for r in records(mail_app) if r.marked], what="the mark")
    assert (record.state, record.reply_message_id) == ("replied", reply["Message-ID"])
    assert "kb-replied" in pymap_server.flags()[record.uid]
    assert "\\Seen" not in pymap_server.flags()[record.uid]


def test_must_not_answer(mail_app, pymap_server, smtp_sink):
    cases = {
        "auto-submitted": make_email(Auto_Submitted="auto-replied"),
        "autoreply-subject": make_email(subject="Out of office: back on Monday"),
        "bounce": make_email(sender="MAILER-DAEMON@mx.customer.example", subject="Undelivered Mail Returned to Sender"),
        "list": make_email(List_Id="<news.customer.example>"),
        "bulk": make_email(Precedence="bulk"),
        "noreply": make_email(sender="no-reply@shop.example"),
        "own-address": make_email(sender="support@kb.example"),
        "reply-to-our-reply": make_email(subject="Re: How do I reset my password?",
                                         In_Reply_To=f"<forgotten@{OUR_HOST}>"),
    }
    for raw in cases.values():
        pymap_server.append(raw)
    pymap_server.append(make_email(sender="dave@customer.example"))  # the one that gets a reply
    counts = make_worker(mail_app).run_once()
    [mail] = smtp_sink.wait_for(1)
    assert mail.rcpt_tos == ["dave@customer.example"]
    rows = records(mail_app)
    assert len(rows) == len(cases) + 1
    rows.sort(key=lambda r: r.uid)
    flags = pymap_server.flags()
    for code, row in zip(cases, rows):
        wanted = "person" if code == "reply-to-our-reply" else "skipped"
        assert row.state == wanted and row.reason.split(":")[0] in code + " bounce autoreply-header", (code, row.reason)
        assert f"kb-{'needs-person' if wanted == 'person' else 'skipped'}" in flags[row.uid]
    assert counts["replied"] == 1 and counts["skipped"] == 7 and counts["person"] == 1


def test_second_once_sends_nothing_and_the_cursor_moves(mail_app, pymap_server, smtp_sink):
    for n in range(3):
        pymap_server.append(make_email(sender=f"c{n}@customer.example"))
    assert make_worker(mail_app).run_once()["replied"] == 3
    smtp_sink.wait_for(3)
    second = make_worker(mail_app).run_once()
    assert sum(second.values()) == 0
    time.sleep(0.2)
    assert len(smtp_sink.messages) == 3
    with session_scope(mail_app) as session:
        assert ledger.get_cursor(session, "INBOX").last_uid == max(pymap_server.uids())


def test_same_email_delivered_twice_is_answered_once(mail_app, pymap_server, smtp_sink):
    raw = make_email(message_id="<twice@customer.example>")
    pymap_server.append(raw)
    pymap_server.append(raw)
    counts = make_worker(mail_app).run_once()
    assert (counts["replied"], counts["already"]) == (1, 1)
    assert len(smtp_sink.messages) == 1


def test_dry_run_records_but_sends_and_changes_nothing(mail_app, pymap_server, smtp_sink):
    pymap_server.append(make_email())
    pymap_server.append(make_email(Auto_Submitted="auto-generated"))
    before = pymap_server.flags()
    counts = make_worker(mail_app, dry_run=True).run_once()
    assert (counts["new"], counts["skipped"]) == (1, 1)
    assert pymap_server.flags() == before and pymap_server.folders() == ["INBOX"]
    assert smtp_sink.messages == []
    rows = records(mail_app)
    assert all(r.reason.startswith("dry-run: ") for r in rows)
    assert rows[0].reason.startswith("dry-run: would reply: confident")
    assert all(r.reply_message_id is None for r in rows)
    # Shadow mode hides nothing from the live worker.
    assert make_worker(mail_app).run_once()["replied"] == 1
    assert len(smtp_sink.wait_for(1)) == 1


STEPS = ["fetched", "claimed", "decided", "sending", "sent", "finished", "marked"]


@pytest.mark.parametrize("step", STEPS)
def test_killed_between_steps_then_restarted(mail_app, pymap_server, smtp_sink, step):
    pymap_server.append(make_email(sender="first@customer.example"))
    pymap_server.append(make_email(sender="second@customer.example"))

    def kill(name, record):
        if name == step:
            raise Killed(step)

    with pytest.raises(Killed):
        make_worker(mail_app, hook=kill).run_once()
    # Restarted; stale_seconds=0 stands for "long enough that the old worker is surely dead".
    make_worker(mail_app, stale_seconds=0).run_once()
    make_worker(mail_app, stale_seconds=0).run_once()
    time.sleep(0.2)
    sent_to = [m.rcpt_tos[0] for m in smtp_sink.messages]
    assert len(sent_to) == len(set(sent_to)), f"duplicate reply: {sent_to}"
    rows = {r.from_addr: r for r in records(mail_app)}
    assert set(rows) == {"first@customer.example", "second@customer.example"}  # nothing lost
    assert all(r.state in ("replied", "person") for r in rows.values())
    first = rows["first@customer.example"]
    if step in ("sending", "sent"):  # killed around SMTP: kb cannot know, so a person takes it
        assert first.state == "person" and first.reason.startswith("unknown-if-sent")
        assert sent_to.count("first@customer.example") == (1 if step == "sent" else 0)
    else:
        assert first.state == "replied" and sent_to.count("first@customer.example") == 1
    assert rows["second@customer.example"].state == "replied"
    assert all(r.marked for r in rows.values())


def test_two_workers_at_once_send_no_duplicate(mail_app, pymap_server, smtp_sink):
    count = 8
    for n in range(count):
        pymap_server.append(make_email(sender=f"c{n}@customer.example"))
    workers = [make_worker(mail_app) for _ in range(2)]
    together([w.run_once for w in workers], timeout=30)
    assert_one_reply_each(smtp_sink, workers, count)
    assert {r.state for r in records(mail_app)} == {"replied"}


def assert_one_reply_each(smtp_sink, workers, count: int) -> None:
    """Customers c0..c<count> got exactly one reply each, between all the workers."""
    smtp_sink.wait_for(count)
    time.sleep(0.2)  # a duplicate would arrive just after
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == sorted(f"c{n}@customer.example" for n in range(count))
    assert sum(w.counts["replied"] for w in workers) == count


def test_imap_server_restarted_under_a_running_worker(mail_app, pymap_server, smtp_sink, running):
    running()
    pymap_server.append(make_email(sender="before@customer.example"))
    smtp_sink.wait_for(1)
    pymap_server.restart(keep_data=True)
    pymap_server.append(make_email(sender="after@customer.example"))
    mails = smtp_sink.wait_for(2, timeout=10)
    assert [m.rcpt_tos[0] for m in mails] == ["before@customer.example", "after@customer.example"]


def test_imap_server_replaced_new_uidvalidity(mail_app, pymap_server, smtp_sink, running):
    running()
    pymap_server.append(make_email(sender="before@customer.example", message_id="<keep@customer.example>"))
    smtp_sink.wait_for(1)
    pymap_server.restart(keep_data=False)  # an empty mailbox: UIDs start again
    pymap_server.append(make_email(sender="before@customer.example", message_id="<keep@customer.example>"))
    pymap_server.append(make_email(sender="after@customer.example"))
    mails = smtp_sink.wait_for(2, timeout=10)
    time.sleep(0.5)
    assert [m.rcpt_tos[0] for m in smtp_sink.messages] == ["before@customer.example", "after@customer.example"]
    assert len(mails) == 2


def test_smtp_down_for_a_while_then_replies_go_out(mail_app, pymap_server, smtp_sink, running):
    smtp_sink.stop()
    running()
    pymap_server.append(make_email(sender="patient@customer.example"))
    wait_until(lambda: [r for r in records(mail_app) if r.state == "retry" and r.attempts >= 2],
               what="two refused attempts")
    [uid] = pymap_server.uids()
    assert "kb-replied" not in pymap_server.flags()[uid]
    smtp_sink.start()
    [mail] = smtp_sink.wait_for(1, timeout=8)
    assert mail.rcpt_tos == ["patient@customer.example"]
    [record] = wait_until(lambda: [r for r in records(mail_app) if r.marked], what="the mark")
    assert record.state == "replied"
    assert "kb-replied" in pymap_server.flags()[uid]


def test_smtp_refusing_then_accepting(mail_app, pymap_server, smtp_sink):
    smtp_sink.refuse = "451 4.3.0 try again later"
    pymap_server.append(make_email(sender="patient@customer.example"))
    worker = make_worker(mail_app, retry_base=60)
    assert worker.run_once()["retry"] == 1
    smtp_sink.refuse = None
    worker.run_once()
    assert smtp_sink.messages == []  # not due yet: the backoff holds
    with session_scope(mail_app) as session:  # the minute passes (a wait would be at the mercy of load)
        [record] = session.scalars(sa.select(MailRecord)).all()
        assert record.next_attempt_at > utcnow() + timedelta(seconds=50)
        record.next_attempt_at = utcnow() - timedelta(seconds=1)
        session.commit()
    worker.run_once()
    [mail] = smtp_sink.wait_for(1)
    assert mail.rcpt_tos == ["patient@customer.example"]
    [record] = records(mail_app)
    assert (record.state, record.attempts) == ("replied", 1)
    assert record.reason.startswith("confident:") and "451" not in record.reason  # the failure is cleared


def test_smtp_connection_breaking_after_data_goes_to_a_person_not_resent(mail_app, pymap_server, smtp_sink,
                                                                          monkeypatch):
    monkeypatch.setattr(smtp, "TIMEOUT_SECONDS", 0.3)  # give up on the server's answer quickly
    smtp_sink.reply_delay = 1.0  # the reply is delivered, but its 250 comes too late
    pymap_server.append(make_email(sender="unlucky@customer.example"))
    worker = make_worker(mail_app, retry_base=0.1)
    assert worker.run_once()["person"] == 1
    [record] = records(mail_app)
    assert record.state == "person" and record.reason.startswith("unknown-if-sent:")
    smtp_sink.reply_delay = 0
    time.sleep(0.2)
    worker.run_once()
    assert len(smtp_sink.wait_for(1)) == 1  # the one that got through; never a second
    time.sleep(0.3)
    assert len(smtp_sink.messages) == 1


def test_still_need_help_marks_the_email_for_a_person_and_sends_no_mail_of_its_own(mail_app, pymap_server, smtp_sink):
    pymap_server.append(make_email(sender="carol@customer.example"))
    make_worker(mail_app).run_once()
    smtp_sink.wait_for(1)
    [record] = records(mail_app)
    with session_scope(mail_app) as session:
        ledger.resolve(session, record.id, "still_need_help")
    make_worker(mail_app).run_once()
    assert "kb-needs-person" in pymap_server.flags()[record.uid]
    time.sleep(0.3)
    # The team hears of the click from the follow-up case's alert (kb.followup), not from the worker.
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["carol@customer.example"]]


def test_new_article_is_used_without_restart(mail_app, pymap_server, smtp_sink, make_article):
    worker = make_worker(mail_app)
    pymap_server.append(make_email(subject="Snowshoe rental", body="Can I rent snowshoes for the weekend?",
                                   sender="first@customer.example"))
    assert worker.run_once()["person"] == 1
    make_article("Renting snowshoes", body_md="You can rent snowshoes for a day or a weekend in every store.")
    pymap_server.append(make_email(subject="Snowshoe rental", body="Can I rent snowshoes for the weekend?",
                                   sender="second@customer.example"))
    assert worker.run_once()["replied"] == 1
    assert b"renting-snowshoes" in smtp_sink.wait_for(1)[0].data


def test_unparseable_email_goes_to_a_person_and_the_worker_goes_on(mail_app, pymap_server, smtp_sink):
    pymap_server.append(b"\r\n\r\n")
    pymap_server.append(make_email(sender="ok@customer.example"))
    counts = make_worker(mail_app).run_once()
    assert (counts["person"], counts["replied"]) == (1, 1)
    first = records(mail_app)[0]
    assert first.state == "person" and first.reason.startswith("unparseable")


def test_mailbox_factory_default_uses_settings(mail_app, pymap_server):
    worker = make_worker(mail_app)
    with worker.mailbox_factory() as mailbox:
        assert isinstance(mailbox, Mailbox) and mailbox.select() > 0


class NoIdleMailbox(Mailbox):
    """The real mailbox, as if the server did not offer IDLE."""

    @property
    def has_idle(self) -> bool:
        return False


def test_polls_when_the_server_has_no_idle(app_factory, tmp_path, articles_db, pymap_server, smtp_sink, running):
    app = seeded_app(app_factory, tmp_path, articles_db, **pymap_server.settings(), **smtp_sink.settings(),
                     IMAP_POLL_SECONDS=1)
    worker = running(app, wake_seconds=20, mailbox_factory=lambda: NoIdleMailbox(app.config))
    wait_until(lambda: worker.waiting, what="the worker to wait")
    started = time.monotonic()
    pymap_server.append(make_email(sender="poll@customer.example"))
    assert smtp_sink.wait_for(1, timeout=5)[0].rcpt_tos == ["poll@customer.example"]
    assert time.monotonic() - started < 2.5  # the 1 s poll, not the 20 s wake-up


@pytest.mark.postgres
def test_two_workers_on_postgresql_send_no_duplicate(app_factory, pg_database_url, pymap_server, smtp_sink):
    app = app_factory(DATABASE_URL=pg_database_url, **pymap_server.settings(), **smtp_sink.settings(),
                      BASE_URL=BASE_URL)
    run_import(app, REPO / "articles")
    count = 8
    for n in range(count):
        pymap_server.append(make_email(sender=f"c{n}@customer.example"))
    workers = [make_worker(app) for _ in range(3)]
    threads = [threading.Thread(target=w.run_once) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    smtp_sink.wait_for(count)
    time.sleep(0.2)
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == sorted(f"c{n}@customer.example" for n in range(count))
    assert sum(w.counts["replied"] for w in workers) == count


def test_two_workers_on_two_hosts_instance_folders_send_no_duplicate(app_factory, tmp_path, articles_db, shared_db_url,
                                                                     pymap_server, smtp_sink):
    """Each worker as its own host runs it (its own instance and index folders) on one database."""
    if shared_db_url.startswith("sqlite:///"):
        shutil.copyfile(articles_db, shared_db_url.removeprefix("sqlite:///"))
    apps = []
    for name in ("host-a", "host-b"):
        apps.append(app_factory(DATABASE_URL=shared_db_url, INSTANCE_DIR=str(tmp_path / name), HOST_NAME=name,
                                INDEX_DIR=str(tmp_path / name / "index"), BASE_URL=BASE_URL,
                                **pymap_server.settings(), **smtp_sink.settings()))
        if not shared_db_url.startswith("sqlite") and name == "host-a":
            run_import(apps[0], REPO / "articles")
    count = 8
    for n in range(count):
        pymap_server.append(make_email(sender=f"c{n}@customer.example"))
    workers = [make_worker(app) for app in apps]
    together([w.run_once for w in workers], timeout=60)
    assert_one_reply_each(smtp_sink, workers, count)
    assert {r.state for r in records(apps[1])} == {"replied"}
    with session_scope(apps[1]) as session:  # each host's worker beat under its own name
        beats = session.execute(sa.select(WorkerHeartbeat.host, WorkerHeartbeat.kind)).all()
    assert sorted(beats) == [("host-a", "autoreply"), ("host-b", "autoreply")]


def test_per_sender_cap_second_email_goes_to_a_person(mail_app, pymap_server, smtp_sink):
    pymap_server.append(make_email(sender="same@customer.example"))
    pymap_server.append(make_email(sender="same@customer.example", subject="Password again",
                                   body="I still cannot reset my password, how do I reset the password?"))
    counts = make_worker(mail_app).run_once()
    assert (counts["replied"], counts["person"]) == (1, 1)
    second = records(mail_app)[1]
    assert second.state == "person" and second.reason.startswith("sender-cap")
    assert "cannot reset my password" in second.text  # kept for the agent page and alerts
    assert len(smtp_sink.wait_for(1)) == 1


def test_large_email_is_read_partly_and_answered(app_factory, tmp_path, articles_db, pymap_server, smtp_sink):
    app = seeded_app(app_factory, tmp_path, articles_db, **pymap_server.settings(), **smtp_sink.settings(),
                     AUTOREPLY_MAX_BYTES=100_000)
    message = message_from_bytes(make_email(sender="big@customer.example"), policy=default_policy)
    message.add_attachment(b"\0" * 3_000_000, maintype="application", subtype="octet-stream", filename="dump.bin")
    pymap_server.append(message.as_bytes())
    assert make_worker(app).run_once()["replied"] == 1
    assert smtp_sink.wait_for(1)[0].rcpt_tos == ["big@customer.example"]


def test_a_failure_on_one_email_hands_it_to_a_person_and_goes_on(mail_app, pymap_server, smtp_sink):
    pymap_server.append(make_email(sender="first@customer.example"))
    pymap_server.append(make_email(sender="second@customer.example"))

    def fail_first(name, record):
        if name == "decided" and record.from_addr == "first@customer.example":
            raise RuntimeError("boom")

    counts = make_worker(mail_app, hook=fail_first).run_once()
    assert (counts["person"], counts["replied"]) == (1, 1)
    first, second = records(mail_app)
    assert first.state == "person" and first.reason == "error: RuntimeError: boom"
    assert second.state == "replied"
    assert [m.rcpt_tos for m in smtp_sink.wait_for(1)] == [["second@customer.example"]]


def eight_bit_email(sender: bytes, subject: bytes = b"How do I reset my password?") -> bytes:
    """A customer's email whose From header is raw 8-bit text, as many mail programs send it."""
    return (b"From: " + sender + b"\r\nTo: support@kb.example\r\nSubject: " + subject
            + b"\r\nMessage-ID: <" + uuid.uuid4().hex.encode() + b"@customer.example>\r\n"
            + b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
            + b"I forgot my password and cannot sign in. How can I reset the password?\r\n")


@pytest.mark.parametrize("sender, name", [
    ("Jürgen Müller <juergen@customer.example>".encode(), "Jürgen Müller"),
    ("\"Müller, Jürgen\" <juergen@customer.example>".encode(), "Müller, Jürgen"),
    ("王小明 <juergen@customer.example>".encode(), "王小明"),
    (b"J\xfcrgen M\xfcller <juergen@customer.example>", "Jürgen Müller"),  # Latin-1 bytes, not UTF-8
])
def test_an_8bit_display_name_gets_its_reply_with_the_name_intact(mail_app, pymap_server, smtp_sink, sender, name):
    pymap_server.append(eight_bit_email(sender, "Passwort zurücksetzen? How do I reset my password?".encode()))
    assert make_worker(mail_app).run_once()["replied"] == 1
    [mail] = smtp_sink.wait_for(1)
    reply = parsed(mail)
    assert mail.rcpt_tos == ["juergen@customer.example"]
    assert reply["To"].addresses[0].display_name == name
    assert reply["Subject"] == "Re: Passwort zurücksetzen? How do I reset my password?"
    assert f"Hello {name}," in reply.get_body(("plain",)).get_content()
    assert reply["Content-Language"] == "en"
    assert reply["From"].addresses[0].display_name == "Customer support"


@pytest.mark.parametrize("where, answer", [
    ("rcpt", "550 5.1.1 <gone@customer.example>: Recipient address rejected"),
    ("data", "552 5.3.4 Message size exceeds fixed limit"),
    ("data", "554 5.7.1 Rejected by policy"),
])
def test_a_permanent_smtp_refusal_hands_the_email_to_a_person_at_once(mail_app, pymap_server, smtp_sink, where,
                                                                       answer):
    setattr(smtp_sink, "refuse_rcpt" if where == "rcpt" else "refuse", answer)
    pymap_server.append(make_email(sender="gone@customer.example"))
    pymap_server.append(make_email(sender="fine@customer.example"))
    worker = make_worker(mail_app, retry_base=0.05)
    assert worker.run_once()["person"] == 2
    first = records(mail_app)[0]
    assert first.state == "person" and first.reason.startswith("send-refused: ") and answer in first.reason
    assert "kb-needs-person" in pymap_server.flags()[first.uid]
    setattr(smtp_sink, "refuse_rcpt" if where == "rcpt" else "refuse", None)
    time.sleep(0.1)
    worker.run_once()
    assert smtp_sink.messages == [] and {r.state for r in records(mail_app)} == {"person"}  # never retried


@pytest.mark.parametrize("answer", ["451 4.3.0 Try again later", "421 4.3.2 Service shutting down"])
def test_temporary_refusals_are_retried_a_limited_number_of_times(app_factory, tmp_path, articles_db, pymap_server,
                                                                  smtp_sink, answer):
    app = seeded_app(app_factory, tmp_path, articles_db, **pymap_server.settings(), **smtp_sink.settings(),
                     AUTOREPLY_SEND_ATTEMPTS=3)
    smtp_sink.refuse = answer
    pymap_server.append(make_email(sender="patient@customer.example"))
    worker = make_worker(app, retry_base=0.05)
    worker.run_once()
    wait_until(lambda: (worker.run_once(), records(app)[0].state == "person")[1], timeout=30,
               what="the retries to run out")
    [record] = records(app)
    assert record.attempts == 3 and record.reason.startswith("send-failed: gave up after 3 attempts")
    assert answer in record.reason
    assert "kb-needs-person" in pymap_server.flags()[record.uid]


def test_plus_addresses_and_case_do_not_get_past_the_sender_cap(mail_app, pymap_server, smtp_sink):
    senders = ["victim@customer.example", *[f"victim+{n}@customer.example" for n in range(1, 6)],
               "Victim@CUSTOMER.example", "VICTIM+x@Customer.Example"]
    for sender in senders:
        pymap_server.append(make_email(sender=sender))
    counts = make_worker(mail_app).run_once()
    assert (counts["replied"], counts["person"]) == (1, len(senders) - 1)
    assert [m.rcpt_tos for m in smtp_sink.wait_for(1)] == [["victim@customer.example"]]
    assert all(r.reason.startswith("sender-cap: ") for r in records(mail_app)[1:])
