"""`kb jobs run` and `kb jobs list`: through click's runner, as real processes, and with the database away."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from kb import db as kb_db
from kb import jobs
from kb.cli import cli
from kb.db import get_db
from kb.jobs.models import Job
from kb.jobs.scheduling import DAILY
from tests import job_handlers
from tests.conftest import REPO, TEST_SECRET
from tests.servers import _admin_connection

# The real `kb jobs run`, in a child process that knows the test handlers.
KB_JOBS_RUN = "import sys, tests.job_handlers; from kb.cli import main; sys.argv = ['kb', 'jobs', 'run']; main()"


@pytest.fixture
def kb_env(tmp_path, monkeypatch, smtp_sink) -> dict[str, str]:
    """KB_ variables pointing every `kb` command (and child process) at one throwaway instance."""
    env = {"KB_INSTANCE_DIR": str(tmp_path / "instance"), "KB_DATABASE_URL": f"sqlite:///{tmp_path / 'kb.sqlite3'}",
           "KB_INDEX_DIR": str(tmp_path / "index"), "KB_SECRET_KEY": TEST_SECRET,
           "KB_JOBS_LEASE_SECONDS": "1", "KB_JOBS_POLL_SECONDS": "0.2", "KB_JOBS_RETRY_SECONDS": "0.01",
           "KB_JOBS_MAX_ATTEMPTS": "2"}
    env.update({f"KB_{name}": str(value) for name, value in smtp_sink.settings().items()})
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def env_app(kb_env, app_factory):
    """An app on the commands' database, to schedule jobs and look at them."""
    return app_factory(DATABASE_URL=kb_env["KB_DATABASE_URL"], JOBS_MAX_ATTEMPTS=2)


def add(app, kind: str, key: str, **payload) -> None:
    """Schedule a job and commit."""
    with get_db(app).sessionmaker() as session:
        jobs.schedule(session, kind, key, payload=payload)
        session.commit()


def states_of_all(app) -> list[str]:
    """The state of every job (the day's jobs share one key, so ``states`` shows one of them)."""
    with get_db(app).sessionmaker() as session:
        return list(session.scalars(sa.select(Job.state)))


def states(app) -> dict[str, str]:
    """Each job's key and state."""
    with get_db(app).sessionmaker() as session:
        return dict(session.execute(sa.select(Job.key, Job.state)).all())


def test_jobs_run_once_runs_what_is_due(env_app, runner, smtp_sink):
    add(env_app, "test.email", "hello", to="team@example.com")
    add(env_app, "test.fail", "broken")
    result = runner.invoke(cli, ["jobs", "run", "--once"])
    assert result.exit_code == 0, result.output
    assert "Ran 2 job(s): 1 done, 1 to retry, 0 given up" in result.output
    assert len(smtp_sink.wait_for(1)) == 1
    assert states(env_app) == {"hello": "done", "broken": "pending"}


def test_jobs_list_counts_by_kind_and_state_and_shows_the_failed_ones(env_app, runner):
    assert runner.invoke(cli, ["jobs", "list"]).output.strip() == "No jobs yet."
    add(env_app, "test.count", "a")
    add(env_app, "test.count", "b")
    add(env_app, "test.fail", "broken")
    for _ in range(2):
        jobs.run_due(env_app)
        time.sleep(0.05)
    result = runner.invoke(cli, ["jobs", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["test.count", "done", "2"]
    assert lines[1].split() == ["test.fail", "failed", "1"]
    assert "Given up (newest first):" in lines
    failed = lines[-1]
    assert "test.fail broken (2 attempts" in failed and "RuntimeError: test failure on attempt 2" in failed


def test_kb_jobs_run_killed_mid_job_then_restarted_sends_once(env_app, kb_env, smtp_sink):
    add(env_app, "test.email", "slow", to="team@example.com", sleep_first=60)
    env = {**os.environ, **kb_env}
    first = subprocess.Popen([sys.executable, "-c", KB_JOBS_RUN], env=env, cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    second = None
    try:
        deadline = time.monotonic() + 60
        while states(env_app)["slow"] != "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert states(env_app)["slow"] == "running"  # claimed, and asleep in its handler
        first.kill()  # SIGKILL: no clean-up at all
        first.wait(10)
        second = subprocess.Popen([sys.executable, "-c", KB_JOBS_RUN], env=env, cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        smtp_sink.wait_for(1, timeout=60)
        # Every job, the day's ones included: the slow job comes first, and SIGTERM right after it
        # stopped the runner before the day's jobs about one run in two.
        while set(states_of_all(env_app)) != {"done"} and time.monotonic() < deadline:
            time.sleep(0.1)
        started = time.monotonic()
        second.send_signal(signal.SIGTERM)
        out, err = second.communicate(timeout=10)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate()
    assert second.returncode == 0, err
    assert time.monotonic() - started < 5  # SIGTERM is honoured within seconds
    # The slow job, and the day's jobs (retention scrub, flag scan...) that every runner makes sure of.
    ran = 1 + len(DAILY)
    assert f"Ran {ran} job(s): {ran} done, 0 to retry, 0 given up" in out
    assert len(smtp_sink.messages) == 1
    with get_db(env_app).sessionmaker() as session:
        job = session.scalars(sa.select(Job).where(Job.kind.not_in(DAILY))).one()
    assert (job.state, job.attempts) == ("done", 2)


@pytest.mark.postgres
def test_the_runner_waits_out_a_database_that_went_away(app_factory, pg_database_url, caplog):
    app = app_factory(DATABASE_URL=pg_database_url, JOBS_POLL_SECONDS=0.05)
    runner = jobs.Runner(app)
    name = sa.make_url(pg_database_url).database
    with _admin_connection(pg_database_url) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
    caplog.set_level(logging.WARNING, logger="kb.jobs.runner")
    runner.start()
    time.sleep(2)
    outage = [r for r in caplog.records if "cannot run jobs" in r.getMessage()]
    # Waits of 0.1, 0.2, 0.4, 0.8 s: a handful of lines in 2 s, not one per 0.05 s poll, and no traceback.
    assert 2 <= len(outage) <= 6
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in outage)
    waits = [float(r.getMessage().rsplit("in ", 1)[1].split()[0]) for r in outage]
    assert waits == sorted(waits) and waits[1] == 2 * waits[0]
    with _admin_connection(pg_database_url) as conn:  # the database is back
        conn.execute(f"CREATE DATABASE {name}")
    kb_db.upgrade(get_db(app).engine)
    add(app, "test.count", "after")
    deadline = time.monotonic() + 20
    while "after" not in job_handlers.RUNS and time.monotonic() < deadline:
        time.sleep(0.05)
    runner.stop()
    assert "after" in job_handlers.RUNS
    assert not runner.is_alive()
