"""Which bound, if any, an offer would exceed: spend so far per incident, agent week and customer 90 days.

Spend counts every offer that still stands (within bounds, pending approval, approved or sent), at
its latest corrected amount; a declined or cancelled offer counts no more. The agent's week starts at midnight of
RECOVERY_WEEK_START in TIME_ZONE; the customer's 90 days roll. An overall amount bound applies per
currency: EUR offers are summed against it apart from NOK offers, and an offer without a currency (a
percentage, an apology) counts only towards a count bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any, Mapping
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.followup.models import Case
from kb.models import Agent
from kb.recovery.models import CENT, Bound, GestureType, RecoveryEntry

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CUSTOMER_DAYS = 90
ENDED = ("decline", "cancel")  # entries after which an offer no longer counts


@dataclass(frozen=True)
class Check:
    """One bound measured for one offer: what was spent before it, and whether the offer exceeds it."""

    bound: Bound
    spent_amount: Decimal
    spent_count: int
    exceeded: bool

    def snapshot(self) -> dict[str, Any]:
        """The bound and the spend, as the ledger keeps them."""
        return {**self.bound.snapshot(), "spent_amount": str(self.spent_amount.quantize(CENT)),
                "spent_count": self.spent_count, "exceeded": self.exceeded}


@dataclass(frozen=True)
class Verdict:
    """Every applicable bound measured; ``exceeded`` lists those the offer would go beyond."""

    checks: list[Check] = field(default_factory=list)

    @property
    def exceeded(self) -> list[Check]:
        """The bounds the offer would exceed."""
        return [check for check in self.checks if check.exceeded]

    @property
    def approver_role(self) -> str:
        """The role that may approve: admin if any exceeded bound asks for admin."""
        roles = {check.bound.approver_role for check in self.exceeded}
        return "admin" if "admin" in roles or not roles else "support"


def week_start(settings: Mapping[str, Any], now: datetime) -> datetime:
    """The start of the agent's budget week containing ``now``: midnight of RECOVERY_WEEK_START in TIME_ZONE."""
    tz = ZoneInfo(str(settings.get("TIME_ZONE") or "UTC"))
    first = WEEKDAYS.index(str(settings.get("RECOVERY_WEEK_START") or "monday"))
    local = now.astimezone(tz)
    day = local.date() - timedelta(days=(local.weekday() - first) % 7)
    return datetime.combine(day, time(0), tz)


def _week(settings: Mapping[str, Any], now: datetime) -> tuple[datetime, datetime]:
    """The budget week containing ``now``, as [start, end) in UTC (a DST week has 167 or 169 hours)."""
    start = week_start(settings, now)
    end = datetime.combine(start.date() + timedelta(days=7), time(0), start.tzinfo)
    return start, end


def scope_filter(scope: str, *, case: Case, agent: Agent, settings: Mapping[str, Any], now: datetime):
    """The SQL condition that picks the offers counted by a bound of ``scope``."""
    if scope == "per_incident":
        return RecoveryEntry.case_id == case.id
    if scope == "agent_week":
        start, end = _week(settings, now)
        return sa.and_(RecoveryEntry.agent_id == agent.id, RecoveryEntry.created_at >= start,
                       RecoveryEntry.created_at < end)
    if case.customer_id is None:  # a case about an article only: its customer is unknown
        return RecoveryEntry.case_id == case.id
    # A ledger row keeps the customer it was offered to, but a merge moves cases: offers on the
    # customer's cases count too, so a merged customer's earlier gestures still count (and an undone
    # merge takes them away again).
    own_cases = sa.select(Case.id).where(Case.customer_id == case.customer_id)
    return sa.and_(sa.or_(RecoveryEntry.customer_id == case.customer_id, RecoveryEntry.case_id.in_(own_cases)),
                   RecoveryEntry.created_at > now - timedelta(days=CUSTOMER_DAYS))


def _standing_offers():
    """Offers that still count: no decline or cancellation follows them."""
    later = sa.orm.aliased(RecoveryEntry)
    ended = sa.exists().where(later.offer_id == RecoveryEntry.id, later.kind.in_(ENDED))
    return sa.and_(RecoveryEntry.kind == "offer", ~ended)


def _counted_amount():
    """An offer's amount as budgets count it: that of its latest correction, if any, else its own."""
    correction = sa.orm.aliased(RecoveryEntry)
    latest = (sa.select(correction.amount).where(correction.offer_id == RecoveryEntry.id,
                                                 correction.kind == "correction")
              .order_by(correction.id.desc()).limit(1).correlate(RecoveryEntry).scalar_subquery())
    return sa.func.coalesce(latest, RecoveryEntry.amount)


def applicable_bounds(session: so.Session, gesture_type: GestureType) -> list[Bound]:
    """The active bounds on this gesture type and the overall ones, in a stable order."""
    return list(session.scalars(sa.select(Bound).where(
        Bound.active.is_(True), sa.or_(Bound.gesture_type_id.is_(None), Bound.gesture_type_id == gesture_type.id)
    ).order_by(Bound.scope, Bound.gesture_type_id.is_(None), Bound.id)))


def measure(session: so.Session, bound: Bound, *, case: Case, agent: Agent, gesture_type: GestureType,
            amount: Decimal, settings: Mapping[str, Any], now: datetime) -> Check:
    """Spend so far under ``bound``, and whether one more offer of ``amount`` would exceed it."""
    query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(_counted_amount()), 0)).where(
        _standing_offers(), scope_filter(bound.scope, case=case, agent=agent, settings=settings, now=now))
    if bound.gesture_type_id is not None:
        query = query.where(RecoveryEntry.gesture_type_id == bound.gesture_type_id)
    count, _ = session.execute(query).one()
    spent = Decimal("0")
    amount_applies = bound.max_amount is not None and (bound.gesture_type_id is not None or gesture_type.currency)
    if amount_applies:
        if bound.gesture_type_id is None:  # overall: per currency
            query = query.where(RecoveryEntry.currency == gesture_type.currency)
        spent = Decimal(session.execute(query).one()[1])
    exceeded = (bound.max_count is not None and count + 1 > bound.max_count) or (
        amount_applies and spent + amount > bound.max_amount)
    return Check(bound, spent, count, bool(exceeded))


def evaluate(session: so.Session, *, case: Case, agent: Agent, gesture_type: GestureType, amount: Decimal,
             settings: Mapping[str, Any], now: datetime) -> Verdict:
    """Measure every bound that applies to this offer (see ``Verdict.exceeded``)."""
    return Verdict([measure(session, bound, case=case, agent=agent, gesture_type=gesture_type, amount=amount,
                            settings=settings, now=now) for bound in applicable_bounds(session, gesture_type)])
