"""Login throttling: too many wrong passwords lock an account, or a client address, for a while.

Every account (by the email typed, whether or not an agent has it, so the answer never tells
which emails exist) and every client address has a counter of failed logins in a row. The
counters live in the database, so all workers and hosts share them. At LOGIN_MAX_FAILURES for an
account, or LOGIN_MAX_FAILURES_PER_CLIENT for an address, logins are refused for
LOGIN_LOCK_MINUTES without the password being checked; each failure after a lock ends doubles the
next one, up to a day. A successful login resets both counters; a counter is forgotten a day after
its last failure. Keys are keyed hashes (kb.visitors), so no email or address is stored in clear.
Plain functions over a session; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.models import LoginThrottle, utcnow
from kb.visitors import client_network, keyed_hash

FORGET_AFTER = timedelta(days=1)
LONGEST_LOCK = timedelta(days=1)


@dataclass(frozen=True)
class Policy:
    """How many failures in a row lock an account or an address, and for how long at first."""

    max_failures: int = 5
    max_failures_per_client: int = 20
    lock_minutes: float = 15

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Policy":
        """The policy of the LOGIN_ settings."""
        return cls(config["LOGIN_MAX_FAILURES"], config["LOGIN_MAX_FAILURES_PER_CLIENT"],
                   config["LOGIN_LOCK_MINUTES"])

    def lock_after(self, failures: int, limit: int) -> timedelta | None:
        """How long ``failures`` in a row lock a counter whose limit is ``limit`` (None: not locked)."""
        if failures < limit:
            return None
        doublings = min(failures - limit, 20)
        return min(timedelta(minutes=self.lock_minutes) * 2 ** doublings, LONGEST_LOCK)


@dataclass(frozen=True)
class Counter:
    """One counter a login attempt is counted on, and the failures that lock it."""

    key: str
    limit: int


def counters(secret: str, email: str, address: str | None, policy: Policy) -> tuple[Counter, Counter]:
    """The account's and the client address's counters for a login attempt."""
    account = keyed_hash(secret, "login-account", str(email or "").strip().lower())
    client = keyed_hash(secret, "login-client", client_network(address))
    return (Counter(f"account:{account}", policy.max_failures),
            Counter(f"client:{client}", policy.max_failures_per_client))


def _lock_end(row: LoginThrottle | None, limit: int, policy: Policy, now: datetime) -> datetime | None:
    """When the counter's lock ends, or None when it is not locked (or long forgotten)."""
    if row is None or row.last_failure_at < now - FORGET_AFTER:
        return None
    lock = policy.lock_after(row.failures, limit)
    return row.last_failure_at + lock if lock else None


def lock_remaining(session: so.Session, attempt: tuple[Counter, ...], policy: Policy,
                   now: datetime | None = None) -> timedelta | None:
    """How long logins stay refused for this attempt's account or address; None if they are not."""
    now = now or utcnow()
    keys = [counter.key for counter in attempt]
    stmt = sa.select(LoginThrottle).where(LoginThrottle.key.in_(keys)).execution_options(populate_existing=True)
    rows = {row.key: row for row in session.scalars(stmt)}
    ends = [_lock_end(rows.get(c.key), c.limit, policy, now) for c in attempt]
    latest = max((end for end in ends if end is not None), default=None)
    return latest - now if latest is not None and latest > now else None


def _count_failure(session: so.Session, key: str, now: datetime) -> bool:
    """Add a failure to an existing counter (starting again if it was forgotten); whether it existed."""
    stale = LoginThrottle.last_failure_at < now - FORGET_AFTER
    stmt = (sa.update(LoginThrottle).where(LoginThrottle.key == key)
            .values(failures=sa.case((stale, 1), else_=LoginThrottle.failures + 1), last_failure_at=now)
            .execution_options(synchronize_session=False))
    return session.execute(stmt).rowcount == 1


def record_failure(session: so.Session, attempt: tuple[Counter, ...], policy: Policy,
                   now: datetime | None = None) -> timedelta | None:
    """Count a wrong password on each counter; how long logins are now refused (None: not yet)."""
    now = now or utcnow()
    for counter in attempt:
        if _count_failure(session, counter.key, now):
            continue
        try:
            with session.begin_nested():
                session.add(LoginThrottle(key=counter.key, failures=1, last_failure_at=now))
        except sa.exc.IntegrityError:
            _count_failure(session, counter.key, now)  # another worker counted the first failure
    session.execute(sa.delete(LoginThrottle).where(LoginThrottle.last_failure_at < now - FORGET_AFTER)
                    .execution_options(synchronize_session=False))
    return lock_remaining(session, attempt, policy, now)


def record_success(session: so.Session, attempt: tuple[Counter, ...]) -> None:
    """A right password ends the run of failures of the account and of the address."""
    session.execute(sa.delete(LoginThrottle).where(LoginThrottle.key.in_([c.key for c in attempt]))
                    .execution_options(synchronize_session=False))


def clear_account(session: so.Session, secret: str, email: str) -> None:
    """Lift an account's lock (an admin just set a new password for it)."""
    attempt = counters(secret, email, None, Policy())
    session.execute(sa.delete(LoginThrottle).where(LoginThrottle.key == attempt[0].key)
                    .execution_options(synchronize_session=False))
