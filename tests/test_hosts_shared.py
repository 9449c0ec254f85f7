"""Two hosts on one database: each with its own instance folder (and so its own index folder and,
unless KB_SECRET_KEY is set, its own secret key), sharing SQLite or PostgreSQL.

Timed work runs once; login and contact-form counts add up across hosts when the hosts share the
secret key, which is why `kb doctor` asks for KB_SECRET_KEY once the database is shared.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from kb import jobs
from kb.contact import limits
from kb.db import session_scope
from kb.jobs.models import FINAL_STATES, Job
from kb.jobs.scheduling import DAILY
from kb.models import WorkerHeartbeat, utcnow
from tests import job_handlers
from tests.agent_helpers import make_agent
from tests.job_handlers import RUNS
from tests.test_login_throttle import WRONG, assert_locked, fail, login


def host(app_factory, tmp_path: Path, name: str, shared_db_url: str, **settings):
    """An app as one host runs it: its own instance and index folders, the shared database."""
    folder = tmp_path / name
    return app_factory(DATABASE_URL=shared_db_url, INSTANCE_DIR=str(folder), INDEX_DIR=str(folder / "index"),
                       HOST_NAME=name, **settings)


@pytest.fixture(autouse=True)
def _fresh_runs():
    """Each test counts its own handler runs."""
    RUNS.clear()
    job_handlers.GATES.clear()


def test_a_runner_on_each_host_runs_each_job_once(app_factory, tmp_path, shared_db_url):
    quick = {"JOBS_RUNNER": True, "JOBS_POLL_SECONDS": 0.05}
    hosts = [host(app_factory, tmp_path, name, shared_db_url, **quick) for name in ("host-a", "host-b")]
    keys = [f"job{n}" for n in range(24)]
    with session_scope(hosts[0]) as session:
        for key in keys:
            jobs.schedule(session, "test.count", key, payload={"sleep": 0.02})
    deadline = time.monotonic() + 60

    # Only jobs already due: a daily job may leave one for later in the day (the search rollup,
    # run before 03:00 UTC, schedules itself again for when yesterday has settled).
    def settled() -> bool:
        with session_scope(hosts[1]) as session:
            rows = session.execute(sa.select(Job.kind, Job.state).where(Job.run_at <= utcnow())).all()
            beats = session.scalars(sa.select(WorkerHeartbeat.host).where(WorkerHeartbeat.kind == "jobs")).all()
        days = {kind for kind, _ in rows if kind in DAILY}
        return days == DAILY and all(state in FINAL_STATES for _, state in rows) and set(beats) == {"host-a", "host-b"}

    while not settled() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert settled(), "the runners did not finish the jobs (or beat) within 60 s"
    assert sorted(RUNS) == sorted(keys)  # each once, whichever host ran it
    checked = utcnow()
    with session_scope(hosts[0]) as session:
        rows = session.execute(sa.select(Job.kind, Job.key, Job.state, Job.attempts, Job.claimed_by)
                               .where(Job.run_at <= checked)).all()
        later = session.execute(sa.select(Job.state, Job.attempts).where(Job.run_at > checked)).all()
    assert all(state == "pending" and attempts == 0 for state, attempts in later)  # none run early
    day = f"day:{checked.date().isoformat()}"
    assert sorted((kind, key) for kind, key, *_ in rows if kind in DAILY) == sorted((kind, day) for kind in DAILY)
    assert {(state, attempts) for _, _, state, attempts, _ in rows} == {("done", 1)}  # none claimed twice
    assert len({claimed for *_, claimed in rows}) >= 2, "both hosts should have run some jobs"


def test_login_failures_on_two_hosts_count_together(app_factory, tmp_path, shared_db_url):
    first, second = (host(app_factory, tmp_path, name, shared_db_url) for name in ("host-a", "host-b"))
    make_agent(first)
    one, two = first.test_client(), second.test_client()  # one client, its requests spread by the balancer
    fail(one, 2)
    fail(two, 2)
    assert_locked(login(one, password=WRONG), 15)
    assert_locked(login(two), 15)


def test_contact_limits_count_one_client_across_hosts_only_with_one_secret_key(app_factory, tmp_path, shared_db_url):
    shared = [host(app_factory, tmp_path, name, shared_db_url) for name in ("host-a", "host-b")]
    now = utcnow()

    def ask(app, n: int) -> bool:
        settings = {**app.config, "CONTACT_PER_CLIENT": 3}
        with session_scope(app) as session:
            try:
                limits.check(session, settings, f"asker{n}@shop.example", "192.0.2.44", now=now + timedelta(seconds=n))
                return True
            except limits.RateLimited:
                return False

    assert [ask(shared[n % 2], n) for n in range(5)] == [True, True, True, False, False]
    # Secret keys generated per instance folder (no KB_SECRET_KEY): each host counts on its own.
    apart = [host(app_factory, tmp_path, name, shared_db_url, SECRET_KEY=None, TESTING=False)
             for name in ("host-c", "host-d")]
    assert apart[0].config["SECRET_KEY"] != apart[1].config["SECRET_KEY"]
    assert (Path(apart[0].config["INSTANCE_DIR"]) / "secret_key").is_file()
    assert [ask(apart[n % 2], 10 + n) for n in range(8)] == [True] * 6 + [False] * 2
