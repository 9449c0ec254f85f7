"""The job table: one row per "do X once, at or after time T".

The unique (kind, key) makes scheduling idempotent, and every state change is a compare-and-set
on the row, so any number of runners on any number of hosts run each job once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.storable import StoredJSON, StoredString, StoredText
from kb.models import Base, UTCDateTime, utcnow

# pending: waits for run_at; running: a runner holds it until lease_until (a runner that dies
# leaves it to be claimed again once the lease ends); sent: its one outside effect (an email, a
# POST) happened and is on record, so a runner that takes it over only finishes the bookkeeping;
# done; failed: given up after max attempts (the reason in last_error); cancelled: no longer
# needed (say, the case was acknowledged before its escalation was due).
JOB_STATES = ("pending", "running", "sent", "done", "failed", "cancelled")
FINAL_STATES = ("done", "failed", "cancelled")
HELD_STATES = ("running", "sent")  # a runner holds the job until lease_until


class Job(Base):
    """One piece of timed work and where it stands."""

    __tablename__ = "jobs"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(64))
    key: so.Mapped[str] = so.mapped_column(StoredString(200))
    run_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    state: so.Mapped[str] = so.mapped_column(sa.String(16), default="pending")
    payload: so.Mapped[dict[str, Any]] = so.mapped_column(StoredJSON, default=dict)
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    lease_until: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)
    claimed_by: so.Mapped[str] = so.mapped_column(sa.String(120), default="")
    message_id: so.Mapped[Optional[str]] = so.mapped_column(StoredString(500))
    last_error: so.Mapped[str] = so.mapped_column(StoredText(), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    done_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("kind", "key", name="uq_jobs_kind_key"),
        sa.Index("ix_jobs_state_run_at", "state", "run_at"),
        sa.CheckConstraint(f"state IN {JOB_STATES}", name="state"),
    )
