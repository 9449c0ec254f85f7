"""The job runner (kb.jobs) on SQLite and PostgreSQL: scheduling, claiming, retries, leases, kills.

The handlers are in tests/job_handlers.py; a "kill" is an exception marked ``stops_runner`` raised
from the step hook, which leaves the database exactly as a killed process would.
"""

from __future__ import annotations

import email
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from kb import jobs
from kb.db import get_db
from kb.jobs.models import Job
from kb.models import utcnow
from tests import job_handlers
from tests.job_handlers import RUNS, Killed

LEASE = 1.0  # the smallest lease the settings allow: a "restart" waits this long


@pytest.fixture(autouse=True)
def _fresh_runs():
    """Each test counts its own handler runs."""
    RUNS.clear()
    job_handlers.GATES.clear()
    yield
    for gate in job_handlers.GATES.values():
        gate.set()


@pytest.fixture
def jobs_app(app_factory, shared_db_url, smtp_sink):
    """Apps on one shared database (SQLite or PostgreSQL), sending to the SMTP sink: ``jobs_app(**settings)``."""
    def factory(**overrides):
        settings = {"DATABASE_URL": shared_db_url, "JOBS_LEASE_SECONDS": LEASE, "JOBS_RETRY_SECONDS": 0.01,
                    **smtp_sink.settings(), **overrides}
        return app_factory(**settings)
    return factory


def add(app, kind: str, key: str, run_at=None, **payload) -> bool:
    """Schedule a job and commit."""
    with get_db(app).sessionmaker() as session:
        created = jobs.schedule(session, kind, key, run_at=run_at, payload=payload)
        session.commit()
        return created


def job(app, kind: str, key: str) -> Job:
    """The job as stored now."""
    with get_db(app).sessionmaker() as session:
        return session.scalars(sa.select(Job).where(Job.kind == kind, Job.key == key)).one()


def kill_at(step: str, attempt: int = 1):
    """A hook that kills the runner after ``step`` of the given attempt."""
    def hook(name, job_row):
        if name == step and job_row.attempts == attempt:
            raise Killed(f"killed after {step}")
    return hook


def after_lease() -> None:
    """Wait until a lease taken now has ended (a restarted runner may then take the job over)."""
    time.sleep(LEASE + 0.1)


def message_ids(sink) -> list[str]:
    """The Message-ID of every email the sink accepted."""
    return [email.message_from_bytes(m.data)["Message-ID"] for m in sink.messages]


# --- scheduling -------------------------------------------------------------------------------

def test_schedule_is_idempotent_per_kind_and_key(jobs_app):
    app = jobs_app()
    assert add(app, "test.count", "a") is True
    assert add(app, "test.count", "a") is False
    assert add(app, "test.fail", "a") is True  # another kind, same key: another job
    with get_db(app).sessionmaker() as session:
        assert session.scalar(sa.select(sa.func.count(Job.id))) == 2


def test_schedule_is_undone_with_the_callers_transaction(jobs_app):
    app = jobs_app()
    with get_db(app).sessionmaker() as session:
        assert jobs.schedule(session, "test.count", "a") is True
        session.rollback()
    with get_db(app).sessionmaker() as session:
        assert session.scalar(sa.select(sa.func.count(Job.id))) == 0
    assert jobs.run_due(app).total() == 0


def test_schedule_from_two_threads_at_once_makes_one_job(jobs_app):
    apps = [jobs_app(), jobs_app()]
    keys = [f"k{i}" for i in range(15)]
    barrier = threading.Barrier(2)
    created: list[tuple[str, bool]] = []

    def schedule_all(app):
        for key in keys:
            barrier.wait(10)
            created.append((key, add(app, "test.count", key)))

    threads = [threading.Thread(target=schedule_all, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(key for key, made in created if made) == sorted(keys)
    assert len(created) == 2 * len(keys)
    with get_db(apps[0]).sessionmaker() as session:
        assert session.scalar(sa.select(sa.func.count(Job.id))) == len(keys)


# --- running ----------------------------------------------------------------------------------

def test_a_due_job_runs_once_and_a_later_one_waits(jobs_app):
    app = jobs_app()
    add(app, "test.count", "now")
    add(app, "test.count", "later", run_at=utcnow() + timedelta(hours=1))
    assert jobs.run_due(app) == {"done": 1}
    assert jobs.run_due(app).total() == 0
    assert RUNS == ["now"]
    done, later = job(app, "test.count", "now"), job(app, "test.count", "later")
    assert (done.state, done.attempts, done.lease_until) == ("done", 1, None)
    assert done.done_at is not None
    assert (later.state, later.attempts) == ("pending", 0)


def test_two_runners_at_once_run_each_job_exactly_once(jobs_app):
    apps = [jobs_app(), jobs_app()]
    keys = [f"job{i}" for i in range(30)]
    for key in keys:
        add(apps[0], "test.count", key, sleep=0.01)
    barrier = threading.Barrier(2)
    counts = []

    def run(app):
        barrier.wait(10)
        counts.append(jobs.run_due(app, limit=7))  # small batches: the runners meet again and again

    threads = [threading.Thread(target=run, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(RUNS) == sorted(keys)  # each once, none twice
    assert sum(c["done"] for c in counts) == len(keys)
    assert all(c["done"] for c in counts), "both runners should have taken some jobs"
    with get_db(apps[0]).sessionmaker() as session:
        states = session.execute(sa.select(Job.state, Job.attempts)).all()
    assert set(states) == {("done", 1)}


def test_a_failing_job_backs_off_is_given_up_and_never_blocks_the_others(jobs_app):
    app = jobs_app(JOBS_MAX_ATTEMPTS=3, JOBS_RETRY_SECONDS=0.05)
    add(app, "test.fail", "bad", run_at=utcnow() - timedelta(minutes=1))  # first in line
    add(app, "test.fail", "flaky", times=1)
    for key in ("a", "b"):
        add(app, "test.count", key)
    assert jobs.run_due(app) == {"retry": 2, "done": 2}
    assert RUNS == ["a", "b"]
    waits = []
    for attempt in (1, 2, 3):
        bad = job(app, "test.fail", "bad")
        assert bad.last_error == f"RuntimeError: test failure on attempt {attempt}"
        if bad.state == "failed":
            break
        waits.append((bad.run_at - bad.updated_at).total_seconds())
        time.sleep(waits[-1] + 0.02)
        jobs.run_due(app)
    assert waits == pytest.approx([0.05, 0.1])  # doubling each time
    bad = job(app, "test.fail", "bad")
    assert (bad.state, bad.attempts) == ("failed", 3)
    assert bad.done_at is not None
    assert jobs.run_due(app).total() == 0  # given up for good
    flaky = job(app, "test.fail", "flaky")
    assert (flaky.state, flaky.attempts) == ("done", 2)
    assert RUNS == ["a", "b", "flaky"]


def test_a_job_without_handler_fails_with_the_reason(jobs_app):
    app = jobs_app(JOBS_MAX_ATTEMPTS=1)
    add(app, "test.nobody", "x")
    assert jobs.run_due(app) == {"failed": 1}
    assert "no handler for jobs of kind 'test.nobody'" in job(app, "test.nobody", "x").last_error


def test_cancel_drops_a_pending_job_only(jobs_app):
    app = jobs_app()
    add(app, "test.count", "a")
    add(app, "test.count", "b")
    with get_db(app).sessionmaker() as session:
        assert jobs.cancel(session, "test.count", "a") is True
        assert jobs.cancel(session, "test.count", "missing") is False
        session.commit()
    assert jobs.run_due(app) == {"done": 1}
    assert RUNS == ["b"]
    with get_db(app).sessionmaker() as session:
        assert jobs.cancel(session, "test.count", "a") is False  # already cancelled
        assert jobs.cancel(session, "test.count", "b") is False  # already done
        assert jobs.schedule(session, "test.count", "a") is False  # the key stays taken
        session.commit()
    assert job(app, "test.count", "a").state == "cancelled"
    assert job(app, "test.count", "b").state == "done"


# --- leases, kills and exactly-once emails ---------------------------------------------------

def test_an_expired_lease_lets_another_runner_take_over(jobs_app, smtp_sink):
    slow, other = jobs_app(), jobs_app()
    gate = job_handlers.GATES["slow"] = threading.Event()
    add(slow, "test.email", "slow", to="customer@example.com")
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(jobs.run_due(slow)))
    thread.start()
    after_lease()  # the first runner is stuck past its lease
    assert jobs.run_due(other) == {"done": 1}
    gate.set()  # the first runner wakes up: its claim is gone, so it must not send
    thread.join(30)
    assert outcome == [{"lost": 1}]
    assert len(smtp_sink.wait_for(1)) == 1
    time.sleep(0.2)
    assert len(smtp_sink.messages) == 1
    stored = job(other, "test.email", "slow")
    assert (stored.state, stored.attempts) == ("done", 2)


def test_a_job_whose_runner_dies_every_time_is_given_up(jobs_app):
    app = jobs_app(JOBS_MAX_ATTEMPTS=2)
    add(app, "test.count", "deadly")
    for attempt in (1, 2):
        with pytest.raises(Killed):
            jobs.run_due(app, hook=kill_at("claimed", attempt))
        after_lease()
    assert jobs.run_due(app).total() == 0
    stored = job(app, "test.count", "deadly")
    assert (stored.state, stored.attempts) == ("failed", 2)
    assert "runner stopped" in stored.last_error
    assert RUNS == []
    assert jobs.run_due(app).total() == 0


@pytest.mark.parametrize("step", ["claimed", "prepared", "sent", "done"])
def test_a_runner_killed_after_any_step_sends_the_email_exactly_once(jobs_app, smtp_sink, step):
    app = jobs_app()
    add(app, "test.email", "alert", to="team@example.com")
    with pytest.raises(Killed):
        jobs.run_due(app, hook=kill_at(step))
    if step in ("sent", "done"):
        assert len(smtp_sink.wait_for(1)) == 1
    after_lease()  # the restart: a new runner once the dead one's lease ended
    restarted = jobs.run_due(app)
    assert restarted == ({} if step == "done" else {"done": 1})
    assert jobs.run_due(app).total() == 0
    stored = job(app, "test.email", "alert")
    assert stored.state == "done"
    assert message_ids(smtp_sink) == [stored.message_id]


def test_a_slow_preparation_renews_the_lease_and_still_sends_once(jobs_app, smtp_sink):
    # A busy machine: more than half the lease went by before the effect. The runner still holds
    # the job (nobody took it over), so it renews the lease and sends, once.
    app = jobs_app()
    add(app, "test.email", "slow", to="team@example.com")

    def slow(name, _job):
        if name == "prepared":
            time.sleep(LEASE * 0.7)

    assert jobs.run_due(app, hook=slow) == {"done": 1}
    assert len(smtp_sink.wait_for(1)) == 1 and job(app, "test.email", "slow").state == "done"


def test_the_message_id_is_kept_across_attempts(jobs_app, smtp_sink):
    app = jobs_app()
    add(app, "test.email", "retried", to="team@example.com")
    smtp_sink.refuse = "451 4.3.0 try again later"
    assert jobs.run_due(app) == {"retry": 1}
    first = job(app, "test.email", "retried")
    assert first.message_id and first.state == "pending"
    smtp_sink.refuse = None
    time.sleep(0.05)
    assert jobs.run_due(app) == {"done": 1}
    smtp_sink.wait_for(1)
    assert message_ids(smtp_sink) == [first.message_id]


def test_a_kill_between_acceptance_and_record_sends_a_copy_with_the_same_message_id(jobs_app, smtp_sink):
    """The one window kb cannot close (README, "Timed work"): the copy is one mail programs fold together."""
    app = jobs_app()
    add(app, "test.email", "window", to="team@example.com", kill_after_send=True)
    with pytest.raises(Killed):
        jobs.run_due(app)
    after_lease()
    assert jobs.run_due(app) == {"done": 1}
    smtp_sink.wait_for(2)
    stored = job(app, "test.email", "window")
    assert message_ids(smtp_sink) == [stored.message_id, stored.message_id]


# --- the runner thread ------------------------------------------------------------------------

def test_the_runner_thread_runs_a_job_as_soon_as_it_is_committed(jobs_app):
    app = jobs_app(JOBS_RUNNER=True, JOBS_POLL_SECONDS=3600)  # only the wake-up can start it
    runner = app.extensions["kb.jobs"]
    assert runner.is_alive()
    add(app, "test.count", "woken")
    deadline = time.monotonic() + 10
    while job(app, "test.count", "woken").state != "done" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job(app, "test.count", "woken").state == "done"
    listeners = list(app.extensions["kb.jobs.listeners"])
    assert all(sa.event.contains(*listener) for listener in listeners)
    jobs.runner.close_app(app)
    assert not runner.is_alive()
    assert not any(sa.event.contains(*listener) for listener in listeners)
