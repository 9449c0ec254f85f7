"""`kb doctor`'s checks of a deployment: settings, database, search, mail and workers' heartbeats.

Request-free; kb/doctor_command.py prints them, one line each. A check's ``detail`` says what
was found and what to fix; nothing here prints a password or a database URL.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, Mapping

import sqlalchemy as sa
from flask import Flask

from kb.config import SETTINGS_BY_NAME
from kb.db import get_db
from kb.hosts import health, heartbeats, mailcheck
from kb.hosts.health import Check
from kb.models import utcnow

FRESH_AT_LEAST = timedelta(minutes=5)  # a worker silent for longer is reported as stopped
STARTS = {"jobs": "start `kb jobs run`, or the app with KB_JOBS_RUNNER on",
          "autoreply": "start `kb autoreply` on one host or more"}


def dialect(settings: Mapping[str, Any]) -> str:
    """The database's dialect name (sqlite, postgresql, ...) from DATABASE_URL."""
    return sa.make_url(str(settings["DATABASE_URL"])).get_backend_name()


def fresh_within(kind: str, settings: Mapping[str, Any]) -> timedelta:
    """How long a worker of ``kind`` may be silent while alive: its loop's longest wait, twice, plus a beat."""
    wait = float(settings["AUTOREPLY_WAKE_SECONDS"] if kind == "autoreply" else settings["JOBS_POLL_SECONDS"])
    return max(FRESH_AT_LEAST, timedelta(seconds=2 * wait + heartbeats.BEAT_SECONDS))


def ago(delta: timedelta) -> str:
    """A short age: 12 s, 4 min, 3 h, 2 d."""
    seconds = max(delta.total_seconds(), 0)
    for size, unit in ((86_400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size:.0f} {unit}"
    return f"{seconds:.0f} s"


def check_settings(settings: Mapping[str, Any], hosts: int) -> list[Check]:
    """The settings that matter on several hosts; ``hosts`` is how many hosts' workers beat lately."""
    on_sqlite, checks = dialect(settings) == "sqlite", []
    if settings.get("SECRET_KEY"):
        checks.append(Check("secret_key", "ok", "", "set in the settings"))
    elif on_sqlite and hosts <= 1:
        checks.append(Check("secret_key", "ok", "", "generated in the instance folder (fine on one host)"))
    else:
        checks.append(Check("secret_key", "fail" if hosts > 1 else "warn", "per instance folder",
                            "generated per instance folder while the database is shared: set KB_SECRET_KEY to the "
                            "same value on every host (sessions, links and the login and contact-form counts need it)"))
    backend = str(settings.get("SEARCH_BACKEND") or "whoosh")
    if backend == "postgres" and on_sqlite:
        checks.append(Check("search_backend", "fail", "postgres on SQLite", "KB_SEARCH_BACKEND=postgres needs a "
                            "PostgreSQL KB_DATABASE_URL: set KB_SEARCH_BACKEND=whoosh or move to PostgreSQL"))
    else:
        checks.append(Check("search_backend", "ok", "", backend))
    if settings["BASE_URL"] == SETTINGS_BY_NAME["BASE_URL"].default:
        checks.append(Check("base_url", "warn", "default", f"KB_BASE_URL is still {settings['BASE_URL']}: set it to "
                            "the portal's public address (links in emails and the sitemap, Secure cookies)"))
    else:
        checks.append(Check("base_url", "ok", "", str(settings["BASE_URL"])))
    if hosts > 1:
        checks += _several_hosts(settings, on_sqlite, hosts)
    return checks


def _several_hosts(settings: Mapping[str, Any], on_sqlite: bool, hosts: int) -> list[Check]:
    """What must hold once workers on several hosts share the database."""
    checks = []
    if on_sqlite:
        checks.append(Check("database_kind", "fail", "SQLite on several hosts", f"workers on {hosts} hosts beat "
                            "in one SQLite file: SQLite cannot be shared between hosts; use PostgreSQL"))
    if not settings["TRUSTED_PROXIES"]:
        checks.append(Check("trusted_proxies", "warn", "0", "several hosts sit behind a load balancer: set "
                            "KB_TRUSTED_PROXIES to the number of proxies that add to X-Forwarded-For"))
    if settings["AUTO_MIGRATE"]:
        checks.append(Check("auto_migrate", "warn", "on", "with several hosts set KB_AUTO_MIGRATE=false and run "
                            "`kb db upgrade` from one host before upgrading the others"))
    return checks


def check_workers(rows, settings: Mapping[str, Any], now: datetime) -> list[Check]:
    """The expected workers beat lately; each host and kind's last beat; one HOST_NAME per machine."""
    latest: dict[tuple[str, str], Any] = {}
    processes: dict[tuple[str, str], int] = defaultdict(int)
    machines: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        key, fresh = (row.host, row.kind), now - row.beat_at <= fresh_within(row.kind, settings)
        if key not in latest or row.beat_at > latest[key].beat_at:
            latest[key] = row
        if fresh:
            processes[key] += 1
            machines[row.host].add(heartbeats.machine_of(row.detail))
    checks = []
    expected = ["jobs", *(["autoreply"] if settings.get("IMAP_HOST") else [])]
    for kind in expected:
        if not any(processes[key] for key in latest if key[1] == kind):
            checks.append(Check(f"workers_{kind}", "fail", "no heartbeat", f"no {kind} worker beat in the last "
                                f"{ago(fresh_within(kind, settings))}: {STARTS[kind]}"))
    for (host, kind), row in sorted(latest.items()):
        age = ago(now - row.beat_at)
        if processes[(host, kind)]:
            checks.append(Check(f"heartbeat {kind}@{host}", "ok", "", f"last beat {age} ago, "
                                f"{processes[(host, kind)]} process(es); {row.detail}"))
        else:
            checks.append(Check(f"heartbeat {kind}@{host}", "warn", "silent", f"last beat {age} ago: stopped? "
                                "(rows go after a day)"))
    for host, names in sorted(machines.items()):
        names.discard("")
        if len(names) > 1:
            checks.append(Check("host_name", "fail", "shared", f"machines {', '.join(sorted(names))} all call "
                                f"themselves {host!r}: give each host its own KB_HOST_NAME"))
    return checks


def fresh_hosts(rows, settings: Mapping[str, Any], now: datetime) -> int:
    """How many hosts have a worker that beat lately."""
    return len({row.host for row in rows if now - row.beat_at <= fresh_within(row.kind, settings)})


def examine(settings: Mapping[str, Any], app: Flask | None, now: datetime | None = None) -> list[Check]:
    """Every check, in the order `kb doctor` prints them; ``app`` None: it could not be built."""
    now, rows, live = now or utcnow(), [], []
    if app is not None:
        with get_db(app).sessionmaker() as session:
            live.append(health.check_database(session))
            session.rollback()
            if live[0].ok:
                live.append(health.check_migrations(session))
                session.rollback()
            if live[-1].ok and live[-1].name == "migrations":  # else the table may not be there
                rows = heartbeats.beats(session)
        if live[0].ok:
            backend = app.extensions["kb.search"]
            live += [health.check_search(backend, settings), health.check_lag(backend, settings)]
    checks = check_settings(settings, fresh_hosts(rows, settings, now)) + live + mailcheck.check_mail(settings)
    if len(live) > 1 and live[1].ok:
        checks += check_workers(rows, settings, now)
    return checks
