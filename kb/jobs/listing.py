"""What the job table holds, for ``kb jobs list``: request-free."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.jobs.models import Job


def counts_by_kind_and_state(session: so.Session) -> list[tuple[str, str, int]]:
    """(kind, state, number of jobs), sorted by kind and state."""
    stmt = (sa.select(Job.kind, Job.state, sa.func.count(Job.id))
            .group_by(Job.kind, Job.state).order_by(Job.kind, Job.state))
    return [(kind, state, count) for kind, state, count in session.execute(stmt)]


def failed_jobs(session: so.Session, limit: int = 50) -> list[Job]:
    """The jobs given up, newest first: each with its attempts and last error."""
    stmt = sa.select(Job).where(Job.state == "failed").order_by(Job.done_at.desc(), Job.id.desc()).limit(limit)
    return list(session.scalars(stmt))
