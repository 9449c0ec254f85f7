"""`kb doctor`: check a deployment and say what to fix (a thin wrapper over kb.hosts.doctor)."""

from __future__ import annotations

import sys
from typing import Any

import click
import sqlalchemy as sa

from kb.hosts.doctor import examine
from kb.hosts.health import Check, first_line

CONNECT_TIMEOUT = 5  # seconds: an unreachable PostgreSQL is a FAIL line, not a hung command


def with_connect_timeout(url: str) -> str:
    """The database URL with a short connect timeout on PostgreSQL (unless it sets its own)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "postgresql" or "connect_timeout" in parsed.query:
        return url
    return parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT)}).render_as_string(hide_password=False)


def run_doctor(**overrides: Any) -> list[Check]:
    """Every check of this host's deployment (settings from defaults, config file, KB_ variables, ``overrides``)."""
    from kb.cli import command_app
    from kb.config import load_config

    settings = load_config(overrides or None)
    app_settings = {**overrides, "AUTO_MIGRATE": False,  # a doctor looks; `kb db upgrade` changes
                    "DATABASE_URL": with_connect_timeout(str(settings["DATABASE_URL"]))}
    try:
        with command_app(**app_settings) as app:
            return examine(settings, app)
    except Exception as exc:  # noqa: BLE001 - the app cannot even be built: say why, check what needs no app
        return [*examine(settings, None), Check("app", "fail", "cannot start", first_line(exc))]


def line(check: Check) -> str:
    """One printed line: ok / warn / FAIL, the check's name and what was found or what to fix."""
    mark = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[check.status]
    return f"{mark}  {check.name}: {check.detail or check.reason}"


@click.command("doctor")
def doctor_command() -> None:
    """Check this deployment: settings, database, search, mail and workers' heartbeats.

    Prints one line per check (ok, warn or FAIL with what to fix) and exits with
    status 1 when any check fails. Run it on each host: some checks (the secret key,
    the search index, mail servers) are about the host it runs on. It migrates nothing and
    logs in nowhere; like every command, it brings this host's Whoosh index up to date as it starts.
    """
    checks = run_doctor()
    for check in checks:
        click.echo(line(check))
    failed = sum(not c.ok for c in checks)
    click.echo(f"{len(checks)} checks: {failed} failed, {sum(c.status == 'warn' for c in checks)} warnings")
    if failed:
        sys.exit(1)
