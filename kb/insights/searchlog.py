"""Recording what portal visitors do: each search once, the result they opened, their day's visit, views per day.

Request-free: the portal passes the visitor's random cookie value (never an address). A search
typed letter by letter ("r", "re", "ref", "refund") is one search: within SEARCH_COLLAPSE_SECONDS a
query that extends or shortens the same visitor's previous one updates that row.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.insights.models import ArticleDay, PortalVisit
from kb.models import SearchLog, utcnow
from kb.search.analysis import group_for, terms

CONTACT_LOOKBACK = timedelta(hours=2)  # searches this recent count as "then used the contact form"
# Page 2 of a search is the same search: its clicks must land on the row page 1 wrote.
PAGE_REUSE = timedelta(hours=1)
MAX_QUERY = 500  # SearchLog.query's length
MAX_KEY = 200  # SearchLog.group_key's length
MAX_POSITION = 100_000  # a click position past any page kb shows is a forged link
# Searches and visits are written with Core statements on the session's transaction: the ORM's unit
# of work (objects, flushes, identity map) cost a portal search as much as the rest of its logging.
LOG, VISITS = SearchLog.__table__, PortalVisit.__table__


def normalise(query: str) -> str:
    """The query as compared for collapsing: case-folded, whitespace collapsed."""
    return " ".join(str(query or "").casefold().split())


def group_key(query: str, lang: str) -> str:
    """The query's stems in ``lang``'s analyzer, sorted and unique: "Refunds!" and "refund" share a key.

    A query of stop words or single letters only ("how do I", "r") keeps its own words, so such
    queries do not all fall into one empty group.
    """
    stems = sorted(set(terms(group_for(lang), str(query or "")[:MAX_QUERY])))
    key = " ".join(stems) or normalise(query)
    return key[:MAX_KEY].rstrip()


def _is_extension(before: str, after: str) -> bool:
    """Whether one query is the other typed further (or backspaced): one is a prefix of the other."""
    return bool(before and after) and (before.startswith(after) or after.startswith(before))


def _previous(session: so.Session, visitor: str, since: datetime):
    """(id, query, click_position) of the visitor's latest search touched since ``since``, or None."""
    return session.execute(sa.select(LOG.c.id, LOG.c.query, LOG.c.click_position)
                           .where(LOG.c.visitor == visitor, LOG.c.updated_at >= since)
                           .order_by(LOG.c.updated_at.desc(), LOG.c.id.desc()).limit(1)).first()


def log_search(session: so.Session, *, visitor: str | None, query: str, lang: str, results: int,
               settings: Mapping[str, Any], now: datetime | None = None, page: int = 1,
               new_visitor: bool = False) -> int:
    """Log a search once and return its row id: typing that extends the previous query updates its row.

    Only a visitor's own searches collapse (API searches without a visitor never do), and never
    into a search whose result was already opened. Page 2 and later of the same query reuse the
    search page 1 logged. A ``new_visitor`` (made by this request) has no earlier search to look
    for. The caller commits.
    """
    now = now or utcnow()
    visitor, text = str(visitor or "")[:64], str(query or "")[:MAX_QUERY]
    wanted = normalise(text)
    known = bool(visitor) and not new_visitor  # a new visitor has no search of theirs to reuse or collapse into
    if known and page > 1:
        before = _previous(session, visitor, now - PAGE_REUSE)
        if before is not None and normalise(before.query) == wanted:
            return before.id
    if known:
        window = timedelta(seconds=float(settings.get("SEARCH_COLLAPSE_SECONDS") or 0))
        before = _previous(session, visitor, now - window) if window else None
        if before is not None and before.click_position is None and _is_extension(normalise(before.query), wanted):
            session.execute(sa.update(LOG).where(LOG.c.id == before.id).values(
                query=text, lang=lang, results=results, group_key=group_key(text, lang), updated_at=now))
            return before.id
    return session.execute(sa.insert(LOG), row_values(text, lang, results, visitor, now)).inserted_primary_key[0]


def row_values(query: str, lang: str, results: int, visitor: str, now: datetime) -> dict[str, Any]:
    """The columns of a new search-log row (query and visitor already cut to their lengths)."""
    return {"query": query, "lang": lang, "results": int(results), "visitor": visitor,
            "group_key": group_key(query, lang), "created_at": now, "updated_at": now, "contacted": False}


def record_click(session: so.Session, *, search_id: int, visitor: str | None, article_id: int,
                 position: int) -> bool:
    """Note the result a visitor opened from their search (1 = top); only their first click counts.

    A compare-and-set: the row must be this visitor's and have no click yet, so a shared or
    replayed link, a second tab or a reload changes nothing. The caller commits (and turns bots away).
    """
    if not visitor or not 1 <= position <= MAX_POSITION:
        return False
    result = session.execute(sa.update(SearchLog).where(
        SearchLog.id == search_id, SearchLog.visitor == visitor, SearchLog.click_position.is_(None))
        .values(clicked_article_id=article_id, click_position=position).execution_options(synchronize_session=False))
    return result.rowcount == 1


def count_article_day(session: so.Session, article_id: int, day: date | None = None) -> None:
    """Add one view to the article's count for ``day`` (today in UTC): an upsert that two workers can race."""
    day = day or utcnow().date()
    if _add_view(session, article_id, day):
        return
    try:
        with session.begin_nested():  # two first views at once: the primary key decides, the loser adds
            session.add(ArticleDay(article_id=article_id, day=day, sample=False, views=1))
    except sa.exc.IntegrityError:
        _add_view(session, article_id, day)


def _add_view(session: so.Session, article_id: int, day: date) -> bool:
    """Raise an existing day's count by one; whether the row was there."""
    stmt = (sa.update(ArticleDay).where(ArticleDay.article_id == article_id, ArticleDay.day == day,
                                        ArticleDay.sample.is_(False))
            .values(views=ArticleDay.views + 1).execution_options(synchronize_session=False))
    return session.execute(stmt).rowcount == 1


def record_visit(session: so.Session, visitor: str | None, lang: str = "", *, searched: bool = False,
                 viewed: bool = False, contacted: bool = False, new_visitor: bool = False) -> None:
    """Note that this visitor searched, viewed an article or used the contact form today. The caller commits.

    A ``new_visitor`` (made by this request, so no other request can know it yet) has no row to
    look for or race for: its row is simply added.
    """
    if not visitor:
        return
    day = utcnow().date()
    flags = {name: True for name, on in (("searched", searched), ("viewed", viewed), ("contacted", contacted)) if on}
    new = {"visitor": visitor, "day": day, "lang": lang, **flags}  # the row, if this visitor has none today
    if new_visitor:
        session.execute(sa.insert(VISITS), new)
        return
    today = sa.select(VISITS.c.id, *(VISITS.c[name] for name in flags)).where(VISITS.c.visitor == visitor,
                                                                              VISITS.c.day == day)
    visit = session.execute(today).first()
    if visit is None:
        try:
            with session.begin_nested():  # two tabs at once: the unique (visitor, day) decides
                session.execute(sa.insert(VISITS), new)
            return
        except sa.exc.IntegrityError:
            visit = session.execute(today).first()
    unset = {name: True for name in flags if not getattr(visit, name)}
    if unset:  # a flag already set is not written again: a visit's later pages change nothing
        session.execute(sa.update(VISITS).where(VISITS.c.id == visit.id).values(unset))


def mark_contacted(session: so.Session, visitor: str | None) -> int:
    """Mark this visitor's recent searches (and today's visit) as followed by the contact form; how many searches."""
    if not visitor:
        return 0
    since = utcnow() - CONTACT_LOOKBACK
    result = session.execute(sa.update(SearchLog).where(
        SearchLog.visitor == visitor, SearchLog.created_at >= since, SearchLog.contacted.is_(False))
        .values(contacted=True).execution_options(synchronize_session=False))
    record_visit(session, visitor, contacted=True)
    return result.rowcount
