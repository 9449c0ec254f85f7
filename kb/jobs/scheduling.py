"""Registering handlers and scheduling jobs: request-free, called by every domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects import postgresql, sqlite

from kb.jobs.models import Job
from kb.models import utcnow

HANDLERS: dict[str, Callable[..., None]] = {}
DAILY: set[str] = set()  # kinds with one job a day (see daily)


def handler(kind: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``fn(ctx)`` as the handler of jobs of ``kind`` (one handler per kind)."""
    def register(fn: Callable[..., None]) -> Callable[..., None]:
        if HANDLERS.get(kind, fn) is not fn:
            raise ValueError(f"a handler for {kind!r} is registered already")
        HANDLERS[kind] = fn
        return fn
    return register


def schedule(session: so.Session, kind: str, key: str, run_at: datetime | None = None,
             payload: dict[str, Any] | None = None) -> bool:
    """Add the job (``kind``, ``key``) to run at or after ``run_at``; False if it exists already.

    The caller commits. A job that exists in any state (done, failed, cancelled included) is left
    as it is: to do the same work again, schedule it under a new key. The insert is one
    ``ON CONFLICT DO NOTHING`` statement, so a concurrent scheduler of the same job neither fails
    nor breaks the caller's transaction (a savepoint would, on SQLite: pysqlite's first
    RELEASE commits everything before it).
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    result = session.execute(insert(Job).values(
        kind=kind, key=key, run_at=run_at or now, payload=payload or {}, state="pending", attempts=0,
        claimed_by="", last_error="", created_at=now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["kind", "key"]).returning(Job.id))
    if result.scalar() is None:  # (rowcount is not reliable with RETURNING on every driver)
        return False
    session.info["kb_job_scheduled"] = True  # wakes this process's runner after the commit
    return True


def cancel(session: so.Session, kind: str, key: str) -> bool:
    """Cancel the job unless a runner has started it; True if it was cancelled. The caller commits."""
    now = utcnow()
    result = session.execute(sa.update(Job).where(Job.kind == kind, Job.key == key, Job.state == "pending")
                             .values(state="cancelled", done_at=now, updated_at=now))
    return result.rowcount == 1


def daily(kind: str) -> None:
    """Make ``kind`` recurring: every running runner makes sure the day's job exists (key "day:<UTC date>")."""
    DAILY.add(kind)


def schedule_daily(session: so.Session, now: datetime | None = None) -> int:
    """Schedule today's job of each daily kind, once however many runners ask; the caller commits."""
    today = (now or utcnow()).date().isoformat()
    return sum(schedule(session, kind, f"day:{today}", run_at=now) for kind in sorted(DAILY))
