"""Is this host ready for traffic? The checks behind /readyz, also run by `kb doctor`.

Each check gives a short public ``reason`` (safe in an unauthenticated answer: no URL, no path, no
exception text, which may carry a host name or a query) and a ``detail`` for `kb doctor`, which
an operator reads in a terminal and which says what to fix. All are cheap: one ``SELECT 1``, one
row of ``alembic_version``, the backend's own check, one small query and its lag; on PostgreSQL
each statement may take at most DB_TIMEOUT_MS.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask

from kb.db import MIGRATIONS_DIR, get_db
from kb.errors import KBError

DB_TIMEOUT_MS = 2000
PROBE = "password"  # a trivial query: any backend answers it from its own index


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``status`` is ok, warn or fail."""

    name: str
    status: str
    reason: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Whether the check passed (a warning passes)."""
        return self.status != "fail"


def first_line(exc: BaseException) -> str:
    """An exception as one short line for an operator (the driver's message, no SQL, no traceback)."""
    if isinstance(exc, KBError):
        return str(exc)
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def short_timeout(session: so.Session) -> None:
    """Make each statement of the session's transaction give up after DB_TIMEOUT_MS on PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text(f"SET LOCAL statement_timeout = {int(DB_TIMEOUT_MS)}"))


def check_database(session: so.Session) -> Check:
    """The database answers a ``SELECT 1``."""
    try:
        short_timeout(session)
        session.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - whatever the driver raises, the answer is "not reachable"
        session.rollback()
        return Check("database", "fail", "database unreachable",
                     f"{first_line(exc)}; check KB_DATABASE_URL and that the server is up")
    return Check("database", "ok", "", session.get_bind().dialect.name)


@functools.lru_cache(maxsize=1)
def code_revisions() -> tuple[str, frozenset[str]]:
    """This code's head migration and every revision it knows (read once per process)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    return script.get_current_head(), frozenset(rev.revision for rev in script.walk_revisions())


def check_migrations(session: so.Session) -> Check:
    """The database is at this code's head migration, or ahead of it (an upgrade in progress)."""
    head, known = code_revisions()
    try:
        short_timeout(session)
        current = set(session.scalars(sa.text("SELECT version_num FROM alembic_version")))
    except Exception as exc:  # noqa: BLE001 - no table, or no database: either way not ready
        session.rollback()
        return Check("migrations", "fail", "database not migrated", f"{first_line(exc)}; run `kb db upgrade`")
    if current == {head}:
        return Check("migrations", "ok", "", f"at {head}")
    if current and not current & known:
        # Newer code migrated the database first (an upgrade, host by host): migrations stay
        # backward compatible for one release, so this host keeps serving.
        return Check("migrations", "ok", "", f"the database ({', '.join(sorted(current))}) is ahead of this "
                     f"host's code ({head}): upgrade this host's kb")
    return Check("migrations", "fail", "database migrations behind",
                 f"the database is at {', '.join(sorted(current)) or 'no revision'}, this code at {head}: "
                 "run `kb db upgrade` (from one host)")


def check_search(backend, settings: Mapping[str, Any]) -> Check:
    """The search backend says it can answer, and answers a trivial query."""
    try:
        backend.check()
        backend.probe(PROBE, str(settings.get("DEFAULT_LANGUAGE") or "en"))
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot search now"
        if backend.building():
            return Check("search", "fail", "search index being built",
                         f"{first_line(exc)}; one process rebuilds it in the background (see the log)")
        return Check("search", "fail", "search backend not answering", first_line(exc))
    if backend.building():
        return Check("search", "warn", "", f"{backend.name} answers from the old index while a new one is built")
    return Check("search", "ok", "", f"{backend.name} answers")


def check_lag(backend, settings: Mapping[str, Any]) -> Check:
    """This host's index is at most READY_MAX_INDEX_LAG_SECONDS behind the database."""
    limit = float(settings["READY_MAX_INDEX_LAG_SECONDS"])
    try:
        lag = float(backend.lag_seconds())
    except Exception as exc:  # noqa: BLE001 - the lag cannot be known: not ready
        return Check("index_lag", "fail", "index lag unknown", first_line(exc))
    if lag > limit:
        return Check("index_lag", "fail", "index behind the database",
                     f"{lag:.0f} s behind (limit {limit:.0f} s, KB_READY_MAX_INDEX_LAG_SECONDS): is the indexer "
                     "running (KB_INDEXER)? `kb reindex` rebuilds the index")
    return Check("index_lag", "ok", "", f"{lag:.1f} s behind")


def readiness(app: Flask) -> list[Check]:
    """Every check /readyz answers with: database, migrations, search, index lag."""
    with get_db(app).sessionmaker() as session:
        checks = [check_database(session)]
        session.rollback()  # each check in its own short transaction
        if checks[0].ok:
            checks.append(check_migrations(session))
            session.rollback()
        else:  # one wait for an unreachable server is enough
            checks.append(Check("migrations", "fail", "database unreachable", "not checked"))
    backend = app.extensions["kb.search"]
    for check in (check_search, check_lag):
        checks.append(check(backend, app.config))
    return checks


def answer(checks: list[Check]) -> tuple[dict[str, Any], int]:
    """The JSON body and HTTP status of /readyz: 200 when every check passes, else 503."""
    ready = all(c.ok for c in checks)
    body = {"ready": ready, "checks": {c.name: {"ok": c.ok, **({"reason": c.reason} if not c.ok else {})}
                                       for c in checks}}
    return body, 200 if ready else 503

