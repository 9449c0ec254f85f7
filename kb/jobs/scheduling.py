"""Registering handlers and scheduling jobs: request-free, called by every domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.jobs.models import Job
from kb.models import utcnow

HANDLERS: dict[str, Callable[..., None]] = {}


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

    The caller commits. A savepoint keeps the caller's transaction when another process (or a
    retried request) scheduled the same job first.
    """
    if session.scalar(sa.select(Job.id).where(Job.kind == kind, Job.key == key)) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(Job(kind=kind, key=key, run_at=run_at or utcnow(), payload=payload or {}))
    except sa.exc.IntegrityError:
        return False
    session.info["kb_job_scheduled"] = True  # wakes this process's runner after the commit
    return True


def cancel(session: so.Session, kind: str, key: str) -> bool:
    """Cancel the job unless a runner has started it; True if it was cancelled. The caller commits."""
    result = session.execute(sa.update(Job).where(Job.kind == kind, Job.key == key, Job.state == "pending")
                             .values(state="cancelled", done_at=utcnow(), updated_at=utcnow()))
    return result.rowcount == 1
