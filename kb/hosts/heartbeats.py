"""Workers' heartbeats: each long-running worker (job runner, auto-responder) upserts one row per
host, kind and process every BEAT_SECONDS, so `kb doctor` can say which hosts run what and when
each was last seen. Rows not beaten for STALE_AFTER are deleted by the daily retention job.

``detail`` is a short status made of counts and names (never customer text, addresses or URLs);
it starts with ``machine <hostname>;`` so that two machines given the same HOST_NAME show up.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import datetime, timedelta
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects import postgresql, sqlite

from kb.db import get_db
from kb.models import WorkerHeartbeat, utcnow

log = logging.getLogger(__name__)
BEAT_SECONDS = 30.0  # how often a worker beats: one small write per worker per half minute
STALE_AFTER = timedelta(days=1)  # rows older than this are deleted (prune)
KINDS = ("jobs", "autoreply")
MAX_DETAIL = 300


def host_name(settings: Mapping[str, Any]) -> str:
    """This host's name: the HOST_NAME setting, else the machine's hostname."""
    return (str(settings.get("HOST_NAME") or "").strip() or socket.gethostname())[:255]


def machine_of(detail: str) -> str:
    """The machine's hostname a beat's detail starts with ("" for none)."""
    head = (detail or "").split(";", 1)[0]
    return head[len("machine "):].strip() if head.startswith("machine ") else ""


def beat(session: so.Session, settings: Mapping[str, Any], kind: str, detail: str = "", *,
         pid: int | None = None, now: datetime | None = None) -> None:
    """Record that this process's worker of ``kind`` is alive (one upsert); the caller commits."""
    now = now or utcnow()
    text = f"machine {socket.gethostname()[:60]}; {detail}"[:MAX_DETAIL]
    values = {"host": host_name(settings), "kind": kind, "pid": os.getpid() if pid is None else pid,
              "started_at": now, "beat_at": now, "detail": text}
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(WorkerHeartbeat).values(**values)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["host", "kind", "pid"],
        set_={"beat_at": stmt.excluded.beat_at, "detail": stmt.excluded.detail}))


def forget(session: so.Session, settings: Mapping[str, Any], kind: str, *, pid: int | None = None) -> None:
    """Remove this process's row (a worker that stops cleanly); the caller commits."""
    session.execute(sa.delete(WorkerHeartbeat).where(
        WorkerHeartbeat.host == host_name(settings), WorkerHeartbeat.kind == kind,
        WorkerHeartbeat.pid == (os.getpid() if pid is None else pid)))


def beats(session: so.Session) -> list[WorkerHeartbeat]:
    """Every heartbeat row, by host, kind and newest beat first."""
    return list(session.scalars(sa.select(WorkerHeartbeat).order_by(
        WorkerHeartbeat.host, WorkerHeartbeat.kind, WorkerHeartbeat.beat_at.desc())))


def prune(session: so.Session, now: datetime | None = None) -> int:
    """Delete rows not beaten for STALE_AFTER (workers that died or moved); how many. The caller commits."""
    result = session.execute(sa.delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < (now or utcnow()) - STALE_AFTER)
                             .execution_options(synchronize_session=False))
    return result.rowcount


class Pacer:
    """Beats for one worker from inside its own loop, at most every ``every`` seconds.

    A heartbeat that cannot be written (the database is away) is one log line, never a failure of
    the loop: the worker's own work meets the same database and reports it.
    """

    def __init__(self, app, kind: str, every: float = BEAT_SECONDS):
        self.app, self.kind, self.every = app, kind, every
        self.last = float("-inf")

    def beat(self, detail: str = "", *, force: bool = False) -> bool:
        """Beat if ``every`` seconds passed since the last beat (or ``force``); whether it wrote."""
        if not force and time.monotonic() - self.last < self.every:
            return False
        try:
            with get_db(self.app).sessionmaker() as session:
                beat(session, self.app.config, self.kind, detail)
                session.commit()
        except sa.exc.SQLAlchemyError as exc:
            log.warning("%s heartbeat not written (%s)", self.kind, type(exc).__name__)
            return False
        self.last = time.monotonic()
        return True

    def forget(self) -> None:
        """Remove this worker's row as it stops cleanly (best effort)."""
        try:
            with get_db(self.app).sessionmaker() as session:
                forget(session, self.app.config, self.kind)
                session.commit()
        except sa.exc.SQLAlchemyError as exc:
            log.warning("%s heartbeat not removed (%s)", self.kind, type(exc).__name__)
