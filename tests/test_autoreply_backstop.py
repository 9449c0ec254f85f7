"""One email must never block the auto-responder (pymap + aiosmtpd, worker in the test process).

Bounded processing (time, memory, a crash), bounded attempts after kills, a stop in the middle of
an email, a first write the database refuses, and upkeep loops that one record cannot stop. The
same poison through the real ``kb autoreply`` is in test_autoreply_poison.py.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
import sqlalchemy as sa

from kb.autoreply import ledger
from kb.autoreply.mailbox import Mailbox, MailboxGone
from kb.autoreply.models import MailRecord
from kb.db import get_db, session_scope
from tests import misbehaving
from tests.test_autoreply_worker import (BASE_URL, Killed, articles_db, make_email, make_worker, records,  # noqa: F401
                                         seeded_app, wait_until)


@pytest.fixture
def limited_app(app_factory, tmp_path, articles_db, pymap_server, smtp_sink):
    """A mail app whose per-email limits are small: one second, 100 MB."""
    return seeded_app(app_factory, tmp_path, articles_db, **pymap_server.settings(), **smtp_sink.settings(),
                      TEAM_ADDRESS="team@kb.example", AUTOREPLY_MESSAGE_SECONDS=1,
                      AUTOREPLY_MESSAGE_MEMORY_MB=100)


def misbehaving_worker(app, **options):
    """A worker whose processing misbehaves on emails marked with X-Kb-Test (tests/misbehaving.py)."""
    return make_worker(app, process=misbehaving.process_message, **options)


def by_sender(app) -> dict[str, MailRecord]:
    """Every record by its sender."""
    return {r.from_addr: r for r in records(app)}


def sent_to(smtp_sink) -> list[str]:
    """The recipients of everything the SMTP sink received."""
    return sorted(m.rcpt_tos[0] for m in smtp_sink.messages)


@pytest.mark.parametrize("kind, amount, reason", [
    ("slow", 60, "too-slow: processing did not finish within 1 s"),
    ("huge", 400, "too-big: processing needed more than 100 MB"),
    ("crash", None, "error: processing stopped: the process died (SIGSEGV)"),
])
def test_an_email_over_the_limits_goes_to_a_person_and_the_rest_are_answered(
        limited_app, pymap_server, smtp_sink, kind, amount, reason):
    pymap_server.append(make_email(sender="before@customer.example"))
    pymap_server.append(make_email(sender="poison@customer.example", X_Kb_Test=misbehaving.header(kind, amount)))
    pymap_server.append(make_email(sender="after@customer.example"))
    started = time.monotonic()
    counts = misbehaving_worker(limited_app).run_once()
    assert time.monotonic() - started < 30  # the slow one asked for a minute of C code
    rows = by_sender(limited_app)
    assert rows["poison@customer.example"].state == "person"
    assert rows["poison@customer.example"].reason.startswith(reason)
    assert rows["poison@customer.example"].subject == "How do I reset my password?"  # from the quick look
    assert (counts["replied"], counts["person"]) == (2, 1)
    smtp_sink.wait_for(2)
    assert sent_to(smtp_sink) == ["after@customer.example", "before@customer.example"]


def test_killed_during_an_email_it_is_tried_again_then_left_for_a_person(limited_app, pymap_server, smtp_sink, caplog):
    pymap_server.append(make_email(sender="unlucky@customer.example", subject="Killer question"))
    pymap_server.append(make_email(sender="next@customer.example"))

    def kill_on_the_unlucky_one(name, record):
        if name == "claimed" and record.subject == "Killer question":
            raise Killed(name)  # stands for SIGKILL (or the OOM killer) in the middle of the email

    for attempt in (1, 2, 3):
        with pytest.raises(Killed):
            make_worker(limited_app, hook=kill_on_the_unlucky_one, stale_seconds=0).run_once()
        assert by_sender(limited_app)["unlucky@customer.example"].handling_attempts == attempt
    assert "attempt 3 of 3" in caplog.text
    make_worker(limited_app, stale_seconds=0).run_once()
    rows = by_sender(limited_app)
    assert rows["unlucky@customer.example"].state == "person"
    assert rows["unlucky@customer.example"].reason.startswith("unfinished: processing did not finish in 3 attempt")
    assert rows["next@customer.example"].state == "replied"
    assert "kb-needs-person" in pymap_server.flags()[rows["unlucky@customer.example"].uid]
    assert sent_to(smtp_sink) == ["next@customer.example"]


def test_stopping_in_the_middle_of_a_slow_email_gives_it_back(app_factory, tmp_path, articles_db, pymap_server,
                                                               smtp_sink):
    app = seeded_app(app_factory, tmp_path, articles_db, **pymap_server.settings(), **smtp_sink.settings(),
                     AUTOREPLY_MESSAGE_SECONDS=120)
    pymap_server.append(make_email(sender="slow@customer.example", X_Kb_Test=misbehaving.header("slow", 300)))
    worker = misbehaving_worker(app)
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    wait_until(lambda: records(app), timeout=30, what="the slow email's claim")
    time.sleep(0.5)  # in the middle of its processing
    started = time.monotonic()
    worker.interrupt()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - started < 5
    [record] = records(app)
    assert (record.state, record.reason, record.handling_attempts) == ("new", "", 0)  # given back, not counted
    limited = app_factory(BASE_URL=BASE_URL, **pymap_server.settings(), **smtp_sink.settings(),
                          AUTOREPLY_MESSAGE_SECONDS=1)  # the same database
    assert misbehaving_worker(limited).run_once()["person"] == 1  # the next start takes it at once
    assert records(app)[0].reason.startswith("too-slow")


def refuse_subject_on_insert(app, word: str) -> None:
    """A database trigger that refuses to store a new record whose subject contains ``word``."""
    engine = get_db(app).engine
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(sa.text(
                f"CREATE TRIGGER refuse BEFORE INSERT ON mail_records WHEN NEW.subject LIKE '%{word}%' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the database'); END"))
        else:
            conn.execute(sa.text(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.subject LIKE '%" + word + "%' "
                "THEN RAISE EXCEPTION 'refused by the database'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"))
            conn.execute(sa.text("CREATE TRIGGER refuse BEFORE INSERT ON mail_records "
                                 "FOR EACH ROW EXECUTE FUNCTION refuse()"))


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_first_write_the_database_refuses_records_a_bare_row_and_the_cursor_moves(
        request, app_factory, tmp_path, articles_db, pymap_server, smtp_sink, database):
    if database == "postgres":
        app = app_factory(DATABASE_URL=request.getfixturevalue("pg_database_url"), BASE_URL="https://help.kb.example",
                          **pymap_server.settings(), **smtp_sink.settings())
        from kb.cli import run_import
        from tests.conftest import REPO
        run_import(app, REPO / "articles")
    else:
        app = seeded_app(app_factory, tmp_path, articles_db, **pymap_server.settings(), **smtp_sink.settings())
    refuse_subject_on_insert(app, "Poisoned")
    pymap_server.append(make_email(sender="poison@customer.example", subject="Poisoned question"))
    pymap_server.append(make_email(sender="after@customer.example"))
    counts = make_worker(app).run_once()
    assert (counts["person"], counts["replied"]) == (1, 1)
    bare, after = records(app)
    assert bare.state == "person" and bare.reason.startswith("unrecordable: the email's details could not be stored")
    assert "refused by the database" in bare.reason and bare.uid == pymap_server.uids()[0]
    assert after.state == "replied" and smtp_sink.wait_for(1)[0].rcpt_tos == ["after@customer.example"]
    assert sum(make_worker(app).run_once().values()) == 0  # nothing left: the cursor moved past it


def test_a_retry_that_fails_on_its_own_does_not_stop_the_cycle(mail_app, pymap_server, smtp_sink):
    pymap_server.append(make_email(sender="helped@customer.example"))
    make_worker(mail_app).run_once()
    [helped] = records(mail_app)
    with session_scope(mail_app) as session:
        ledger.resolve(session, helped.id, "help")  # its IMAP mark comes after the retries
    smtp_sink.refuse = "451 4.3.0 try again later"
    pymap_server.append(make_email(sender="retry@customer.example"))
    assert make_worker(mail_app).run_once()["retry"] == 1
    smtp_sink.refuse = None
    time.sleep(0.5)  # the retry is due

    def broken_retry(name, record):
        if name == "sending" and record.from_addr == "retry@customer.example":
            raise RuntimeError("this reply cannot be sent")

    make_worker(mail_app, hook=broken_retry).run_once()
    assert by_sender(mail_app)["helped@customer.example"].marked  # the marks after the retries still ran
    make_worker(mail_app, stale_seconds=0).run_once()
    retry = by_sender(mail_app)["retry@customer.example"]
    assert retry.state == "person" and retry.reason.startswith("unknown-if-sent")  # never sent twice
    assert len(smtp_sink.messages) == 1


class BreaksOnMark(Mailbox):
    """The real mailbox, but the connection breaks whenever the email ``poison_uid`` is marked."""

    poison_uid = 0

    def mark(self, uid, keyword=None, move_to=None):
        if uid == self.poison_uid:
            self.client.shutdown()
            raise MailboxGone(f"the connection broke while marking UID {uid}")
        return super().mark(uid, keyword=keyword, move_to=move_to)


def test_an_email_whose_mark_breaks_the_connection_is_left_unmarked_after_the_attempt_limit(
        mail_app, pymap_server, smtp_sink, caplog):
    pymap_server.append(make_email(sender="first@customer.example"))
    BreaksOnMark.poison_uid = pymap_server.uids()[0]
    worker = make_worker(mail_app, mailbox_factory=lambda: BreaksOnMark(mail_app.config))
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        wait_until(lambda: by_sender(mail_app).get("first@customer.example") and
                   by_sender(mail_app)["first@customer.example"].marked, timeout=20, what="giving up the mark")
        pymap_server.append(make_email(sender="second@customer.example"))
        wait_until(lambda: len(smtp_sink.messages) == 2, what="the next email answered")
    finally:
        worker.interrupt()
        thread.join(10)
    assert by_sender(mail_app)["first@customer.example"].mark_attempts == 3
    assert "left unmarked" in caplog.text


def test_a_claimed_email_that_vanished_goes_to_a_person(mail_app, pymap_server, smtp_sink):
    pymap_server.append(make_email(sender="gone@customer.example"))

    def kill(name, record):
        if name == "claimed":
            raise Killed(name)

    with pytest.raises(Killed):
        make_worker(mail_app, hook=kill).run_once()
    with pymap_server.client() as client:  # a person deletes the email meanwhile
        client.select_folder("INBOX")
        client.delete_messages(pymap_server.uids())
        client.expunge()
    make_worker(mail_app, stale_seconds=0).run_once()
    [record] = records(mail_app)
    assert record.state == "person" and record.reason.startswith("vanished: the email left INBOX")
    assert sum(make_worker(mail_app, stale_seconds=0).run_once().values()) == 0


def test_an_article_that_cannot_be_read_does_not_stop_the_replies(mail_app, pymap_server, smtp_sink, make_article):
    make_article("Stars", body_md="*" * 2000 + "x" + "*" * 2000)  # RecursionError in Markdown today
    pymap_server.append(make_email(sender="carol@customer.example"))
    assert make_worker(mail_app).run_once()["replied"] == 1


@pytest.fixture
def mail_app(app_factory, tmp_path, articles_db, pymap_server, smtp_sink):
    """An app wired to the test IMAP and SMTP servers, with the starter articles published."""
    return seeded_app(app_factory, tmp_path, articles_db, **pymap_server.settings(), **smtp_sink.settings(),
                      TEAM_ADDRESS="team@kb.example")


def run_until(worker, predicate, what: str, timeout: float = 30) -> None:
    """run_forever until ``predicate()`` holds, then stop it."""
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        wait_until(predicate, timeout=timeout, what=what)
    finally:
        worker.interrupt()
        thread.join(10)
    assert not thread.is_alive()


def retry_lines(caplog) -> list[logging.LogRecord]:
    """The worker's log records that announce a retry."""
    return [r for r in caplog.records if "trying again in" in r.getMessage()]


def delays(lines: list[logging.LogRecord]) -> list[float]:
    """The delays announced by ``lines``."""
    return [float(r.getMessage().rsplit("trying again in ", 1)[1].split()[0]) for r in lines]


def test_a_server_refusing_the_folder_is_retried_with_growing_delays_one_line_each(
        app_factory, tmp_path, articles_db, pymap_server, smtp_sink, caplog):
    app = seeded_app(app_factory, tmp_path, articles_db, **pymap_server.settings(IMAP_FOLDER="Missing"),
                     **smtp_sink.settings())
    caplog.set_level(logging.INFO, logger="kb.autoreply")
    run_until(make_worker(app, backoff=(0.05, 0.4)), lambda: len(retry_lines(caplog)) >= 5, "five attempts")
    lines = retry_lines(caplog)
    assert delays(lines)[:5] == [0.05, 0.1, 0.2, 0.4, 0.4]
    assert all(r.exc_info is None for r in caplog.records)  # an expected failure: no traceback
    assert all("\n" not in r.getMessage() for r in lines)


def test_a_cycle_failing_after_connect_backs_off_and_a_bug_logs_its_traceback_once(mail_app, pymap_server, caplog):
    pymap_server.append(make_email())

    def bug(name, record):
        if name == "fetched":
            raise RuntimeError("a bug in kb")

    caplog.set_level(logging.INFO, logger="kb.autoreply")
    run_until(make_worker(mail_app, hook=bug, backoff=(0.05, 0.4)), lambda: len(retry_lines(caplog)) >= 5,
              "five attempts")
    lines = retry_lines(caplog)
    assert delays(lines)[:5] == [0.05, 0.1, 0.2, 0.4, 0.4]  # connecting worked each time; the cycle did not
    assert [r.exc_info is not None for r in lines][:3] == [True, False, False]
    assert all("a bug in kb" in r.getMessage() or r.exc_info for r in lines)


def test_a_database_failing_mid_cycle_backs_off_without_tracebacks(mail_app, pymap_server, caplog):
    with get_db(mail_app).engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE mail_cursors RENAME TO mail_cursors_gone"))
    caplog.set_level(logging.INFO, logger="kb.autoreply")
    run_until(make_worker(mail_app, backoff=(0.05, 0.4)), lambda: len(retry_lines(caplog)) >= 5, "five attempts")
    lines = retry_lines(caplog)
    assert delays(lines)[:5] == [0.05, 0.1, 0.2, 0.4, 0.4]
    assert all(r.exc_info is None for r in caplog.records)


def test_handle_email_takes_raw_bytes_without_a_mailbox(mail_app):
    worker = misbehaving_worker(mail_app, dry_run=True)  # what a fuzz run does: decide and record, send nothing
    try:
        assert worker.handle_email(make_email(sender="fuzz@customer.example")) == "new"  # would reply
        assert worker.handle_email(b"\x00\xff\r\n\r\nno headers") == "person"
        assert worker.handle_email(make_email(sender="slow@customer.example", X_Kb_Test="slow=60")) == "person"
    finally:
        worker.close()
    rows = by_sender(mail_app)
    assert rows["fuzz@customer.example"].reason.startswith("dry-run: would reply: confident")
    assert rows["slow@customer.example"].reason.startswith("dry-run: too-slow")
