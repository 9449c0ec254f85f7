"""Job handlers for the tests of kb.jobs only: registered when a test (or a test's child process) imports this."""

from __future__ import annotations

import threading
import time
from email.message import EmailMessage
from email.utils import make_msgid

from kb import jobs
from kb.autoreply import smtp

RUNS: list[str] = []  # keys of the "test.count" jobs run in this process, in order
RUNS_LOCK = threading.Lock()
GATES: dict[str, threading.Event] = {}  # "test.email" jobs whose key is here wait for the event on attempt 1


class Killed(Exception):
    """Stands for the runner process being killed at this point."""

    stops_runner = True


@jobs.handler("test.count")
def count(ctx) -> None:
    """Note that the job ran (and take a moment, so concurrent runners overlap)."""
    time.sleep(float(ctx.payload.get("sleep", 0)))
    with RUNS_LOCK:
        RUNS.append(ctx.job.key)


@jobs.handler("test.fail")
def fail(ctx) -> None:
    """Fail on the first ``times`` attempts (always, without it)."""
    if ctx.job.attempts <= int(ctx.payload.get("times", 1_000)):
        raise RuntimeError(f"test failure on attempt {ctx.job.attempts}")
    with RUNS_LOCK:
        RUNS.append(ctx.job.key)


@jobs.handler("test.email")
def email(ctx) -> None:
    """Send one email to ``payload["to"]`` with a Message-ID kept across attempts.

    ``sleep_first`` seconds of work on the first attempt (a child process is killed in it);
    ``kill_after_send``: the process dies after the server accepted the email, before kb's record.
    """
    payload = ctx.payload
    if ctx.job.attempts == 1:
        time.sleep(float(payload.get("sleep_first", 0)))
        gate = GATES.get(ctx.job.key)
        if gate is not None:
            gate.wait(30)
    message_id = ctx.message_id(lambda: make_msgid(domain="kb.test"))
    message = EmailMessage()
    message["From"], message["To"] = "support@kb.example", payload["to"]
    message["Subject"], message["Message-ID"] = f"Job {ctx.job.key}", message_id
    message.set_content("A test email from a job.")

    def send() -> None:
        smtp.send(message, ctx.settings)
        if payload.get("kill_after_send") and ctx.job.attempts == 1:
            raise Killed("killed between the server's acceptance and kb's record")

    ctx.deliver(send)
