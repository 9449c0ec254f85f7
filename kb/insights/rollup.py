"""The daily roll-up of the search log: a cache the search report sums instead of a period's raw rows.

search_log stays the source of truth. A daily job (``insights.search_rollup``, one of kb.jobs'
recurring kinds) counts each finished UTC day once it is over by SETTLE (clicks and the contact
form still mark a search for CONTACT_LOOKBACK after it), oldest first, at most MAX_DAYS a run,
each day in its own transaction: delete the day's roll-up rows, insert them from one GROUP BY over
the day's raw rows. Per day: one row per (language, group) in ``search_rollup``, the day's totals
per language and for every language ("", the mark that the day is rolled up) in
``search_rollup_days``, and the searches per UTC hour in ``search_rollup_hours``. Once every day
of a month is rolled up, its group rows are also summed into month rows (``span`` = its days), so
a year's report sums about twelve rows per group instead of 365.

The report (kb.insights.searches) sums the rolled-up days inside its period and reads the raw rows
only for the rest (the partial first and last days, today, a day not rolled up yet). Customers
are visitor-days either way: a visitor counts once for each UTC day (and language) they searched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable, Iterable

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask

from kb import jobs
from kb.insights import searchagg as agg
from kb.insights.models import SearchRollup, SearchRollupDay, SearchRollupHour
from kb.insights.periods import Period
from kb.insights.searchlog import CONTACT_LOOKBACK
from kb.models import SearchLog, utcnow

KIND = "insights.search_rollup"
SETTLE = CONTACT_LOOKBACK + timedelta(hours=1)  # a day is rolled up this long after it ends
MAX_DAYS = 400  # days one run rolls up (a year's backlog at most; the next run goes on)
MAX_GROUPS = 20_000  # groups one part of a report reads (a busy shop has a few thousand)
DAY = timedelta(days=1)
_TABLES = (SearchRollup, SearchRollupDay, SearchRollupHour)


def day_start(day: date) -> datetime:
    """The UTC day's first moment (aware)."""
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def _day_rows(session: so.Session, day: date) -> tuple[list[dict], list[dict], list[dict]]:
    """The day's roll-up rows (groups, totals, hours), counted from its raw rows."""
    where = agg.within([(day_start(day), day_start(day) + DAY)])
    top: dict[tuple[str, str], tuple[str, int]] = {}
    for key, lang, query, uses, _ in session.execute(agg.wordings(where, by_lang=True)):
        best = top.get((key, lang))
        if best is None or (-uses, len(query), query) < (-best[1], len(best[0]), best[0]):
            top[(key, lang)] = (query, int(uses))
    groups = []
    for key, lang, *counts in session.execute(agg.per_key(where, by_lang=True)):
        wording, uses = top.get((key, lang), ("", 0)) if key else ("", 0)
        groups.append({"day": day, "lang": lang, "group_key": key, "wording": wording, "wording_count": uses,
                       **{name: int(n or 0) for name, n in zip(agg.COUNTS, counts)}})
    names = ("searches", "visitors", "no_results", "no_click", "contacted")
    totals = [{"day": day, "lang": lang, **dict(zip(names, map(int, counts)))}
              for lang, *counts in session.execute(agg.totals(where, by_lang=True))]
    everything = session.execute(agg.totals(where)).one()
    totals.append({"day": day, "lang": "", **dict(zip(names, (int(n or 0) for n in everything)))})
    hours = [{"hour": agg.as_hour(hour), "lang": lang, "searches": int(n), "no_results": int(empty or 0)}
             for hour, lang, n, empty in session.execute(agg.hours(session, where, by_lang=True))]
    return groups, totals, hours


def build_day(session: so.Session, day: date) -> int:
    """Roll up one UTC day again from its raw rows, and its month once every day of it is (the caller commits)."""
    forget_days(session, [day])
    groups, totals, hours = _day_rows(session, day)
    for model, rows in ((SearchRollup, groups), (SearchRollupDay, totals), (SearchRollupHour, hours)):
        if rows:
            session.execute(sa.insert(model.__table__), rows)
    _build_month(session, month_start(day))
    return len(groups)


def month_start(day: date) -> date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def next_month(first: date) -> date:
    """The first day of the month after the one ``first`` starts."""
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def _build_month(session: so.Session, first: date) -> None:
    """Sum a month's day rows into month rows (span = its days) once all its days are rolled up.

    A year's report then sums about twelve rows per group instead of 365 (a few hundred thousand rows).
    """
    after, r = next_month(first), SearchRollup
    if len(rolled_days(session, first, after - DAY)) < (after - first).days:
        return
    in_month = (r.span == 1, r.day >= first, r.day < after)
    top: dict[tuple[str, str], tuple[str, int]] = {}
    for key, lang, wording, uses in session.execute(sa.select(r.group_key, r.lang, r.wording, sa.func.sum(
            r.wording_count)).where(*in_month, r.wording != "").group_by(r.group_key, r.lang, r.wording)):
        best = top.get((key, lang))
        if best is None or (-uses, len(wording), wording) < (-best[1], len(best[0]), best[0]):
            top[(key, lang)] = (wording, int(uses))
    rows = [{"day": first, "span": (after - first).days, "lang": lang, "group_key": key,
             **dict(zip(agg.COUNTS, map(int, counts))),
             **dict(zip(("wording", "wording_count"), top.get((key, lang), ("", 0))))}
            for key, lang, *counts in session.execute(sa.select(r.group_key, r.lang, *(
                sa.func.sum(getattr(r, name)) for name in agg.COUNTS)).where(*in_month).group_by(r.group_key, r.lang))]
    if rows:
        session.execute(sa.insert(SearchRollup.__table__), rows)


def forget_days(session: so.Session, days: Iterable[date]) -> None:
    """Delete the roll-up of these days (the job counts them again from the raw rows); the caller commits."""
    days = sorted(set(days))
    months = sorted({month_start(day) for day in days})
    session.execute(sa.delete(SearchRollup).where(SearchRollup.span > 1, SearchRollup.day.in_(months)))
    for n in range(0, len(days), 500):
        chunk = days[n:n + 500]
        session.execute(sa.delete(SearchRollup).where(SearchRollup.span == 1, SearchRollup.day.in_(chunk)))
        session.execute(sa.delete(SearchRollupDay).where(SearchRollupDay.day.in_(chunk)))
        hours = sa.or_(*(sa.and_(SearchRollupHour.hour >= day_start(d), SearchRollupHour.hour < day_start(d) + DAY)
                         for d in chunk))
        session.execute(sa.delete(SearchRollupHour).where(hours))


def rolled_days(session: so.Session, first: date, last: date) -> list[date]:
    """The rolled-up days from ``first`` to ``last``, oldest first."""
    return list(session.scalars(sa.select(SearchRollupDay.day).where(
        SearchRollupDay.lang == "", SearchRollupDay.day >= first, SearchRollupDay.day <= last)
        .order_by(SearchRollupDay.day)))


def pending(session: so.Session, now: datetime | None = None, limit: int = MAX_DAYS) -> list[date]:
    """The finished days (over by SETTLE) not rolled up yet, from the first search on, oldest first."""
    now = now or utcnow()
    first = session.scalar(sa.select(sa.func.min(SearchLog.created_at)))
    if first is None:
        return []
    first_day, last_day = first.date(), (now - SETTLE).date() - DAY
    done = set(rolled_days(session, first_day, last_day))
    days = (first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1))
    return [day for day in days if day not in done][:limit]


def roll_up(session: so.Session, now: datetime | None = None, limit: int = MAX_DAYS,
            between: Callable[[], None] | None = None) -> list[date]:
    """Roll up every finished day not rolled up yet, oldest first, up to ``limit``: one commit per day.

    Calls ``between`` after each day (a job renews its lease: a year's backlog takes about a minute).
    """
    days = pending(session, now, limit)
    for day in days:
        build_day(session, day)
        session.commit()
        if between is not None:
            between()
    return days


def blank_before(session: so.Session, day: date, since: date | None = None) -> int:
    """Blank the wording and group of roll-up rows before ``day`` (retention); the counts stay. How many.

    ``since``: rows before it were blanked by an earlier run (index day, group_key), None: every row.
    """
    r = SearchRollup
    past = sa.or_(sa.and_(r.span == 1, r.day < day), sa.and_(r.span > 1, r.day < month_start(day)))  # whole months
    stmt = sa.update(r).where(past, sa.or_(r.wording != "", r.group_key != ""))
    stmt = stmt.where(r.day >= month_start(since)) if since is not None else stmt
    return session.execute(stmt.values(wording="", group_key="").execution_options(synchronize_session=False)).rowcount


@dataclass(frozen=True)
class Coverage:
    """A period split into rolled-up days (as [first, last] runs) and the raw intervals around them.

    ``months``: the whole months among the runs (their month rows are read), ``days``: the runs'
    other days (their day rows are read).
    """

    runs: list[tuple[date, date]]
    raw: list[tuple[datetime, datetime]]
    months: list[date] = field(default_factory=list)
    days: list[tuple[date, date]] = field(default_factory=list)


def _runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Days (oldest first) as runs of consecutive days."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] + DAY == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def coverage(session: so.Session, period: Period) -> Coverage:
    """Which whole UTC days of the period the roll-up covers, and which moments need the raw rows."""
    start, end = period.start.astimezone(timezone.utc), period.end.astimezone(timezone.utc)
    first = start.date() if start == day_start(start.date()) else start.date() + DAY
    last = end.date() - DAY
    rolled = rolled_days(session, first, last) if first <= last else []
    runs = _runs(rolled)
    months = []
    for a, b in runs:
        month = a if a.day == 1 else next_month(month_start(a))
        while next_month(month) - DAY <= b:
            months.append(month)
            month = next_month(month)
    whole = set(months)
    raw, moment = [], start
    for a, b in runs:
        if day_start(a) > moment:
            raw.append((moment, day_start(a)))
        moment = day_start(b) + DAY
    if moment < end:
        raw.append((moment, end))
    return Coverage(runs, raw, months, _runs(day for day in rolled if month_start(day) not in whole))


def _on_days(column, runs: list[tuple[date, date]]):
    """``column`` (a day) in any of the runs."""
    return sa.or_(*(column.between(a, b) for a, b in runs)) if runs else sa.false()


def _rows_of(cover: Coverage):
    """The roll-up rows that count the covered days: the whole months' rows and the other days' rows."""
    r = SearchRollup
    months = sa.and_(r.span > 1, r.day.in_(cover.months)) if cover.months else sa.false()
    return sa.or_(months, sa.and_(r.span == 1, _on_days(r.day, cover.days)))


def group_sums(session: so.Session, cover: Coverage, lang: str = ""):
    """(key, COUNTS...) of every group summed over the covered days (at most MAX_GROUPS groups)."""
    if not cover.runs:
        return []
    r = SearchRollup
    stmt = sa.select(r.group_key, *(sa.func.sum(getattr(r, name)) for name in agg.COUNTS)).where(_rows_of(cover))
    stmt = stmt.where(r.lang == lang) if lang else stmt
    return session.execute(stmt.group_by(r.group_key).limit(MAX_GROUPS)).all()


def wording_sums(session: so.Session, cover: Coverage, lang: str, keys: set[str]):
    """(key, wording, searches, language) of the days' (and months') top wordings of these groups."""
    if not cover.runs or not keys:
        return []
    r = SearchRollup
    stmt = (sa.select(r.group_key, r.wording, sa.func.sum(r.wording_count), sa.func.max(r.lang))
            .where(_rows_of(cover), r.group_key.in_(sorted(keys)), r.wording != ""))
    stmt = stmt.where(r.lang == lang) if lang else stmt
    return session.execute(stmt.group_by(r.group_key, r.wording)).all()


def total_sums(session: so.Session, runs: list[tuple[date, date]], lang: str = "") -> list[int]:
    """(searches, visitor-days, no_results, no_click, contacted) over the runs' days."""
    d = SearchRollupDay
    if not runs:
        return [0] * 5
    row = session.execute(sa.select(*(sa.func.coalesce(sa.func.sum(getattr(d, n)), 0) for n in (
        "searches", "visitors", "no_results", "no_click", "contacted"))).where(_on_days(d.day, runs), d.lang == lang)).one()
    return [int(n) for n in row]


def hour_sums(session: so.Session, runs: list[tuple[date, date]], lang: str = ""):
    """(hour, searches, no_results) per UTC hour of the runs' days."""
    if not runs:
        return []
    h = SearchRollupHour
    spans = sa.or_(*(sa.and_(h.hour >= day_start(a), h.hour < day_start(b) + DAY) for a, b in runs))
    stmt = sa.select(h.hour, sa.func.sum(h.searches), sa.func.sum(h.no_results)).where(spans)
    stmt = stmt.where(h.lang == lang) if lang else stmt
    return session.execute(stmt.group_by(h.hour)).all()


@jobs.handler(KIND)
def _run(ctx) -> None:
    """Roll up the finished days; come back when today's last one has settled, or for the rest of a backlog."""
    now = utcnow()
    done = roll_up(ctx.session, now, between=ctx.hold)
    ready = day_start(now.date()) + SETTLE
    if len(done) >= MAX_DAYS:
        jobs.schedule(ctx.session, KIND, f"more:{now.isoformat()}", run_at=now)
    elif now < ready:  # the daily run came before yesterday settled: once more when it has
        jobs.schedule(ctx.session, KIND, f"settled:{now.date().isoformat()}", run_at=ready)


def init_app(app: Flask) -> None:
    """Make the roll-up a daily job of every runner."""
    jobs.daily(KIND)
