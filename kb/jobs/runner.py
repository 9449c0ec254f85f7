"""Claiming and running due jobs, and the runner thread that ``kb serve`` and ``kb jobs`` start."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections import Counter
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask

from kb.db import get_db
from kb.jobs.context import Hook, JobContext, LostClaim
from kb.jobs.models import Job
from kb.jobs.scheduling import HANDLERS
from kb.models import utcnow

log = logging.getLogger(__name__)
MAX_BACKOFF = 3600.0


def new_runner_id() -> str:
    """A name for one runner: host, process and a random part (two threads never share one)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _due(session, now: datetime, limit: int) -> list[tuple[int, str, int]]:
    """Ids, states and attempts of jobs to claim: pending and due, or held past their lease."""
    stmt = (sa.select(Job.id, Job.state, Job.attempts)
            .where(sa.or_(sa.and_(Job.state == "pending", Job.run_at <= now),
                          sa.and_(Job.state.in_(("running", "sent")), Job.lease_until < now)))
            .order_by(Job.run_at, Job.id).limit(limit))
    return list(session.execute(stmt))


def _claim(session, job_id: int, state: str, attempts: int, runner_id: str, now: datetime,
           lease: float, max_attempts: int) -> bool:
    """Take the job with a compare-and-set on its state and attempts; True if this runner has it.

    A job whose runners died ``max_attempts`` times is given up instead: it must not stop the
    runner on every start.
    """
    mine = [Job.id == job_id, Job.state == state, Job.attempts == attempts]
    if state != "pending" and attempts >= max_attempts:
        session.execute(sa.update(Job).where(*mine).values(
            state="failed", done_at=now, updated_at=now,
            last_error=f"the runner stopped during this job {attempts} times; given up"))
        session.commit()
        return False
    result = session.execute(sa.update(Job).where(*mine).values(
        state="sent" if state == "sent" else "running", attempts=attempts + 1, claimed_by=runner_id,
        lease_until=now + timedelta(seconds=lease), updated_at=now))
    session.commit()
    return result.rowcount == 1


def _finish(session, job: Job, runner_id: str) -> None:
    """Mark the job done, in the same commit as whatever its handler changed."""
    now = utcnow()
    result = session.execute(sa.update(Job).where(
        Job.id == job.id, Job.claimed_by == runner_id, Job.state.in_(("running", "sent"))
    ).values(state="done", done_at=now, updated_at=now, lease_until=None))
    if result.rowcount != 1:
        raise LostClaim(f"job {job.id} is no longer held by this runner")
    session.commit()


def _failed(app: Flask, job_id: int, runner_id: str, error: str, max_attempts: int, retry_base: float) -> str:
    """Record a failed attempt: try again later with a growing wait, or give up after max attempts."""
    now = utcnow()
    with get_db(app).sessionmaker() as session:
        job = session.get(Job, job_id)
        if job is None or job.claimed_by != runner_id or job.state not in ("running", "sent"):
            return "lost"
        give_up = job.attempts >= max_attempts
        wait = min(retry_base * 2 ** max(job.attempts - 1, 0), MAX_BACKOFF)
        values = {"last_error": error[:2000], "updated_at": now}
        if give_up:
            values.update(state="failed", done_at=now)
        elif job.state == "sent":  # the effect happened: only the bookkeeping is tried again
            values.update(lease_until=now + timedelta(seconds=wait))
        else:
            values.update(state="pending", run_at=now + timedelta(seconds=wait), lease_until=None)
        session.execute(sa.update(Job).where(Job.id == job_id, Job.claimed_by == runner_id).values(**values))
        session.commit()
        return "failed" if give_up else "retry"


def run_one(app: Flask, job_id: int, runner_id: str, hook: Hook | None = None) -> str:
    """Run one claimed job's handler; returns done, retry, failed or lost. Never raises for the job."""
    settings = app.config
    with get_db(app).sessionmaker() as session:
        job = session.get(Job, job_id)
        fn = HANDLERS.get(job.kind)
        try:
            if fn is None:
                raise LookupError(f"no handler for jobs of kind {job.kind!r}")
            ctx = JobContext(app, session, job, runner_id, hook)
            ctx.step("claimed")
            fn(ctx)
            _finish(session, job, runner_id)
            ctx.step("done")
            return "done"
        except LostClaim as exc:
            session.rollback()
            log.warning("%s", exc)
            return "lost"
        except Exception as exc:  # noqa: BLE001 - one failing job is recorded; the others go on
            session.rollback()
            if getattr(exc, "stops_runner", False):  # a test's "kill": the process dies here
                raise
            error = f"{type(exc).__name__}: {exc}"
            outcome = _failed(app, job_id, runner_id, error, int(settings["JOBS_MAX_ATTEMPTS"]),
                              float(settings["JOBS_RETRY_SECONDS"]))
            log.warning("job %s (%s) failed: %s; %s", job_id, job.kind, error,
                        "given up" if outcome == "failed" else "trying again later")
            return outcome


def run_due(app: Flask, *, limit: int = 100, runner_id: str | None = None, hook: Hook | None = None,
            stop: threading.Event | None = None) -> Counter[str]:
    """Claim and run the jobs that are due now, one at a time; counts of their outcomes."""
    runner_id = runner_id or new_runner_id()
    settings, counts = app.config, Counter()
    lease, max_attempts = float(settings["JOBS_LEASE_SECONDS"]), int(settings["JOBS_MAX_ATTEMPTS"])
    with get_db(app).sessionmaker() as session:
        due = _due(session, utcnow(), limit)
    for job_id, state, attempts in due:
        if stop is not None and stop.is_set():
            break
        with get_db(app).sessionmaker() as session:
            if not _claim(session, job_id, state, attempts, runner_id, utcnow(), lease, max_attempts):
                continue
        counts[run_one(app, job_id, runner_id, hook)] += 1
    return counts


class Runner(threading.Thread):
    """A daemon thread that runs due jobs every JOBS_POLL_SECONDS, and at once after a schedule."""

    def __init__(self, app: Flask):
        super().__init__(name="kb-jobs", daemon=True)
        self.app, self.runner_id = app, new_runner_id()
        self.wake, self.stopping = threading.Event(), threading.Event()
        self.poll = float(app.config["JOBS_POLL_SECONDS"])

    def run(self) -> None:
        """Run due jobs until stopped; a database that went away is waited for, not fatal."""
        while not self.stopping.is_set():
            try:
                while run_due(self.app, runner_id=self.runner_id, stop=self.stopping).total() and not self.stopping.is_set():
                    pass  # more may be due already
            except Exception:  # noqa: BLE001 - the database may be restarting: try at the next poll
                log.exception("the job runner could not reach the database; trying again in %.0f s", self.poll)
            self.wake.wait(self.poll)
            self.wake.clear()

    def stop(self, timeout: float = 10) -> None:
        """Ask the thread to stop after its current job, and wait for it."""
        self.stopping.set()
        self.wake.set()
        if self.is_alive():
            self.join(timeout)


def init_app(app: Flask) -> None:
    """Wake this process's runner when a commit scheduled a job, and start it if JOBS_RUNNER is on."""
    runner = Runner(app) if app.config["JOBS_RUNNER"] else None
    app.extensions["kb.jobs"] = runner

    def after_commit(session):
        if session.info.pop("kb_job_scheduled", False) and runner is not None:
            runner.wake.set()

    def after_rollback(session):
        session.info.pop("kb_job_scheduled", None)

    sa.event.listen(get_db(app).sessionmaker, "after_commit", after_commit)
    sa.event.listen(get_db(app).sessionmaker, "after_rollback", after_rollback)
    if runner is not None:
        runner.start()


def close_app(app: Flask) -> None:
    """Stop the app's runner thread, if it has one."""
    runner = app.extensions.get("kb.jobs")
    if runner is not None:
        runner.stop()
