"""The one clock of the job runners: the database's, so hosts whose clocks differ agree on leases."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.models import utcnow


def db_now(session: so.Session) -> datetime:
    """The current time (aware UTC) by the database server's clock on PostgreSQL, else this host's.

    A lease is compared by many runners on many hosts: with each host's own clock, one running
    a minute fast would take over jobs whose runners are still at work. SQLite lives on one host,
    whose clock all its runners share.
    """
    if session.get_bind().dialect.name == "postgresql":
        now = session.scalar(sa.select(sa.func.clock_timestamp(type_=sa.DateTime(timezone=True))))
        return now.astimezone(timezone.utc)
    return utcnow()
