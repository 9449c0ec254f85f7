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


def _in_period(stmt, period: Period):
    """``stmt`` limited to the period's searches (and its language, if one is chosen)."""
    stmt = stmt.where(SearchLog.created_at >= period.start, SearchLog.created_at < period.end)
    return stmt.where(SearchLog.lang == period.lang) if period.lang else stmt


def _flag(condition):
    """How many rows meet ``condition`` (0, not NULL, for none)."""
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


NO_RESULTS = SearchLog.results == 0
NO_CLICK = sa.and_(SearchLog.results > 0, SearchLog.click_position.is_(None))


def _per_visitor(period: Period):
    """Each (group, visitor)'s searches of the period and how many failed or led to the contact form.

    Counting visitors as rows of this hash aggregate is much cheaper than COUNT(DISTINCT visitor)
    per group. Rows logged before group keys existed (empty key) count in the totals only.
    """
    contacted = SearchLog.contacted.is_(True)
    return (_in_period(sa.select(
        SearchLog.group_key.label("key"), SearchLog.visitor.label("visitor"), sa.func.count(SearchLog.id).label("n"),
        _flag(NO_RESULTS).label("nr"), _flag(NO_CLICK).label("nc"), _flag(contacted).label("ct"),
        _flag(sa.and_(NO_RESULTS, contacted)).label("ct_nr"), _flag(sa.and_(NO_CLICK, contacted)).label("ct_nc")),
        period).group_by(SearchLog.group_key, SearchLog.visitor).cte("per_visitor"))


def _people(cte, condition=None):
    """How many of the (group, visitor) rows have a visitor (and meet ``condition``): distinct visitors."""
    known = cte.c.visitor != ""
    return _flag(known if condition is None else sa.and_(known, condition))


def _per_key(pv):
    """Every group's counts for every table, aggregated once (PostgreSQL materialises it: every table reads it)."""
    total = sa.func.sum
    c = pv.c
    return sa.select(c.key, total(c.n).label("searches"), _people(pv).label("visitors"),
                     total(c.nr).label("nr"), _people(pv, c.nr > 0).label("v_nr"),
                     total(c.nc).label("nc"), _people(pv, c.nc > 0).label("v_nc"),
                     _people(pv, c.nr + c.nc > 0).label("v_gaps"), total(c.ct).label("ct"),
                     total(c.ct_nr).label("ct_nr"), total(c.ct_nc).label("ct_nc")).group_by(c.key).cte("per_key")


def _table_columns(per_key, table: str) -> list:
    """A table's (searches, visitors, no_results, no_click, contacted) per group, in SearchGroup's order."""
    c, zero = per_key.c, sa.literal(0)
    if table == "top":
        return [c.searches, c.visitors, c.nr, c.nc, c.ct]
    if table == "no_results":
        return [c.nr, c.v_nr, c.nr, zero, c.ct_nr]
    if table == "no_click":
        return [c.nc, c.v_nc, zero, c.nc, c.ct_nc]
    if table == "gaps":  # no result opened: no results, or results and no click
        return [c.nr + c.nc, c.v_gaps, c.nr, c.nc, c.ct_nr + c.ct_nc]
    raise ValueError(f"unknown search table {table!r}: use one of {', '.join(TABLES)}")


def _totals(pv, per_key):
    """The summary as one more row of the report's union ("", "", then SearchSummary's fields)."""
    c, total = per_key.c, sa.func.sum
    # Distinct visitors by a GROUP BY (hashed) rather than COUNT(DISTINCT), which sorts.
    known = sa.select(pv.c.visitor).where(pv.c.visitor != "").group_by(pv.c.visitor).subquery()
    visitors = sa.select(sa.func.count()).select_from(known).scalar_subquery()
    return sa.select(sa.literal("").label("tbl"), sa.literal("").label("key"), total(c.searches), visitors,
                     total(c.nr), total(c.nc), total(c.ct))


def report(session: so.Session, period: Period, tables=TABLES, limit: int = 20, *,
           totals: bool = True) -> tuple[dict[str, list[SearchGroup]], SearchSummary | None]:
    """The report's tables and totals from one aggregate of the period: per table, its groups, most visitors first.

    A table counts only its own searches: "no_results" the searches that found nothing, and so on.
    ``totals=False`` leaves out the summary (and its count of distinct visitors).
    """
    limit = max(1, min(limit, 500))
    pv = _per_visitor(period)
    per_key = _per_key(pv)
    parts = [_totals(pv, per_key)] if totals else []
    for table in tables:
        searches_, visitors, *rest = _table_columns(per_key, table)
        ranked = (sa.select(sa.literal(table).label("tbl"), per_key.c.key, searches_.label("searches"),
                            visitors.label("visitors"), *(col.label(f"c{i}") for i, col in enumerate(rest)))
                  .where(searches_ > 0, per_key.c.key != "")
                  .order_by(visitors.desc(), searches_.desc(), per_key.c.key).limit(limit).subquery())
        parts.append(sa.select(ranked))
    rows = session.execute(sa.union_all(*parts)).all()
    summary_row = next((row for row in rows if row[0] == ""), None)
    wordings = _wordings(session, period, {row[1] for row in rows if row[0]})
    found: dict[str, list[SearchGroup]] = {table: [] for table in tables}
    for table, key, *counts in rows:
        if table:
            wording, lang = wordings.get(key, (key, ""))
            found[table].append(SearchGroup(key, wording, *(int(n or 0) for n in counts), lang=lang))
    return found, SearchSummary(*(int(n or 0) for n in summary_row[2:])) if summary_row else None


def groups(session: so.Session, period: Period, table: str = "top", limit: int = 20) -> list[SearchGroup]:
    """One table of the report ("top", "no_results", "no_click" or "gaps"), most visitors first."""
    return report(session, period, (table,), limit, totals=False)[0][table]


def _wordings(session: so.Session, period: Period, keys: set[str]) -> dict[str, tuple[str, str]]:
    """For each key, its most frequent wording in the period (ties: the shortest) and that wording's language.

    Reads only the rows of these keys (index created_at, group_key).
    """
    if not keys:
        return {}
    uses = sa.func.count(SearchLog.id)
    rank = sa.func.row_number().over(partition_by=SearchLog.group_key, order_by=(
        uses.desc(), sa.func.length(SearchLog.query), SearchLog.query))
    counted = (_in_period(sa.select(SearchLog.group_key.label("key"), SearchLog.query,
                                    sa.func.max(SearchLog.lang).label("lang"), rank.label("rank")), period)
               .where(SearchLog.group_key.in_(sorted(keys))).group_by(SearchLog.group_key, SearchLog.query).subquery())
    rows = session.execute(sa.select(counted.c.key, counted.c.query, counted.c.lang).where(counted.c.rank == 1))
    return {k: (query or k, lang or "") for k, query, lang in rows}


def top_gaps(session: so.Session, period: Period, limit: int = 10) -> list[SearchGroup]:
    """The period's failing searches (no results, or results and no click), most visitors first."""
    return groups(session, period, "gaps", limit)


def summary(session: so.Session, period: Period) -> SearchSummary:
    """The period's searches in all (every row, also those logged before group keys existed)."""
    return report(session, period, ())[1]


def _hour(session: so.Session):
    """A search's UTC hour in the database's own dialect (a datetime, or YYYY-MM-DD HH text in SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.date_trunc("hour", SearchLog.created_at)
    return sa.func.strftime(HOUR_FORMAT, SearchLog.created_at)


def per_day(session: so.Session, period: Period, settings: Mapping[str, Any]) -> list[SearchDay]:
    """Searches per day of the period in TIME_ZONE, with those that found nothing; every day, zeros too.

    Counted per UTC hour in SQL (at most 24 rows a day) and added up per local day here, which
    follows any zone with whole-hour offsets, daylight saving time included.
    """
    zone = str(settings.get("TIME_ZONE") or "UTC")
    tz = ZoneInfo(zone)
    hour = _hour(session).label("hour")
    stmt = _in_period(sa.select(hour, sa.func.count(SearchLog.id), _flag(NO_RESULTS)), period).group_by(hour)
    days = {day: [0, 0] for day in period.day_list(zone)}
    for text, searches, empty in session.execute(stmt):
        when = text if isinstance(text, datetime) else datetime.strptime(text, HOUR_FORMAT)
        local = when.replace(tzinfo=timezone.utc).astimezone(tz).date()
        if local in days:
            days[local][0] += int(searches)
            days[local][1] += int(empty or 0)
    return [SearchDay(day, searches, empty) for day, (searches, empty) in days.items()]
