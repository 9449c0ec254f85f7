"""The search report: what customers searched for, what found nothing, what they did not open.

Every figure sums the daily roll-up (kb.insights.rollup) over the whole UTC days of the period it
covers and aggregates the raw search_log rows in SQL only for the rest (the partial first and last
days, today, a day not rolled up yet), merged here (a few thousand groups at most, bounded), so a
page stays fast on a million rows. Near-identical searches count together through ``group_key``
(their stems); a group is ranked by how many customers it hit, then by its searches.

Customers are visitor-days: a visitor (the portal's random cookie value) counts once for each UTC
day and language they searched, so one who searches the same thing on two days counts twice. API
searches have no visitor: they count as searches, not customers. A group is shown in its most
frequent wording, counted as each rolled-up day's most frequent wording plus every raw one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Mapping
from zoneinfo import ZoneInfo

import sqlalchemy.orm as so

from kb.insights import rollup
from kb.insights import searchagg as agg
from kb.insights.periods import Period

TABLES = ("top", "no_results", "no_click")  # the report's tables, each a condition on a search


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


_COLUMNS = {name: n for n, name in enumerate(agg.COUNTS)}


def _table_counts(c: list[int], table: str) -> tuple[int, int, int, int, int]:
    """A table's (searches, visitors, no_results, no_click, contacted) of one group, in SearchGroup's order."""
    n = {name: c[i] for name, i in _COLUMNS.items()}
    if table == "top":
        return n["searches"], n["visitors"], n["no_results"], n["no_click"], n["contacted"]
    if table == "no_results":
        return n["no_results"], n["v_no_results"], n["no_results"], 0, n["ct_no_results"]
    if table == "no_click":
        return n["no_click"], n["v_no_click"], 0, n["no_click"], n["ct_no_click"]
    if table == "gaps":  # no result opened: no results, or results and no click
        return (n["no_results"] + n["no_click"], n["v_gaps"], n["no_results"], n["no_click"],
                n["ct_no_results"] + n["ct_no_click"])
    raise ValueError(f"unknown search table {table!r}: use one of {', '.join(TABLES)}")


def _group_counts(session: so.Session, period: Period, cover: rollup.Coverage) -> dict[str, list[int]]:
    """Every group's COUNTS over the period: the roll-up's days summed, plus the raw rows around them."""
    found: dict[str, list[int]] = {}
    raw = agg.per_key(agg.within(cover.raw, period.lang)).limit(rollup.MAX_GROUPS) if cover.raw else None
    for rows in (rollup.group_sums(session, cover, period.lang), session.execute(raw) if raw is not None else []):
        for key, *counts in rows:
            into = found.setdefault(key, [0] * len(agg.COUNTS))
            for i, n in enumerate(counts):
                into[i] += int(n or 0)
    return found


def _summary(session: so.Session, period: Period, cover: rollup.Coverage) -> SearchSummary:
    """The period's totals: the roll-up's days (of the language, or of all) plus the raw rows around them."""
    sums = rollup.total_sums(session, cover.runs, period.lang)
    if cover.raw:
        raw = session.execute(agg.totals(agg.within(cover.raw, period.lang))).one()
        sums = [a + int(b or 0) for a, b in zip(sums, raw)]
    return SearchSummary(*sums)


def _group(key: str, counts: tuple, wordings: dict[str, tuple[str, str]]) -> SearchGroup:
    """One row of a table, in its most frequent wording."""
    wording, lang = wordings.get(key, (key, ""))
    return SearchGroup(key, wording, *counts, lang=lang)


def report(session: so.Session, period: Period, tables=TABLES, limit: int = 20, *,
           totals: bool = True) -> tuple[dict[str, list[SearchGroup]], SearchSummary | None]:
    """The report's tables and totals of the period: per table, its groups, most visitors first.

    A table counts only its own searches: "no_results" the searches that found nothing, and so on.
    ``totals=False`` leaves out the summary.
    """
    for table in tables:
        _table_counts([0] * len(agg.COUNTS), table)  # an unknown table fails before any query
    limit = max(1, min(limit, 500))
    cover = rollup.coverage(session, period)
    counts = _group_counts(session, period, cover) if tables else {}
    ranked: dict[str, list[tuple[str, tuple]]] = {}
    for table in tables:
        rows = [(key, _table_counts(c, table)) for key, c in counts.items() if key]
        rows = [row for row in rows if row[1][0] > 0]
        rows.sort(key=lambda row: (-row[1][1], -row[1][0], row[0]))
        ranked[table] = rows[:limit]
    wordings = _wordings(session, period, cover, {key for rows in ranked.values() for key, _ in rows})
    found = {table: [_group(key, c, wordings) for key, c in rows] for table, rows in ranked.items()}
    return found, _summary(session, period, cover) if totals else None


def groups(session: so.Session, period: Period, table: str = "top", limit: int = 20) -> list[SearchGroup]:
    """One table of the report ("top", "no_results", "no_click" or "gaps"), most visitors first."""
    return report(session, period, (table,), limit, totals=False)[0][table]


def _wordings(session: so.Session, period: Period, cover: rollup.Coverage,
              keys: set[str]) -> dict[str, tuple[str, str]]:
    """For each key, its most frequent wording in the period (ties: the shortest) and that wording's language.

    Rolled-up days count each day's most frequent wording; the raw rows around them count every wording.
    """
    if not keys:
        return {}
    candidates: dict[str, dict[str, list]] = {}
    raw = session.execute(agg.wordings(agg.within(cover.raw, period.lang), keys)) if cover.raw else []
    for key, query, uses, lang in [*rollup.wording_sums(session, cover, period.lang, keys), *raw]:
        into = candidates.setdefault(key, {}).setdefault(query or "", [0, ""])
        into[0], into[1] = into[0] + int(uses), max(into[1], lang or "")
    best = {key: agg.best_wording(found) for key, found in candidates.items()}
    return {key: (query or key, lang) for key, (query, lang) in best.items()}


def top_gaps(session: so.Session, period: Period, limit: int = 10) -> list[SearchGroup]:
    """The period's failing searches (no results, or results and no click), most visitors first."""
    return groups(session, period, "gaps", limit)


def summary(session: so.Session, period: Period) -> SearchSummary:
    """The period's searches in all (every row, also those logged before group keys existed)."""
    return report(session, period, ())[1]


def per_day(session: so.Session, period: Period, settings: Mapping[str, Any]) -> list[SearchDay]:
    """Searches per day of the period in TIME_ZONE, with those that found nothing; every day, zeros too.

    Counted per UTC hour (the roll-up's hours, and the raw rows around them) and added up per
    local day here, which follows any zone with whole-hour offsets, daylight saving time included.
    """
    zone = str(settings.get("TIME_ZONE") or "UTC")
    tz = ZoneInfo(zone)
    cover = rollup.coverage(session, period)
    raw = session.execute(agg.hours(session, agg.within(cover.raw, period.lang))) if cover.raw else []
    days = {day: [0, 0] for day in period.day_list(zone)}
    for hour, searches, empty in [*rollup.hour_sums(session, cover.runs, period.lang), *raw]:
        local = agg.as_hour(hour).astimezone(tz).date()
        if local in days:
            days[local][0] += int(searches)
            days[local][1] += int(empty or 0)
    return [SearchDay(day, searches, empty) for day, (searches, empty) in days.items()]
