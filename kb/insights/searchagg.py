"""The search report's SQL aggregates over raw search_log rows, shared by the report and the daily roll-up.

One code path counts both, so a rolled-up day and the same day read raw give the same numbers.
A customer is a visitor-day: a visitor (the portal's random cookie value) counts once for each UTC
day and language they searched, so per-day counts add up (kb.insights.rollup).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.models import SearchLog

HOUR_FORMAT = "%Y-%m-%d %H"
# A group's counts, in this order everywhere (the roll-up's columns have these names).
COUNTS = ("searches", "visitors", "no_results", "v_no_results", "no_click", "v_no_click", "v_gaps",
          "contacted", "ct_no_results", "ct_no_click")
NO_RESULTS = SearchLog.results == 0
NO_CLICK = sa.and_(SearchLog.results > 0, SearchLog.click_position.is_(None))


def flag(condition):
    """How many rows meet ``condition`` (0, not NULL, for none)."""
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def within(intervals: Iterable[tuple[datetime, datetime]], lang: str = ""):
    """The rows created in any of the [start, end) ``intervals`` (and in ``lang``, if one is given)."""
    column = SearchLog.created_at
    spans = [sa.and_(column >= start, column < end) for start, end in intervals]
    where = sa.or_(*spans) if spans else sa.false()
    return sa.and_(where, SearchLog.lang == lang) if lang else where


def _day():
    """A search's UTC day (a date in PostgreSQL, YYYY-MM-DD text in SQLite: either groups alike)."""
    return sa.func.date(SearchLog.created_at)


def _per_visitor(where):
    """Each (group, language, day, visitor)'s searches and how many failed or led to the contact form.

    Counting visitors as rows of this hash aggregate is much cheaper than COUNT(DISTINCT visitor).
    """
    contacted = SearchLog.contacted.is_(True)
    return (sa.select(
        SearchLog.group_key.label("key"), SearchLog.lang.label("lang"), _day().label("day"),
        SearchLog.visitor.label("visitor"), sa.func.count(SearchLog.id).label("n"),
        flag(NO_RESULTS).label("nr"), flag(NO_CLICK).label("nc"), flag(contacted).label("ct"),
        flag(sa.and_(NO_RESULTS, contacted)).label("ct_nr"), flag(sa.and_(NO_CLICK, contacted)).label("ct_nc"))
        .where(where).group_by(SearchLog.group_key, SearchLog.lang, _day(), SearchLog.visitor).cte("per_visitor"))


def _people(pv, condition=None):
    """How many of the per-visitor rows have a visitor (and meet ``condition``): visitor-days."""
    known = pv.c.visitor != ""
    return flag(known if condition is None else sa.and_(known, condition))


def per_key(where, by_lang: bool = False):
    """Every group's COUNTS over the rows ``where`` selects (per language too with ``by_lang``)."""
    pv = _per_visitor(where)
    c, total = pv.c, sa.func.sum
    keys = [c.key, c.lang] if by_lang else [c.key]
    return sa.select(*keys, total(c.n), _people(pv), total(c.nr), _people(pv, c.nr > 0), total(c.nc),
                     _people(pv, c.nc > 0), _people(pv, c.nr + c.nc > 0), total(c.ct), total(c.ct_nr),
                     total(c.ct_nc)).group_by(*keys)


def totals(where, by_lang: bool = False):
    """(searches, visitor-days, no_results, no_click, contacted) of the rows ``where`` selects."""
    extra = [SearchLog.lang] if by_lang else []
    rows = (sa.select(*extra, SearchLog.visitor, _day().label("day"), sa.func.count(SearchLog.id).label("n"),
                      flag(NO_RESULTS).label("nr"), flag(NO_CLICK).label("nc"),
                      flag(SearchLog.contacted.is_(True)).label("ct"))
            .where(where).group_by(*extra, SearchLog.visitor, _day()).subquery())
    total = sa.func.sum
    keys = [rows.c.lang] if by_lang else []
    return sa.select(*keys, total(rows.c.n), flag(rows.c.visitor != ""), total(rows.c.nr), total(rows.c.nc),
                     total(rows.c.ct)).group_by(*keys)


def wordings(where, keys: Iterable[str] | None = None, by_lang: bool = False):
    """Each group's wordings (key, [lang,] query, uses, max lang) among the rows ``where`` selects."""
    extra = [SearchLog.lang] if by_lang else []
    stmt = (sa.select(SearchLog.group_key, *extra, SearchLog.query, sa.func.count(SearchLog.id),
                      sa.func.max(SearchLog.lang)).where(where))
    if keys is not None:
        stmt = stmt.where(SearchLog.group_key.in_(sorted(keys)))
    return stmt.group_by(SearchLog.group_key, *extra, SearchLog.query)


def best_wording(candidates: dict[str, list]) -> tuple[str, str]:
    """The most used of ``{query: [uses, lang]}`` (ties: the shortest, then the first in order), and its language."""
    query = min(candidates, key=lambda q: (-candidates[q][0], len(q), q))
    return query, candidates[query][1]


def hour_expr(session: so.Session):
    """A search's UTC hour in the database's own dialect (a datetime, or YYYY-MM-DD HH text in SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.date_trunc("hour", SearchLog.created_at)
    return sa.func.strftime(HOUR_FORMAT, SearchLog.created_at)


def as_hour(value) -> datetime:
    """An hour as ``hour_expr`` returns it, as an aware UTC datetime."""
    when = value if isinstance(value, datetime) else datetime.strptime(value, HOUR_FORMAT)
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def hours(session: so.Session, where, by_lang: bool = False):
    """(hour, [lang,] searches, no_results) per UTC hour of the rows ``where`` selects."""
    hour = hour_expr(session).label("hour")
    extra = [SearchLog.lang] if by_lang else []
    return sa.select(hour, *extra, sa.func.count(SearchLog.id), flag(NO_RESULTS)).where(where).group_by(hour, *extra)
