"""Claiming and running due jobs, and the runner that ``kb serve`` (a thread) and ``kb jobs run`` start."""

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
from kb.hosts.heartbeats import Pacer
from kb.jobs.clock import db_now
from kb.jobs.context import Hook, JobContext, LostClaim
from kb.jobs.models import HELD_STATES, Job
from kb.jobs.scheduling import HANDLERS, schedule_daily
from kb.models import utcnow

log = logging.getLogger(__name__)
MAX_BACKOFF = 3600.0  # the longest pause before a failed job is tried again
MAX_OUTAGE_WAIT = 60.0  # the longest pause of a runner that cannot reach the database


def new_runner_id() -> str:
    """A name for one runner: host, process and a random part (two threads never share one)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _due(session, now: datetime, limit: int) -> list[tuple[int, str, int]]:
    """Ids, states and attempts of jobs to claim: pending and due, or held past their lease."""
    stmt = (sa.select(Job.id, Job.state, Job.attempts)
            .where(sa.or_(sa.and_(Job.state == "pending", Job.run_at <= now),
                          sa.and_(Job.state.in_(HELD_STATES), Job.lease_until < now)))
            .order_by(Job.run_at, Job.id).limit(limit))
    return [tuple(row) for row in session.execute(stmt)]


def _claim(session, job_id: int, state: str, attempts: int, runner_id: str, lease: float,
           max_attempts: int) -> bool:
    """Take the job with a compare-and-set on its state and attempts; True if this runner has it.

    A job whose runners died ``max_attempts`` times is given up instead: it must not stop the
    runner on every start.
    """
    now = db_now(session)
    mine = [Job.id == job_id, Job.state == state, Job.attempts == attempts]
    if state != "pending" and attempts >= max_attempts:
        session.execute(sa.update(Job).where(*mine).values(
            state="failed", done_at=now, updated_at=now, lease_until=None,
            last_error=f"its runner stopped or lost it during all {attempts} attempts; given up"))
        session.commit()
        log.warning("job %s given up: its runner stopped during each of %s attempts", job_id, attempts)
        return False
    result = session.execute(sa.update(Job).where(*mine).values(
        state=state if state == "sent" else "running", attempts=attempts + 1, claimed_by=runner_id,
        lease_until=now + timedelta(seconds=lease), updated_at=now))
    session.commit()
    return result.rowcount == 1


def _finish(session, ctx: JobContext) -> None:
    """Mark the job done, in the same commit as whatever its handler changed."""
    now = db_now(session)
    ctx._cas(state="done", done_at=now, lease_until=None)
    session.commit()


def _failed(app: Flask, job_id: int, claim: tuple[str, int], error: str) -> str:
    """Record a failed attempt: try again later with a growing wait, or give up after max attempts."""
    settings = app.config
    runner_id, attempts = claim
    max_attempts, retry_base = int(settings["JOBS_MAX_ATTEMPTS"]), float(settings["JOBS_RETRY_SECONDS"])
    with get_db(app).sessionmaker() as session:
        now = db_now(session)
        wait = timedelta(seconds=min(retry_base * 2 ** max(attempts - 1, 0), MAX_BACKOFF))
        values = {"last_error": error[:2000], "updated_at": now}
        mine = [Job.id == job_id, Job.claimed_by == runner_id, Job.attempts == attempts]
        if attempts >= max_attempts:
            outcome = "failed"
            values.update(state="failed", done_at=now, lease_until=None)
            result = session.execute(sa.update(Job).where(*mine, Job.state.in_(HELD_STATES)).values(**values))
        else:  # a job already "sent" keeps that state: only its bookkeeping is tried again
            outcome = "retry"
            result = session.execute(sa.update(Job).where(*mine, Job.state == "sent").values(
                lease_until=now + wait, **values))
            if result.rowcount == 0:
                result = session.execute(sa.update(Job).where(*mine, Job.state == "running").values(
                    state="pending", run_at=now + wait, lease_until=None, **values))
        session.commit()
        return outcome if result.rowcount == 1 else "lost"


def run_one(app: Flask, job_id: int, runner_id: str, hook: Hook | None = None) -> str:
    """Run one claimed job's handler; returns done, retry, failed or lost.

    A failing handler never raises out of here; only a lost database does (and a test's
    exception marked ``stops_runner``, which stands for the process being killed).
    """
    with get_db(app).sessionmaker() as session:
        job = session.get(Job, job_id)
        if job is None:
            return "lost"
        ctx = JobContext(app, session, job, runner_id, hook)
        kind = job.kind
        try:
            fn = HANDLERS.get(kind)
            if fn is None:
                raise LookupError(f"no handler for jobs of kind {kind!r} (is its module imported?)")
            ctx.step("claimed")
            fn(ctx)
            _finish(session, ctx)
        except LostClaim as exc:
            session.rollback()
            log.warning("%s", exc)
            return "lost"
        except Exception as exc:  # noqa: BLE001 - one failing job is recorded; the others go on
            session.rollback()
            if getattr(exc, "stops_runner", False):
                raise
            outcome = _failed(app, job_id, ctx.claim, f"{type(exc).__name__}: {exc}")
            # The exception's text may hold customer data (STYLE.md 13): it is kept on the job only.
            log.warning("job %s (%s) failed on attempt %s with %s; %s", job_id, kind, ctx.claim[1],
                        type(exc).__name__, "given up (see `kb jobs list`)" if outcome == "failed" else outcome)
            return outcome
    ctx.step("done")
    return "done"


def run_due(app: Flask, *, limit: int = 100, runner_id: str | None = None, hook: Hook | None = None,
            stop: threading.Event | None = None) -> Counter[str]:
    """Claim and run the jobs that are due, one at a time, until none is left; counts of their outcomes.

    Each claim raises the job's attempts, and a job is given up after JOBS_MAX_ATTEMPTS, so this
    ends even when jobs keep failing.
    """
    runner_id = runner_id or new_runner_id()
    settings, counts = app.config, Counter()
    lease, max_attempts = float(settings["JOBS_LEASE_SECONDS"]), int(settings["JOBS_MAX_ATTEMPTS"])
    while stop is None or not stop.is_set():
        with get_db(app).sessionmaker() as session:
            due = _due(session, db_now(session), limit)
        for job_id, state, attempts in due:
            if stop is not None and stop.is_set():
                break
            with get_db(app).sessionmaker() as session:
                if not _claim(session, job_id, state, attempts, runner_id, lease, max_attempts):
                    continue
            counts[run_one(app, job_id, runner_id, hook)] += 1
        if len(due) < limit:
            break
    return counts


def one_line(exc: BaseException) -> str:
    """An exception as one short line: no traceback, no SQL, no parameters."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {detail[0] if detail else ''}"[:300]


class Runner(threading.Thread):
    """Runs due jobs every JOBS_POLL_SECONDS, and at once after this process scheduled one.

    ``kb serve`` starts it as a daemon thread; ``kb jobs run`` calls ``run`` in its main thread.
    """

    def __init__(self, app: Flask):
        super().__init__(name="kb-jobs", daemon=True)
        self.app, self.runner_id = app, new_runner_id()
        self.wake, self.stopping = threading.Event(), threading.Event()
        self.poll = float(app.config["JOBS_POLL_SECONDS"])
        self.counts: Counter[str] = Counter()
        self.daily_done = None  # the UTC day whose recurring jobs this runner made sure of
        self.heartbeat = Pacer(app, "jobs")  # `kb doctor` sees which hosts run jobs

    def run(self) -> None:
        """Run due jobs until stopped. A database that went away is waited for with a growing pause,
        and each failed try is one log line (no traceback: the reason is the database, not kb)."""
        outages = 0
        while not self.stopping.is_set():
            self.wake.clear()  # before looking: a job scheduled while we run wakes the next round
            try:
                self._ensure_daily()
                self.counts.update(run_due(self.app, runner_id=self.runner_id, stop=self.stopping))
                outages, wait = 0, self.poll
                self.heartbeat.beat(self.status())
            except Exception as exc:  # noqa: BLE001 - the database may be restarting: try again later
                outages += 1
                wait = min(self.poll * 2 ** outages, max(MAX_OUTAGE_WAIT, self.poll))
                log.warning("job runner: cannot run jobs (%s); trying again in %.1f s", one_line(exc), wait)
            self.wake.wait(wait)
        self.heartbeat.forget()

    def status(self) -> str:
        """A short status for the heartbeat: this runner's counts of outcomes (no job's data)."""
        counts = self.counts
        return f"done {counts['done']}, retry {counts['retry']}, failed {counts['failed']}, lost {counts['lost']}"

    def _ensure_daily(self) -> None:
        """Once a day (UTC) per runner, make sure the day's recurring jobs exist."""
        today = utcnow().date()
        if self.daily_done == today:
            return
        with get_db(self.app).sessionmaker() as session:
            schedule_daily(session)
            session.commit()
        self.daily_done = today

    def stop(self, timeout: float = 10) -> None:
        """Ask the runner to stop after its current job, and wait for the thread if it was started."""
        self.stopping.set()
        self.wake.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)


LISTENERS = "kb.jobs.listeners"


def init_app(app: Flask) -> None:
    """Wake this process's runner when a commit scheduled a job, and start it if JOBS_RUNNER is on."""
    runner = Runner(app) if app.config["JOBS_RUNNER"] else None
    app.extensions["kb.jobs"] = runner

    def after_commit(session):
        if session.info.pop("kb_job_scheduled", False) and runner is not None:
            runner.wake.set()

    def after_rollback(session):
        session.info.pop("kb_job_scheduled", None)

    sessionmaker = get_db(app).sessionmaker
    app.extensions[LISTENERS] = [(sessionmaker, "after_commit", after_commit),
                                 (sessionmaker, "after_rollback", after_rollback)]
    for target, name, fn in app.extensions[LISTENERS]:
        sa.event.listen(target, name, fn)
    if runner is not None:
        runner.start()


def close_app(app: Flask) -> None:
    """Stop the app's runner thread, if it has one, and remove the session listeners."""
    runner = app.extensions.get("kb.jobs")
    if runner is not None:
        runner.stop()
    for target, name, fn in app.extensions.pop(LISTENERS, []):
        if sa.event.contains(target, name, fn):
            sa.event.remove(target, name, fn)
