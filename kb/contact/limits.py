"""The contact form's limits: questions per email address and per client, per hour, across workers.

Neither the address nor the client is stored: each is a keyed hash (kb.visitors.keyed_hash with
the secret key), a row of kb.insights.models.RateCount. Counting is a compare-and-set in the
database, as in kb.visitors.claim, so a limit holds however many workers and hosts serve the form:
``UPDATE ... SET count = count + 1 WHERE count < limit AND window_start > now - 1 h`` succeeds at
most ``limit`` times in a window. A window starts with the first question after the last ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects import postgresql, sqlite

from kb.autoreply.addresses import sender_key
from kb.errors import ValidationError
from kb.insights.models import RateCount
from kb.models import utcnow
from kb.visitors import client_network, keyed_hash

WINDOW = timedelta(hours=1)


class RateLimited(ValidationError):
    """Too many questions from this address or client in the last hour; ``retry_at`` says when to try."""

    def __init__(self, retry_at: datetime):
        self.retry_at = retry_at
        super().__init__(f"Too many questions; try again after {retry_at:%H:%M} UTC.")


def address_key(secret: str, address: str) -> str:
    """The rate key of an email address (one per mailbox: +tags and case do not make new ones)."""
    return "a:" + keyed_hash(secret, "contact-address", sender_key(address))


def client_key(secret: str, client: str | None) -> str:
    """The rate key of a client address (IPv4, or the IPv6 /64)."""
    return "c:" + keyed_hash(secret, "contact-client", client_network(client))


def _take(session: so.Session, key: str, limit: int, since: datetime) -> bool:
    """Count one in the key's current window if it is below ``limit``; whether that happened."""
    result = session.execute(sa.update(RateCount).where(
        RateCount.key == key, RateCount.window_start > since, RateCount.count < limit,
    ).values(count=RateCount.count + 1).execution_options(synchronize_session=False))
    return result.rowcount == 1


def take(session: so.Session, key: str, limit: int, now: datetime | None = None) -> datetime | None:
    """Count one question for ``key``: None when it is within ``limit``, else when the window ends.

    The caller commits. A new key's row is inserted with ``ON CONFLICT DO NOTHING`` (no savepoint),
    and a window that ended is restarted by a compare-and-set on its start, so two workers racing
    for the same key count both questions, never one twice.
    """
    now = now or utcnow()
    since = now - WINDOW
    for _attempt in range(3):  # each pass loses only to another worker's write; three always settle
        if _take(session, key, limit, since):
            return None
        start = session.scalar(sa.select(RateCount.window_start).where(RateCount.key == key))
        if start is None:
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            done = session.execute(insert(RateCount).values(key=key, window_start=now, count=1)
                                   .on_conflict_do_nothing(index_elements=["key"]).returning(RateCount.key))
            if done.scalar() is not None:
                return None  # ended windows' rows are deleted by the daily retention job (kb.retention)
        elif start > since:
            return start + WINDOW  # the window is full
        elif session.execute(sa.update(RateCount).where(RateCount.key == key, RateCount.window_start == start)
                             .values(window_start=now, count=1)
                             .execution_options(synchronize_session=False)).rowcount == 1:
            return None
    return now + WINDOW


def give_back(session: so.Session, key: str) -> None:
    """Undo one count (the question was refused by the other limit). The caller commits."""
    session.execute(sa.update(RateCount).where(RateCount.key == key, RateCount.count > 0)
                    .values(count=RateCount.count - 1).execution_options(synchronize_session=False))


def check(session: so.Session, settings: Mapping[str, Any], address: str, client: str | None,
          now: datetime | None = None) -> None:
    """Count a question against both limits; RateLimited (nothing counted) when either is reached."""
    secret = str(settings["SECRET_KEY"])
    by_client = client_key(secret, client)
    refused = take(session, by_client, int(settings["CONTACT_PER_CLIENT"]), now)
    if refused is None:
        refused = take(session, address_key(secret, address), int(settings["CONTACT_PER_ADDRESS"]), now)
        if refused is not None:
            give_back(session, by_client)
    if refused is not None:
        raise RateLimited(refused)
