"""Recording what portal visitors do: each search once, the result they opened, their day's visit.

Request-free: the portal passes the visitor's random cookie value (never an address).
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.insights.models import PortalVisit
from kb.models import SearchLog, utcnow

CONTACT_LOOKBACK = timedelta(hours=2)  # searches this recent count as "then used the contact form"


def record_visit(session: so.Session, visitor: str | None, lang: str = "", *, searched: bool = False,
                 viewed: bool = False, contacted: bool = False) -> None:
    """Note that this visitor searched, viewed an article or used the contact form today. The caller commits."""
    if not visitor:
        return
    day = utcnow().date()
    flags = {name: True for name, on in (("searched", searched), ("viewed", viewed), ("contacted", contacted)) if on}
    visit = session.scalar(sa.select(PortalVisit).where(PortalVisit.visitor == visitor, PortalVisit.day == day))
    if visit is None:
        try:
            with session.begin_nested():  # two tabs at once: the unique (visitor, day) decides
                session.add(PortalVisit(visitor=visitor, day=day, lang=lang, **flags))
            return
        except sa.exc.IntegrityError:
            visit = session.scalar(sa.select(PortalVisit).where(PortalVisit.visitor == visitor, PortalVisit.day == day))
    for name in flags:
        setattr(visit, name, True)


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
