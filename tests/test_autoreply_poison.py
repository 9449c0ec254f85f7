"""Poison mail through the real ``kb autoreply`` (a subprocess): on pymap and Dovecot, SQLite and PostgreSQL.

Each poisonous email must end recorded with its reason, the emails behind it must be answered,
and a second ``--once`` must exit 0 with nothing left. A real SIGTERM in the middle of a slow
email ends the worker within seconds; SIGKILLs in the middle of one, with restarts, end with the
email handed to a person after KB_AUTOREPLY_MAX_ATTEMPTS. Slow and huge emails are made so on
purpose (tests/misbehaving.py, through tests/misbehaving_site/sitecustomize.py); the other
triggers are the real ones from issue 6.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from kb.cli import run_import
from tests.conftest import REPO
from tests.test_autoreply_command import kb_env
from tests.test_autoreply_worker import articles_db, make_email, wait_until  # noqa: F401

FINAL_STATES = {"replied", "person", "skipped", "retry"}
SITE = REPO / "tests" / "misbehaving_site"


def raw_email(sender: bytes, subject: bytes = b"How do I reset my password?",
              body: bytes = b"I forgot my password and cannot sign in. How can I reset the password?",
              headers: bytes = b"", message_id: bytes | None = None) -> bytes:
    """An email written byte by byte, so that odd bytes reach the server exactly as given."""
    message_id = message_id or f"<{uuid.uuid4().hex}@customer.example>".encode()
    return (b"From: " + sender + b"\r\nTo: support@kb.example\r\nSubject: " + subject +
            b"\r\nMessage-ID: " + message_id + b"\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" + headers + b"\r\n" + body + b"\r\n")


POISON = {
    "8-bit address (raw UTF-8)": raw_email("用户@例子.广告".encode()),
    "stray 0xFF in the address": raw_email(b"Carol <carol\xff@customer.example>"),
    "NUL in the body": raw_email(b"nul-body@customer.example", body=b"How do I reset\x00 my password?"),
    "NUL in the body, encoded": raw_email(b"nul-qp@customer.example", body=b"How do I reset=00 my password?",
                                          headers=b"Content-Transfer-Encoding: quoted-printable\r\n"),
    "NUL in the subject": raw_email(b"nul-subject@customer.example", subject=b"Reset\x00 my password"),
    "NUL in the subject, encoded": raw_email(b"nul-word@customer.example", subject=b"=?utf-8?q?Reset=00_password?="),
    "NUL in the address": raw_email(b"nul\x00addr@customer.example"),
    "Message-ID near the column's length": raw_email(b"long-id@customer.example",
                                                     message_id=b"<" + b"m" * 480 + b"@customer.example>"),
    "HTML that is slow to read (issue 6)": raw_email(b"html@customer.example", body=b"<a " * 27_000).replace(
        b"Content-Type: text/plain", b"Content-Type: text/html"),
    "slow (C code for a minute)": raw_email(b"slow@customer.example", headers=b"X-Kb-Test: slow=60\r\n"),
    "huge (400 MB)": raw_email(b"huge@customer.example", headers=b"X-Kb-Test: huge=400\r\n"),
}
REASONS = {"slow (C code for a minute)": "too-slow:", "huge (400 MB)": "too-big:"}


@pytest.fixture(params=["pymap", "dovecot"])
def imap(request):
    """A fresh mailbox on pymap or on Dovecot."""
    return request.getfixturevalue("pymap_server" if request.param == "pymap" else "dovecot_account")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, app_factory, tmp_path, articles_db) -> str:
    """A database holding the starter articles: a SQLite copy, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        (tmp_path / "kb.sqlite3").write_bytes(articles_db.read_bytes())
        return f"sqlite:///{tmp_path / 'kb.sqlite3'}"
    url = request.getfixturevalue("pg_database_url")
    run_import(app_factory(DATABASE_URL=url), REPO / "articles")
    return url


def poison_env(tmp_path, imap, smtp_sink, **settings) -> dict[str, str]:
    """The environment of a real ``kb autoreply``: test servers, small limits, misbehaving emails."""
    limits = {"AUTOREPLY_MESSAGE_SECONDS": 1, "AUTOREPLY_MESSAGE_MEMORY_MB": 100}
    env = {**os.environ, **kb_env(tmp_path, imap, smtp_sink, **{**limits, **settings})}
    env["PYTHONPATH"] = os.pathsep.join([str(SITE), str(REPO)])
    return env


def kb_autoreply(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``kb autoreply ARGS`` to its end."""
    return subprocess.run([sys.executable, "-m", "kb", "autoreply", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def records(database_url: str) -> list[dict]:
    """Every mail record as a dict, oldest first (read with SQLAlchemy, as another process would)."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(sa.text("SELECT * FROM mail_records ORDER BY id"))]
    finally:
        engine.dispose()


def test_poison_mail_is_recorded_and_the_mail_behind_it_answered(tmp_path, imap, smtp_sink, database_url):
    labels = {}
    for n, (label, raw) in enumerate(POISON.items()):
        imap.append(raw)
        imap.append(make_email(sender=f"good{n}@customer.example"))
        labels[imap.uids()[-2]] = label
    env = poison_env(tmp_path, imap, smtp_sink, DATABASE_URL=database_url)

    shadow = kb_autoreply(env, "--once", "--dry-run")
    assert shadow.returncode == 0, shadow.stderr[-3000:]
    live = kb_autoreply(env, "--once")
    assert live.returncode == 0, live.stderr[-3000:]
    assert "Traceback" not in live.stderr, live.stderr[-3000:]

    rows = records(database_url)
    shadow_rows = [r for r in rows if r["dedupe_key"].startswith("dry-run:")]
    live_rows = {r["uid"]: r for r in rows if not r["dedupe_key"].startswith("dry-run:")}
    assert len(shadow_rows) == len(live_rows) == 2 * len(POISON)
    for uid, label in labels.items():
        row = live_rows[uid]
        assert row["state"] in FINAL_STATES and row["reason"], (label, row["state"], row["reason"])
        assert row["reason"].startswith(REASONS.get(label, "")), (label, row["reason"])
        assert "\x00" not in row["subject"] + row["from_addr"] + row["text"], label
    good = [r for r in live_rows.values() if r["from_addr"].startswith("good")]
    assert {r["state"] for r in good} == {"replied"}
    answered = {m.rcpt_tos[0] for m in smtp_sink.wait_for(len(POISON))}
    assert {f"good{n}@customer.example" for n in range(len(POISON))} <= answered

    again = kb_autoreply(env, "--once")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Handled 0 email(s)" in again.stdout


def kb_processes(marker: Path) -> list[int]:
    """PIDs of processes started with ``marker`` in their environment (the worker and its children)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(marker).encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            pass
    return found


def sqlite_row(path: Path, sender: str) -> sqlite3.Row | None:
    """The record of ``sender`` read straight from the SQLite file, None before its claim."""
    if not path.exists():
        return None
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM mail_records WHERE from_addr = ?", (sender,)).fetchone()
    except sqlite3.OperationalError:  # the tables are still being created
        return None
    finally:
        conn.close()


@pytest.fixture
def sqlite_url(tmp_path, articles_db) -> str:
    """A SQLite copy of the starter-articles database."""
    (tmp_path / "kb.sqlite3").write_bytes(articles_db.read_bytes())
    return f"sqlite:///{tmp_path / 'kb.sqlite3'}"


def test_sigterm_in_the_middle_of_a_slow_email_ends_the_worker_within_seconds(
        tmp_path, pymap_server, smtp_sink, sqlite_url):
    pymap_server.append(raw_email(b"slow@customer.example", headers=b"X-Kb-Test: slow=300\r\n"))
    pymap_server.append(make_email(sender="after@customer.example"))
    env = poison_env(tmp_path, pymap_server, smtp_sink, DATABASE_URL=sqlite_url, AUTOREPLY_MESSAGE_SECONDS=600)
    process = subprocess.Popen([sys.executable, "-m", "kb", "autoreply"], env=env, cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: sqlite_row(tmp_path / "kb.sqlite3", "slow@customer.example"), 60, "the slow email's claim")
        time.sleep(1)  # well into the minutes of C code
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
        stopped = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err[-3000:]
    assert stopped < 5
    wait_until(lambda: not kb_processes(tmp_path), 5, "the worker's child processes to end")
    row = sqlite_row(tmp_path / "kb.sqlite3", "slow@customer.example")
    assert (row["state"], row["handling_attempts"]) == ("new", 0)  # given back, not counted against it
    again = kb_autoreply(poison_env(tmp_path, pymap_server, smtp_sink, DATABASE_URL=sqlite_url), "--once")
    assert again.returncode == 0, again.stderr[-3000:]
    assert sqlite_row(tmp_path / "kb.sqlite3", "slow@customer.example")["reason"].startswith("too-slow")
    assert sqlite_row(tmp_path / "kb.sqlite3", "after@customer.example")["state"] == "replied"


def test_sigkill_in_the_middle_of_a_slow_email_then_restarts_hand_it_to_a_person(
        tmp_path, pymap_server, smtp_sink, sqlite_url):
    pymap_server.append(make_email(sender="before@customer.example"))
    pymap_server.append(raw_email(b"slow@customer.example", headers=b"X-Kb-Test: slow=300\r\n"))
    pymap_server.append(make_email(sender="after@customer.example"))
    env = poison_env(tmp_path, pymap_server, smtp_sink, DATABASE_URL=sqlite_url, AUTOREPLY_MESSAGE_SECONDS=600,
                     AUTOREPLY_RECLAIM_SECONDS=1, AUTOREPLY_MAX_ATTEMPTS=3)
    database = tmp_path / "kb.sqlite3"
    for attempt in (1, 2, 3):
        process = subprocess.Popen([sys.executable, "-m", "kb", "autoreply", "--once"], env=env, cwd=REPO,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: (sqlite_row(database, "slow@customer.example") or {"handling_attempts": 0})
                       ["handling_attempts"] == attempt, 60, f"attempt {attempt}")
            time.sleep(0.5)  # in the middle of it
        finally:
            process.kill()  # SIGKILL: nothing is recorded, nothing cleaned up
            process.wait(10)
        wait_until(lambda: not kb_processes(tmp_path), 5, "the killed worker's children to end")
        time.sleep(1.1)  # KB_AUTOREPLY_RECLAIM_SECONDS: long enough that the next start takes it over
    final = kb_autoreply(env, "--once")
    assert final.returncode == 0, final.stderr[-3000:]
    slow = sqlite_row(database, "slow@customer.example")
    assert slow["state"] == "person", slow["reason"]
    assert slow["reason"].startswith("unfinished: processing did not finish in 3 attempt")
    assert {sqlite_row(database, s)["state"] for s in ("before@customer.example", "after@customer.example")} == {"replied"}
    again = kb_autoreply(env, "--once")
    assert again.returncode == 0 and "Handled 0 email(s)" in again.stdout
