"""What the recovery ledger tells people: spend this week and month, budgets left, approvals waiting, outliers.

Spend is counted as the bounds count it (kb.recovery.bounds): offers not declined or cancelled, at the
amount of their latest correction. Money is summed per currency (EUR never adds to NOK); a gesture
without a currency (a percentage discount, an apology) is counted, never summed. The week is the
agents' budget week (RECOVERY_WEEK_START in TIME_ZONE), the month the calendar month in TIME_ZONE.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from typing import Any, Mapping
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.models import Agent, utcnow
from kb.recovery import bounds as kb_bounds
from kb.recovery.models import Bound, GestureType, RecoveryEntry

OUTLIER_FACTOR = 2  # more than twice the team median: a prompt to look, not a block
MIN_AGENTS = 3  # fewer agents who spent make a median that says nothing
# Rows after which an offer no longer waits for an approver.
DECIDED = ("approval", "decline", "cancel", "send")


@dataclass(frozen=True)
class Line:
    """Spend of one agent or gesture type in one currency ("" = counted only: percentages, apologies)."""

    key: int
    label: str
    currency: str
    count: int
    amount: Decimal | None  # None when the currency is "": such gestures are counted, not summed


@dataclass(frozen=True)
class Period:
    """One period's spend [start, end) per agent and per gesture type, and its totals per currency."""

    name: str
    start: datetime
    end: datetime
    by_agent: list[Line]
    by_type: list[Line]
    totals: list[Line]


@dataclass(frozen=True)
class Budget:
    """One agent-week bound measured for one agent: what is spent and what is left (per currency)."""

    bound: Bound
    gesture: str  # the gesture type's name, or "" for an overall bound
    agent_id: int
    agent: str
    count: int
    count_left: int | None
    amounts: list[tuple[str, Decimal, Decimal]]  # (currency, spent, left); left may be below 0


@dataclass(frozen=True)
class Pending:
    """Offers waiting for an approver: how many, and the oldest one."""

    count: int
    oldest: RecoveryEntry | None


@dataclass
class Outliers:
    """Agents who spent more than OUTLIER_FACTOR times the team median in one currency ("" = by count)."""

    currency: str
    agents: int  # how many agents spent in this currency
    median: Decimal | None  # None when fewer than MIN_AGENTS spent: the comparison needs more data
    flagged: list[Line] = field(default_factory=list)

    @property
    def enough(self) -> bool:
        """Whether enough agents spent for a median worth comparing with."""
        return self.median is not None


def _zone(settings: Mapping[str, Any]) -> ZoneInfo:
    """The configured time zone."""
    return ZoneInfo(str(settings.get("TIME_ZONE") or "UTC"))


def week(settings: Mapping[str, Any], now: datetime) -> tuple[datetime, datetime]:
    """The budget week containing ``now``, as [start, end) (the same week the agent-week bounds use)."""
    return kb_bounds._week(settings, now)


def month(settings: Mapping[str, Any], now: datetime) -> tuple[datetime, datetime]:
    """The calendar month in TIME_ZONE containing ``now``, as [start, end)."""
    local = now.astimezone(_zone(settings)).date().replace(day=1)
    following = local.replace(year=local.year + local.month // 12, month=local.month % 12 + 1)
    return (datetime.combine(local, time(0), _zone(settings)),
            datetime.combine(following, time(0), _zone(settings)))


def _sums(session: so.Session, column, start: datetime, end: datetime,
          *where) -> list[tuple[int, str, int, Decimal]]:
    """(key, currency, count, amount) of the standing offers in [start, end), grouped by ``column``."""
    # The bounds' own definitions of what counts, so this page and the budgets never disagree.
    amount = kb_bounds._counted_amount()
    return [(key, currency, count, Decimal(total or 0)) for key, currency, count, total in session.execute(
        sa.select(column, RecoveryEntry.currency, sa.func.count(), sa.func.sum(amount))
        .where(kb_bounds._standing_offers(), RecoveryEntry.created_at >= start, RecoveryEntry.created_at < end,
               *where)
        .group_by(column, RecoveryEntry.currency))]


def _lines(rows, labels: Mapping[int, str]) -> list[Line]:
    """Rows as Lines, the largest spend first within each currency."""
    lines = [Line(key, labels.get(key, f"#{key}"), currency, count, amount if currency else None)
             for key, currency, count, amount in rows]
    return sorted(lines, key=lambda line: (line.currency, -(line.amount or 0), -line.count, line.label.casefold()))


def _totals(lines: list[Line]) -> list[Line]:
    """The period's total per currency."""
    totals: dict[str, list] = {}
    for line in lines:
        total = totals.setdefault(line.currency, [0, Decimal("0")])
        total[0] += line.count
        total[1] += line.amount or 0
    return [Line(0, "", currency, count, amount if currency else None)
            for currency, (count, amount) in sorted(totals.items())]


def agent_names(session: so.Session) -> dict[int, str]:
    """Every agent's display name by id."""
    return {agent_id: name for agent_id, name in session.execute(sa.select(Agent.id, Agent.name))}


def period(session: so.Session, name: str, start: datetime, end: datetime) -> Period:
    """Spend in [start, end) per agent and per gesture type."""
    types = {type_id: label for type_id, label in session.execute(sa.select(GestureType.id, GestureType.name))}
    by_agent = _lines(_sums(session, RecoveryEntry.agent_id, start, end), agent_names(session))
    return Period(name, start, end, by_agent, _lines(_sums(session, RecoveryEntry.gesture_type_id, start, end), types),
                  _totals(by_agent))


def spend(session: so.Session, settings: Mapping[str, Any], now: datetime | None = None) -> tuple[Period, Period]:
    """Spend this week and this month."""
    now = now or utcnow()
    return period(session, "week", *week(settings, now)), period(session, "month", *month(settings, now))


def budgets(session: so.Session, settings: Mapping[str, Any], now: datetime | None = None) -> list[Budget]:
    """Every active agent-week bound against each agent's spend this week (agents who may offer, or who did)."""
    start, end = week(settings, now or utcnow())
    names = {gid: (label, currency) for gid, label, currency in session.execute(
        sa.select(GestureType.id, GestureType.name, GestureType.currency))}
    people = {agent_id: name for agent_id, name in session.execute(
        sa.select(Agent.id, Agent.name).where(Agent.active.is_(True), Agent.role != "editor"))}
    found = []
    for bound in session.scalars(sa.select(Bound).where(Bound.active.is_(True), Bound.scope == "agent_week")
                                 .order_by(Bound.gesture_type_id.is_not(None), Bound.id)):
        narrow = [] if bound.gesture_type_id is None else [RecoveryEntry.gesture_type_id == bound.gesture_type_id]
        spent: dict[int, dict[str, tuple[int, Decimal]]] = {}
        for agent_id, currency, count, amount in _sums(session, RecoveryEntry.agent_id, start, end, *narrow):
            spent.setdefault(agent_id, {})[currency] = (count, amount)
        label, type_currency = names.get(bound.gesture_type_id, ("", ""))
        everyone = {**people, **{agent_id: people.get(agent_id) or f"#{agent_id}" for agent_id in spent}}
        for agent_id, name in sorted(everyone.items(), key=lambda item: (item[1].casefold(), item[0])):
            found.append(_budget(bound, label, type_currency, agent_id, name, spent.get(agent_id, {})))
    return found


def _budget(bound: Bound, label: str, type_currency: str, agent_id: int, name: str,
            spent: Mapping[str, tuple[int, Decimal]]) -> Budget:
    """One agent's spend under one bound, and what is left of it."""
    count = sum(n for n, _amount in spent.values())
    amounts: list[tuple[str, Decimal, Decimal]] = []
    if bound.max_amount is not None:
        limit = Decimal(bound.max_amount)
        # A type's bound is in its currency; an overall one applies per currency the agent spent in.
        currencies = [type_currency] if bound.gesture_type_id is not None else sorted(c for c in spent if c)
        amounts = [(currency, spent.get(currency, (0, Decimal("0")))[1],
                    limit - spent.get(currency, (0, Decimal("0")))[1]) for currency in currencies if currency]
    left = None if bound.max_count is None else bound.max_count - count
    return Budget(bound, label, agent_id, name, count, left, amounts)


def pending(session: so.Session) -> Pending:
    """Offers still waiting for an approver, and the oldest of them."""
    later = so.aliased(RecoveryEntry)
    waiting = sa.and_(RecoveryEntry.kind == "offer", RecoveryEntry.state == "pending", ~sa.exists().where(
        later.offer_id == RecoveryEntry.id, later.kind.in_(DECIDED)))
    count = session.scalar(sa.select(sa.func.count()).select_from(RecoveryEntry).where(waiting))
    oldest = session.scalars(sa.select(RecoveryEntry).where(waiting)
                             .order_by(RecoveryEntry.created_at, RecoveryEntry.id).limit(1)).first()
    return Pending(count or 0, oldest)


def outliers(spent: Period) -> list[Outliers]:
    """Per currency, agents whose spend is above OUTLIER_FACTOR times the median of the agents who spent.

    Gestures without a currency are compared by their count. With fewer than MIN_AGENTS agents who
    spent, no median is given and nobody is flagged.
    """
    groups: dict[str, list[Line]] = {}
    for line in spent.by_agent:
        groups.setdefault(line.currency, []).append(line)
    found = []
    for currency, lines in sorted(groups.items()):
        if len(lines) < MIN_AGENTS:
            found.append(Outliers(currency, len(lines), None))
            continue
        median = Decimal(statistics.median(spent_value(line) for line in lines))
        found.append(Outliers(currency, len(lines), median,
                              [line for line in lines if spent_value(line) > OUTLIER_FACTOR * median]))
    return found


def spent_value(line: Line) -> Decimal:
    """What a line spent: its amount, or its count for a gesture without a currency."""
    return Decimal(line.count) if line.amount is None else line.amount
