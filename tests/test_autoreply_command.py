"""`kb autoreply`: the command line around the worker (pymap + aiosmtpd)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from kb.autoreply.worker import Worker
from kb.cli import cli, run_import
from tests.conftest import REPO, TEST_SECRET
from tests.test_autoreply_worker import (BASE_URL, FAST, articles_db, mail_app, make_email,  # noqa: F401
                                         records)

# A worker process that SIGKILLs itself right after the step named in argv[1].
KILLED_WORKER = """
import os, signal, sys
from kb.autoreply.worker import Worker
from kb.cli import make_app

def hook(name, record):
    if name == sys.argv[1]:
        os.kill(os.getpid(), signal.SIGKILL)

Worker(make_app(INDEXER=False), hook=hook).run_once()
"""


def kb_env(tmp_path, pymap_server, smtp_sink, **extra) -> dict[str, str]:
    """KB_ variables pointing the command at the test servers and the test database."""
    values = {**pymap_server.settings(), **smtp_sink.settings(), "BASE_URL": BASE_URL,
              "SECRET_KEY": TEST_SECRET, "DATABASE_URL": f"sqlite:///{tmp_path / 'kb.sqlite3'}",
              "INSTANCE_DIR": str(tmp_path / "instance"), "INDEX_DIR": str(tmp_path / "index"), **extra}
    return {f"KB_{name}": str(value) for name, value in values.items()}


def test_autoreply_once_replies_and_prints_a_summary(app, tmp_path, runner, pymap_server, smtp_sink):
    run_import(app, REPO / "articles")
    pymap_server.append(make_email(sender="hal@customer.example"))
    pymap_server.append(make_email(Precedence="bulk"))
    result = runner.invoke(cli, ["autoreply", "--once"], env=kb_env(tmp_path, pymap_server, smtp_sink))
    assert result.exit_code == 0, result.output
    assert "Handled 2 email(s): 1 replied, 0 left for a person, 1 skipped" in result.output
    assert smtp_sink.wait_for(1)[0].rcpt_tos == ["hal@customer.example"]
    again = runner.invoke(cli, ["autoreply", "--once"], env=kb_env(tmp_path, pymap_server, smtp_sink))
    assert "Handled 0 email(s)" in again.output


def test_autoreply_dry_run_once(app, tmp_path, runner, pymap_server, smtp_sink):
    run_import(app, REPO / "articles")
    pymap_server.append(make_email())
    result = runner.invoke(cli, ["autoreply", "--once", "--dry-run"], env=kb_env(tmp_path, pymap_server, smtp_sink))
    assert result.exit_code == 0, result.output
    assert "1 would get a reply (dry run" in result.output
    assert smtp_sink.messages == []
    assert [r.reason.startswith("dry-run: would reply") for r in records(app)] == [True]


def test_autoreply_without_settings_says_what_to_set(tmp_path, runner):
    env = {"KB_DATABASE_URL": f"sqlite:///{tmp_path / 'kb.sqlite3'}", "KB_SECRET_KEY": TEST_SECRET,
           "KB_INSTANCE_DIR": str(tmp_path / "instance")}
    result = runner.invoke(cli, ["autoreply", "--once"], env=env)
    assert result.exit_code == 1
    assert "KB_IMAP_HOST" in result.output and "KB_SMTP_HOST" in result.output
    assert "Traceback" not in result.output


def test_autoreply_wrong_password_is_one_clear_line(app, tmp_path, runner, pymap_server, smtp_sink):
    env = kb_env(tmp_path, pymap_server, smtp_sink, IMAP_PASSWORD="wrong")
    result = runner.invoke(cli, ["autoreply", "--once"], env=env)
    assert result.exit_code == 1
    assert "refused the login" in result.output and "Traceback" not in result.output


def test_autoreply_runs_until_sigterm(app, tmp_path, pymap_server, smtp_sink):
    run_import(app, REPO / "articles")
    env = {**os.environ, **kb_env(tmp_path, pymap_server, smtp_sink, AUTOREPLY_WAKE_SECONDS=60)}
    process = subprocess.Popen([sys.executable, "-m", "kb", "autoreply"], env=env, cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pymap_server.append(make_email(sender="ivan@customer.example"))
        assert smtp_sink.wait_for(1, timeout=20)[0].rcpt_tos == ["ivan@customer.example"]
        time.sleep(0.3)  # back in IDLE, with a 60 s wake-up: SIGTERM must end the wait at once
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert time.monotonic() - started < 5
    assert "Handled 1 email(s): 1 replied" in out


@pytest.mark.parametrize("step", ["decided", "sent"])
def test_worker_process_sigkilled_mid_email_then_restarted(mail_app, tmp_path, pymap_server, smtp_sink, step):
    pymap_server.append(make_email(sender="first@customer.example"))
    pymap_server.append(make_email(sender="second@customer.example"))
    env = {**os.environ, **kb_env(tmp_path, pymap_server, smtp_sink)}
    done = subprocess.run([sys.executable, "-c", KILLED_WORKER, step], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert [r.from_addr for r in records(mail_app)] == ["first@customer.example"]
    # Restarted once the old worker is surely gone (stale_seconds=0 stands for that wait).
    Worker(mail_app, **FAST, stale_seconds=0).run_once()
    time.sleep(0.2)
    sent_to = sorted(m.rcpt_tos[0] for m in smtp_sink.messages)
    rows = {r.from_addr: r for r in records(mail_app)}
    assert rows["second@customer.example"].state == "replied"
    if step == "sent":  # the reply left, the record did not say so: a person, and no second reply
        assert sent_to == ["first@customer.example", "second@customer.example"]
        assert rows["first@customer.example"].state == "person"
        assert rows["first@customer.example"].reason.startswith("unknown-if-sent")
    else:
        assert sent_to == ["first@customer.example", "second@customer.example"]
        assert rows["first@customer.example"].state == "replied"
