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
from functools import lru_cache, reduce
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
MAX_PAIRS = 5000  # (category, language) groups read: far more than kb has


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


def _summed(pairs) -> dict:
    """(key, counts as a tuple) pairs summed per key into lists (thousands of rows: no object per row)."""
    summed: dict = {}
    for key, values in pairs:
        total = summed.setdefault(key, [0] * 5)
        for n, value in enumerate(values):
            total[n] += int(value or 0)
    return summed


def _folded(pairs, limit: int | None = MAX_GROUPS) -> list[tuple[str, Counts]]:
    """(key, aggregate columns) pairs summed per key; most questions first (then by key), at most ``limit``."""
    summed = [(key, Counts(*values)) for key, values in _summed(pairs).items()]
    return sorted(summed, key=lambda item: (-item[1].questions, item[0]))[:limit]


def _time_text(session: so.Session, hourly: bool):
    """SQL: created_at as UTC text, "YYYY-MM-DD HH" (hourly) or "YYYY-MM-DD"."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.to_char(MailRecord.created_at, "YYYY-MM-DD HH24" if hourly else "YYYY-MM-DD")
    return sa.func.strftime("%Y-%m-%d %H" if hourly else "%Y-%m-%d", MailRecord.created_at)


def _week(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def _time_rows(session: so.Session, period: Period, weekly: bool) -> list:
    """One scan: (UTC hour or day as text, channel, counts..., sample questions) per group."""
    text = _time_text(session, hourly=not weekly)
    sample = sa.func.count().filter(MailRecord.dedupe_key.startswith(SAMPLE))
    stmt = (sa.select(text, MailRecord.channel, *_columns(), sample).where(*questions_where(period))
            .group_by(text, MailRecord.channel))
    return list(session.execute(stmt))


@lru_cache(maxsize=4096)
def _local_day(hour_text: str, tz: ZoneInfo) -> date:
    """The day in ``tz`` of a UTC hour written "YYYY-MM-DD HH" (cached: each hour recurs per channel)."""
    day = date.fromisoformat(hour_text[:10])
    utc = datetime(day.year, day.month, day.day, int(hour_text[11:13]), tzinfo=timezone.utc)
    return utc.astimezone(tz).date()


def _buckets(rows, period: Period, zone: str, weekly: bool) -> list[tuple[date, Counts]]:
    """The time rows summed per day (in ``zone``) or per week (UTC), every bucket of the period listed."""
    tz = ZoneInfo(zone)
    keys = {_week(d) if weekly else d for d in period.day_list(zone)}
    # UTC days for weeks: a week's edges may be a few hours off TIME_ZONE's.
    summed = _summed(((_week(date.fromisoformat(row[0])) if weekly else _local_day(row[0], tz)), row[-6:-1])
                     for row in rows)
    return sorted((key, Counts(*summed.get(key, [0] * 5))) for key in keys)


def by_time(session: so.Session, period: Period, zone: str = "UTC") -> tuple[str, list[tuple[date, Counts]]]:
    """("day" or "week", [(first day of the bucket, counts)]) for every bucket of the period, empty ones too."""
    weekly = len(period.day_list(zone)) > LONG_DAYS
    return ("week" if weekly else "day"), _buckets(_time_rows(session, period, weekly), period, zone, weekly)


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
    """Every figure of the dashboard's deflection part for ``period``: two scans of the period's records.

    One groups by hour (or day) and channel: the chart over time, the channels and the totals; the
    other by category and language. The groups are few (at most 24 x 2 a day), so folding them
    here costs little, and each scan reads the period's rows once.
    """
    zone = str(settings.get("TIME_ZONE") or "UTC")
    weekly = len(period.day_list(zone)) > LONG_DAYS
    rows = _time_rows(session, period, weekly)
    by_channel = _folded((str(row[1]), row[-6:-1]) for row in rows)
    pairs = list(session.execute(sa.select(MailRecord.category, MailRecord.lang, *_columns())
                                 .where(*questions_where(period)).group_by(MailRecord.category, MailRecord.lang)
                                 .limit(MAX_PAIRS)))
    return Deflection(
        totals=reduce(Counts.add, (counts for _channel, counts in by_channel), Counts()),
        bucket="week" if weekly else "day", by_time=_buckets(rows, period, zone, weekly),
        by_category=_folded((str(row[0] or ""), row[-5:]) for row in pairs),
        by_language=_folded((str(row[1] or ""), row[-5:]) for row in pairs),
        by_channel=by_channel, portal_sessions=portal_sessions(session, period),
        sample_questions=sum(int(row[-1] or 0) for row in rows), zone=zone)


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
