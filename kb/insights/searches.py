"""The search report: what customers searched for, what found nothing, what they did not open.

Every figure is an SQL aggregate over the period's search_log rows (index created_at, group_key),
bounded by LIMIT, so a page stays fast on a million rows. Near-identical searches count together
through ``group_key`` (their stems); a group is ranked by how many visitors it hit, then by its
searches. A visitor is the portal's random cookie value; API searches have none, so they count as
searches but not as visitors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.insights.periods import Period
from kb.models import SearchLog

TABLES = ("top", "no_results", "no_click")  # the report's tables, each a condition on a search
HOUR_FORMAT = "%Y-%m-%d %H"


@dataclass(frozen=True)
class SearchGroup:
    """Near-identical searches counted together."""

    key: str  # SearchLog.group_key
    query: str  # the most frequent wording, to show
    searches: int
    visitors: int
    no_results: int  # searches with no results
    no_click: int  # searches with results and no click
    contacted: int  # searches after which the visitor used the contact form
    lang: str = ""  # the language of the most frequent wording (for "Write an article")

    @property
    def contacted_share(self) -> float:
        """The share of these searches the visitor followed with the contact form."""
        return self.contacted / self.searches if self.searches else 0.0


@dataclass(frozen=True)
class SearchSummary:
    """The period's searches in all: how many, by how many visitors, and how many failed."""

    searches: int
    visitors: int
    no_results: int
    no_click: int
    contacted: int


@dataclass(frozen=True)
class SearchDay:
    """One day's searches (in TIME_ZONE) and those among them that found nothing."""

    day: date
    searches: int
    no_results: int


def _key():
    """The group of a row; rows logged before group keys existed group by their lower-cased query."""
    return sa.case((SearchLog.group_key == "", sa.func.lower(SearchLog.query)), else_=SearchLog.group_key)


def _in_period(stmt, period: Period):
    """``stmt`` limited to the period's searches (and its language, if one is chosen)."""
    stmt = stmt.where(SearchLog.created_at >= period.start, SearchLog.created_at < period.end)
    return stmt.where(SearchLog.lang == period.lang) if period.lang else stmt


def _condition(table: str):
    """Which searches a table counts: all of them, those with no results, those with results and no click."""
    if table == "no_results":
        return SearchLog.results == 0
    if table == "no_click":
        return sa.and_(SearchLog.results > 0, SearchLog.click_position.is_(None))
    if table == "gaps":  # no result opened: covers both of the above (no results means no click)
        return SearchLog.click_position.is_(None)
    if table == "top":
        return sa.true()
    raise ValueError(f"unknown search table {table!r}: use one of {', '.join(TABLES)}")


def _counts():
    """The aggregate columns every table and the summary share, in SearchGroup's order."""
    flag = lambda condition: sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)  # noqa: E731
    return (sa.func.count(SearchLog.id), sa.func.count(sa.distinct(sa.func.nullif(SearchLog.visitor, ""))),
            flag(SearchLog.results == 0), flag(sa.and_(SearchLog.results > 0, SearchLog.click_position.is_(None))),
            flag(SearchLog.contacted.is_(True)))


def groups(session: so.Session, period: Period, table: str = "top", limit: int = 20) -> list[SearchGroup]:
    """One table of the report: the groups of the period's searches meeting its condition, most visitors first."""
    key = _key().label("key")
    searches, visitors, *rest = _counts()
    stmt = _in_period(sa.select(key, searches, visitors, *rest), period).where(_condition(table))
    rows = session.execute(stmt.group_by(key).order_by(visitors.desc(), searches.desc(), key)
                           .limit(max(1, min(limit, 500)))).all()
    wordings = _wordings(session, period, table, [row[0] for row in rows])
    groups_found = []
    for key_value, *counts in rows:
        wording, lang = wordings.get(key_value, (key_value, ""))
        groups_found.append(SearchGroup(key_value, wording, *map(int, counts), lang=lang))
    return groups_found


def _wordings(session: so.Session, period: Period, table: str, keys: list[str]) -> dict[str, tuple[str, str]]:
    """For each key, its most frequent wording (ties: the shortest) and that wording's language."""
    if not keys:
        return {}
    key, uses = _key(), sa.func.count(SearchLog.id)
    rank = sa.func.row_number().over(partition_by=key, order_by=(uses.desc(), sa.func.length(SearchLog.query),
                                                                 SearchLog.query))
    counted = (_in_period(sa.select(key.label("key"), SearchLog.query, sa.func.max(SearchLog.lang).label("lang"),
                                    rank.label("rank")), period)
               .where(_condition(table), key.in_(keys)).group_by(key, SearchLog.query).subquery())
    rows = session.execute(sa.select(counted.c.key, counted.c.query, counted.c.lang).where(counted.c.rank == 1))
    return {k: (query or k, lang or "") for k, query, lang in rows}


def top_gaps(session: so.Session, period: Period, limit: int = 10) -> list[SearchGroup]:
    """The period's failing searches (no results, or results and no click), most visitors first."""
    return groups(session, period, "gaps", limit)


def summary(session: so.Session, period: Period) -> SearchSummary:
    """The period's searches in all."""
    row = session.execute(_in_period(sa.select(*_counts()), period)).one()
    return SearchSummary(*(int(value or 0) for value in row))


def _hour():
    """A search's UTC hour as text (YYYY-MM-DD HH), in the database's own dialect."""
    return sa.func.strftime(HOUR_FORMAT, SearchLog.created_at)


def per_day(session: so.Session, period: Period, settings: Mapping[str, Any]) -> list[SearchDay]:
    """Searches per day of the period in TIME_ZONE, with those that found nothing; every day, zeros too.

    Counted per UTC hour in SQL (at most 24 rows a day) and added up per local day here, which
    follows any zone with whole-hour offsets, daylight saving time included.
    """
    zone = str(settings.get("TIME_ZONE") or "UTC")
    tz = ZoneInfo(zone)
    dialect = session.get_bind().dialect.name
    hour = (sa.func.to_char(sa.func.date_trunc("hour", SearchLog.created_at), "YYYY-MM-DD HH24")
            if dialect == "postgresql" else _hour()).label("hour")
    stmt = _in_period(sa.select(hour, sa.func.count(SearchLog.id),
                                sa.func.coalesce(sa.func.sum(sa.case((SearchLog.results == 0, 1), else_=0)), 0)),
                      period).group_by(hour)
    days = {day: [0, 0] for day in period.day_list(zone)}
    for text, searches, empty in session.execute(stmt):
        local = datetime.strptime(text, HOUR_FORMAT).replace(tzinfo=timezone.utc).astimezone(tz).date()
        if local in days:
            days[local][0] += int(searches)
            days[local][1] += int(empty or 0)
    return [SearchDay(day, searches, empty) for day, (searches, empty) in days.items()]
