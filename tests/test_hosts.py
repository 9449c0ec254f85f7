"""Several hosts, one host's view: heartbeats (kb.hosts.heartbeats), /healthz and /readyz
(kb.hosts.health, kb/web/health.py) and `kb doctor` (kb.hosts.doctor, kb/doctor_command.py).

Time passes by giving the request-free functions ``now=``; nothing sleeps.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from kb import retention
from kb.cli import cli
from kb.config import load_config
from kb.db import Database, get_db, session_scope
from kb.hosts import doctor, health, heartbeats
from kb.hosts.health import readiness
from kb.models import IndexChange, SearchLog, WorkerHeartbeat, utcnow
from kb.insights.models import PortalVisit

SECRET_PASSWORD = "hunter2-do-not-print"


def beat_rows(app) -> list[WorkerHeartbeat]:
    """Every heartbeat row, detached."""
    with session_scope(app) as session:
        rows = heartbeats.beats(session)
        session.expunge_all()
    return rows


# --- heartbeats -------------------------------------------------------------------------------

def test_a_beat_is_one_row_per_host_kind_and_process_and_the_daily_sweep_drops_silent_ones(app_factory):
    app = app_factory(HOST_NAME="web-1")
    now = utcnow()
    with session_scope(app) as session:
        heartbeats.beat(session, app.config, "jobs", "done 1", pid=10, now=now - timedelta(hours=30))
        heartbeats.beat(session, app.config, "jobs", "done 2", pid=10, now=now - timedelta(hours=25))
        heartbeats.beat(session, app.config, "jobs", "done 0", pid=11, now=now)
        heartbeats.beat(session, app.config, "autoreply", "replied 0", pid=10, now=now)
    rows = beat_rows(app)
    assert [(r.host, r.kind, r.pid) for r in rows] == [("web-1", "autoreply", 10), ("web-1", "jobs", 11),
                                                       ("web-1", "jobs", 10)]
    old = rows[2]
    assert old.started_at == now - timedelta(hours=30) and old.beat_at == now - timedelta(hours=25)
    assert old.detail == f"machine {socket.gethostname()[:60]}; done 2"
    assert heartbeats.machine_of(old.detail) == socket.gethostname()[:60]
    with session_scope(app) as session:  # the daily retention job is the sweep
        counts = retention.purge(session, retention.cutoff(app.config), now=now)
    assert counts["worker_heartbeats"] == 1
    assert [(r.kind, r.pid) for r in beat_rows(app)] == [("autoreply", 10), ("jobs", 11)]


def test_the_job_runner_beats_while_it_runs_and_removes_its_row_when_it_stops(app_factory):
    from kb.jobs.runner import close_app as stop_runner

    app = app_factory(HOST_NAME="web-2", JOBS_RUNNER=True, JOBS_POLL_SECONDS=0.05)
    runner = app.extensions["kb.jobs"]
    deadline = utcnow() + timedelta(seconds=30)
    while not beat_rows(app) and utcnow() < deadline:
        runner.wake.wait(0.05)
    [row] = beat_rows(app)
    assert (row.host, row.kind, row.pid) == ("web-2", "jobs", os.getpid())
    assert re.fullmatch(r"machine .+; done \d+, retry \d+, failed \d+, lost \d+", row.detail), row.detail
    stop_runner(app)
    assert beat_rows(app) == []


# --- /healthz and /readyz -----------------------------------------------------------------------

def test_readyz_answers_ready_on_both_databases_and_leaves_no_trace(app_factory, shared_db_url):
    app = app_factory(DATABASE_URL=shared_db_url)
    client = app.test_client()
    for _ in range(3):
        response = client.get("/readyz")
        assert response.status_code == 200, response.json
    assert response.json == {"ready": True, "checks": {name: {"ok": True} for name in
                                                       ("database", "migrations", "search", "index_lag")}}
    assert response.headers["Cache-Control"] == "no-store"
    assert client.get("/healthz").json == {"status": "ok"}
    with session_scope(app) as session:  # the probe is neither a search nor a visit
        assert session.scalar(sa.select(sa.func.count()).select_from(SearchLog)) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(PortalVisit)) == 0
    assert "Set-Cookie" not in response.headers


def test_without_a_database_healthz_still_answers_and_readyz_says_why_without_the_path(app):
    missing = Path(app.config["INSTANCE_DIR"]) / "no-such-folder" / "kb.sqlite3"
    engine = sa.create_engine(f"sqlite:///{missing}")
    app.extensions["kb.db"] = Database(engine, sa.orm.sessionmaker(engine))
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json["checks"]
    assert checks["database"] == {"ok": False, "reason": "database unreachable"}
    assert checks["migrations"]["ok"] is False
    assert "no-such-folder" not in response.text and "sqlite" not in response.text
    engine.dispose()


def test_readyz_fails_while_migrations_are_behind_but_not_while_the_database_is_ahead(app):
    def set_revision(revision: str) -> int:
        with session_scope(app) as session:
            session.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
        return app.test_client().get("/readyz").status_code

    head, known = health.code_revisions()
    older = sorted(known - {head})[-1]
    assert set_revision(older) == 503
    assert app.test_client().get("/readyz").json["checks"]["migrations"] == {
        "ok": False, "reason": "database migrations behind"}
    assert set_revision("9999_from_the_next_release") == 200  # newer code migrated first: keep serving
    assert set_revision(head) == 200


def test_readyz_fails_when_the_index_lags_or_is_gone_and_names_no_folder(app_factory, make_article):
    app = app_factory(READY_MAX_INDEX_LAG_SECONDS=60)
    article = make_article("Reset your password")
    with session_scope(app) as session:  # a change no indexer applied for two minutes (KB_INDEXER is off)
        session.add(IndexChange(article_id=article.id, queued_at=utcnow() - timedelta(minutes=2)))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["index_lag"] == {"ok": False, "reason": "index behind the database"}
    app.extensions["kb.search"].process_changes()
    assert app.test_client().get("/readyz").status_code == 200
    shutil.rmtree(app.config["INDEX_DIR"])
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["search"] == {"ok": False, "reason": "search backend not answering"}
    assert app.config["INDEX_DIR"] not in response.text
    [search] = [c for c in readiness(app) if c.name == "search"]
    assert "kb reindex" in search.detail  # `kb doctor` says what to do


# --- kb doctor --------------------------------------------------------------------------------

def fake_beat(host: str, kind: str, age: timedelta, now, machine: str = "m1", pid: int = 1) -> WorkerHeartbeat:
    """A heartbeat row as read from the database (not stored)."""
    return WorkerHeartbeat(host=host, kind=kind, pid=pid, started_at=now - age, beat_at=now - age,
                           detail=f"machine {machine}; done 0")


def by_name(checks) -> dict[str, tuple[str, str]]:
    """name -> (status, detail)."""
    return {c.name: (c.status, c.detail) for c in checks}


def test_doctor_says_what_several_hosts_need_of_the_settings(tmp_path):
    pg = "postgresql+psycopg://kb:pw@db.internal/kb"
    base = {"INSTANCE_DIR": str(tmp_path)}
    one = by_name(doctor.check_settings(load_config({**base, "DATABASE_URL": pg}), hosts=1))
    assert one["secret_key"][0] == "warn" and "set KB_SECRET_KEY to the same value on every host" in one["secret_key"][1]
    assert one["base_url"][0] == "warn"
    two = by_name(doctor.check_settings(load_config({**base, "DATABASE_URL": pg}), hosts=2))
    assert two["secret_key"][0] == "fail"
    assert two["trusted_proxies"][0] == "warn" and two["auto_migrate"][0] == "warn"
    lite = by_name(doctor.check_settings(load_config({**base, "SEARCH_BACKEND": "postgres", "SECRET_KEY": "k" * 40,
                                                      "BASE_URL": "https://help.example.com"}), hosts=2))
    assert lite["search_backend"][0] == "fail" and lite["database_kind"][0] == "fail"
    assert (lite["secret_key"][0], lite["base_url"][0]) == ("ok", "ok")
    assert "pw" not in " ".join(c.detail for c in doctor.check_settings(load_config({**base, "DATABASE_URL": pg}), 2))


def test_doctor_reads_the_heartbeats_per_host_and_finds_a_shared_host_name(tmp_path):
    settings, now = load_config({"INSTANCE_DIR": str(tmp_path), "IMAP_HOST": "imap.example.com"}), utcnow()
    rows = [fake_beat("web-1", "jobs", timedelta(seconds=12), now),
            fake_beat("web-1", "jobs", timedelta(seconds=5), now, machine="m2", pid=2),
            fake_beat("web-2", "jobs", timedelta(hours=3), now, machine="m3"),
            fake_beat("web-2", "autoreply", timedelta(hours=2), now, machine="m3")]
    checks = by_name(doctor.check_workers(rows, settings, now))
    assert checks["heartbeat jobs@web-1"][0] == "ok" and "2 process(es)" in checks["heartbeat jobs@web-1"][1]
    assert checks["heartbeat jobs@web-2"] == ("warn", "last beat 3 h ago: stopped? (rows go after a day)")
    assert checks["workers_autoreply"][0] == "fail" and "kb autoreply" in checks["workers_autoreply"][1]
    assert "workers_jobs" not in checks
    assert checks["host_name"][0] == "fail" and "m1, m2" in checks["host_name"][1]
    assert doctor.fresh_hosts(rows, settings, now) == 1


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_kb_doctor_fails_until_a_runner_beats_and_checks_mail_servers(runner, tmp_path, monkeypatch, smtp_sink):
    for name, value in {"INSTANCE_DIR": str(tmp_path / "instance"), "BASE_URL": "https://help.example.com",
                        "INDEXER": "false", "JOBS_RUNNER": "false", "IMAP_HOST": "127.0.0.1",
                        "IMAP_PORT": str(closed_port()), "IMAP_SECURITY": "none", "IMAP_USER": "support",
                        "IMAP_PASSWORD": SECRET_PASSWORD, **{k: str(v) for k, v in smtp_sink.settings().items()}}.items():
        monkeypatch.setenv(f"KB_{name}", value)
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(cli, ["doctor"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert "ok    database: sqlite" in lines and f"ok    migrations: at {health.code_revisions()[0]}" in lines
    assert any(line.startswith("FAIL  imap: 127.0.0.1:") and "check KB_IMAP_HOST" in line for line in lines)
    assert any(line.startswith("ok    smtp: 127.0.0.1:") for line in lines), result.output
    assert any(line.startswith("FAIL  workers_jobs: no jobs worker beat") for line in lines)
    assert SECRET_PASSWORD not in result.output
    monkeypatch.delenv("KB_IMAP_HOST")
    settings = load_config()
    engine = sa.create_engine(settings["DATABASE_URL"])
    with sa.orm.Session(engine) as session:  # a runner on this host beat just now
        heartbeats.beat(session, settings, "jobs", "done 0")
        session.commit()
    engine.dispose()
    result = runner.invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].endswith("0 failed, 0 warnings")


@pytest.mark.postgres
def test_kb_doctor_on_an_unreachable_postgresql_fails_without_printing_the_password(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("KB_INSTANCE_DIR", str(tmp_path / "instance"))
    monkeypatch.setenv("KB_DATABASE_URL", f"postgresql+psycopg://kb:{SECRET_PASSWORD}@127.0.0.1:{closed_port()}/kb")
    monkeypatch.setenv("KB_INDEXER", "false")
    result = runner.invoke(cli, ["doctor"])
    assert result.exit_code == 1
    assert "FAIL  database: OperationalError" in result.output and "check KB_DATABASE_URL" in result.output
    assert "FAIL  secret_key" not in result.output  # one host seen (none): a warning, not a failure
    assert "warn  secret_key: generated per instance folder" in result.output
    assert SECRET_PASSWORD not in result.output


def test_kb_doctor_explains_an_app_that_cannot_start_without_a_traceback(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("KB_INSTANCE_DIR", str(tmp_path / "instance"))
    monkeypatch.setenv("KB_SEARCH_BACKEND", "postgres")  # on the default SQLite database
    result = runner.invoke(cli, ["doctor"])
    assert result.exit_code == 1, result.output
    assert "FAIL  search_backend: KB_SEARCH_BACKEND=postgres needs a PostgreSQL KB_DATABASE_URL" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
