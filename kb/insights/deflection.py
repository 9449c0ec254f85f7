"""The deflection rate and the self-service score of a period, counted in SQL (GROUP BY), never row by row.

- **Questions received**: mail records created in the period through the mailbox or the contact
  form (``channel`` email | web_form), except those kb skipped (robots, mail loops, the contact
  form's own copy in the mailbox) and a shadow worker's (dry-run) copies.
- Of those, kb's answers that are **confirmed**, **assumed** or **reopened** (kb.insights.outcomes),
  and **pending**: answered, still within the wait (or from before outcomes existed and not yet
  swept). The rest a person handled.
- **Deflection rate** = (confirmed + assumed) / questions received; confirmed and assumed are always
  shown apart, because "assumed" is a guess.
- **Self-service score** = portal sessions (a visitor's day with a search or an article view,
  kb.insights.models.PortalVisit) / questions received.

Each figure is one indexed range scan over ``mail_records.created_at`` (or ``portal_visits.day``).
Days are TIME_ZONE days: records are grouped per UTC hour in SQL and the (at most 24 per day)
groups folded into days here; periods longer than LONG_DAYS are grouped per UTC day into weeks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.ledger import DRY_RUN_KEY
from kb.autoreply.models import CHANNELS, MailRecord
from kb.followup.models import OPEN_STATES, Case
from kb.followup.queue import waiting_since
from kb.followup.sample_builder import PREFIX as SAMPLE
from kb.insights.models import PortalVisit
from kb.insights.outcomes import answered_by_kb
from kb.insights.periods import Period

LONG_DAYS = 92  # longer periods are charted per week
MAX_GROUPS = 50  # categories or languages listed (most questions first)


@dataclass(frozen=True)
class Counts:
    """Questions received and what became of kb's answers to them."""

    questions: int = 0
    confirmed: int = 0
    assumed: int = 0
    reopened: int = 0
    pending: int = 0

    @property
    def deflected(self) -> int:
        """Confirmed plus assumed."""
        return self.confirmed + self.assumed

    @property
    def rate(self) -> float | None:
        """(confirmed + assumed) / questions; None without questions."""
        return self.deflected / self.questions if self.questions else None

    def add(self, other: Counts) -> Counts:
        """The two counts summed."""
        return Counts(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple())))

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        """(questions, confirmed, assumed, reopened, pending)."""
        return (self.questions, self.confirmed, self.assumed, self.reopened, self.pending)


@dataclass(frozen=True)
class Deflection:
    """A period's figures: totals, per time bucket ("day" or "week"), per category, language and channel."""

    totals: Counts
    bucket: str
    by_time: list[tuple[date, Counts]]
    by_category: list[tuple[str, Counts]]
    by_language: list[tuple[str, Counts]]
    by_channel: list[tuple[str, Counts]]
    portal_sessions: int = 0
    sample_questions: int = 0  # of the questions, how many are sample data
    zone: str = "UTC"

    @property
    def self_service(self) -> float | None:
        """Portal sessions per question received; None without questions."""
        return self.portal_sessions / self.totals.questions if self.totals.questions else None


def _columns() -> list:
    """The aggregate columns of a Counts, in its order."""
    outcome, count = MailRecord.outcome, sa.func.count
    return [count(), count().filter(outcome == "confirmed"), count().filter(outcome == "assumed"),
            count().filter(outcome == "reopened"), count().filter(sa.and_(outcome.is_(None), answered_by_kb()))]


def questions_where(period: Period) -> list:
    """The WHERE clauses of "questions received in the period" (the range first: it is the index)."""
    where = [MailRecord.created_at >= period.start, MailRecord.created_at < period.end,
             MailRecord.channel.in_(CHANNELS), MailRecord.state != "skipped",
             ~MailRecord.dedupe_key.startswith(DRY_RUN_KEY)]
    if period.lang:
        where.append(MailRecord.lang == period.lang)
    return where


def _counts(row) -> Counts:
    """A Counts from the aggregate columns of a result row."""
    return Counts(*(int(value or 0) for value in row[-5:]))


def _grouped(session: so.Session, period: Period, key) -> list[tuple[str, Counts]]:
    """Counts per value of ``key``, most questions first (at most MAX_GROUPS)."""
    stmt = (sa.select(key, *_columns()).where(*questions_where(period)).group_by(key)
            .order_by(sa.func.count().desc(), key).limit(MAX_GROUPS))
    return [(str(row[0] or ""), _counts(row)) for row in session.execute(stmt)]


def _time_text(session: so.Session, hourly: bool):
    """SQL: created_at as UTC text, "YYYY-MM-DD HH" (hourly) or "YYYY-MM-DD"."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.to_char(MailRecord.created_at, "YYYY-MM-DD HH24" if hourly else "YYYY-MM-DD")
    return sa.func.strftime("%Y-%m-%d %H" if hourly else "%Y-%m-%d", MailRecord.created_at)


def _week(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def by_time(session: so.Session, period: Period, zone: str = "UTC") -> tuple[str, list[tuple[date, Counts]]]:
    """("day" or "week", [(first day of the bucket, counts)]) for every bucket of the period, empty ones too."""
    tz = ZoneInfo(zone)
    days = period.day_list(zone)
    weekly = len(days) > LONG_DAYS
    text = _time_text(session, hourly=not weekly)
    stmt = sa.select(text, *_columns()).where(*questions_where(period)).group_by(text)
    buckets = {_week(d) if weekly else d: Counts() for d in days}
    for row in session.execute(stmt):
        if weekly:  # UTC days: a week's edges may be a few hours off TIME_ZONE's
            key = _week(date.fromisoformat(row[0]))
        else:
            hour = datetime.strptime(row[0], "%Y-%m-%d %H").replace(tzinfo=timezone.utc)
            key = hour.astimezone(tz).date()
        if key in buckets:
            buckets[key] = buckets[key].add(_counts(row))
    return ("week" if weekly else "day"), sorted(buckets.items())


def _visit_days(period: Period) -> tuple[date, date]:
    """The first and last day (UTC, as PortalVisit.day) the period covers whole or mostly."""
    start = period.start.astimezone(timezone.utc)
    first = start.date() if start.time() == time(0) else start.date() + timedelta(days=1)
    return first, (period.end.astimezone(timezone.utc) - timedelta(microseconds=1)).date()


def portal_sessions(session: so.Session, period: Period) -> int:
    """Visitor-days on the portal in the period with a search or an article view."""
    first, last = _visit_days(period)
    where = [PortalVisit.day >= first, PortalVisit.day <= last, sa.or_(PortalVisit.searched, PortalVisit.viewed)]
    if period.lang:
        where.append(PortalVisit.lang == period.lang)
    return session.scalar(sa.select(sa.func.count()).select_from(PortalVisit).where(*where)) or 0


def deflection(session: so.Session, period: Period, settings: Mapping[str, Any]) -> Deflection:
    """Every figure of the dashboard's deflection part for ``period``."""
    zone = str(settings.get("TIME_ZONE") or "UTC")
    totals_row = session.execute(sa.select(
        *_columns(), sa.func.count().filter(MailRecord.dedupe_key.startswith(SAMPLE))).where(
        *questions_where(period))).one()
    bucket, rows = by_time(session, period, zone)
    return Deflection(
        totals=_counts(totals_row[:5]), bucket=bucket, by_time=rows,
        by_category=_grouped(session, period, MailRecord.category),
        by_language=_grouped(session, period, MailRecord.lang),
        by_channel=_grouped(session, period, MailRecord.channel),
        portal_sessions=portal_sessions(session, period), sample_questions=int(totals_row[5] or 0), zone=zone)


def followups_waiting(session: so.Session) -> tuple[int, datetime | None]:
    """Open follow-up cases (kb.followup): how many, and since when the longest-waiting one waits."""
    since = waiting_since()
    count, oldest = session.execute(sa.select(sa.func.count(), sa.func.min(since))
                                    .select_from(Case).where(Case.state.in_(OPEN_STATES))).one()
    if isinstance(oldest, str):  # SQLite hands back a computed datetime as text
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=timezone.utc)
    return int(count or 0), oldest
