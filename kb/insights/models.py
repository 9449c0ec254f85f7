"""What the insights pages count, beside the tables they read (search_log, mail_records, votes).

Columns added to existing tables by migration 0012_insights: search_log (visitor, updated_at,
group_key, clicked_article_id, click_position, contacted), mail_records (channel, outcome,
outcome_at, category) and articles (review_by, reviewed_at). Sample rows are marked as
everywhere else: a visitor or dedupe key starting with kb.followup.sample_builder.PREFIX, or
``sample`` where a table has no such column.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.models import CHANNELS, OUTCOMES  # noqa: F401 (named here for the insights code)
from kb.models import Base, UTCDateTime, utcnow

# CHANNELS: how a question reached kb: the support mailbox, or the portal's /contact form.
# OUTCOMES: what became of an answer kb gave (an auto-reply, or an answer shown on the contact form):
# confirmed: the customer said it solved the question; assumed: no further contact within
# KB_ASSUMED_RESOLVED_HOURS; reopened: they wrote again within REOPEN_DAYS or said they still
# need help. NULL: no answer was given, or the waiting time has not passed yet.
REOPEN_DAYS = 7


class PortalVisit(Base):
    """One browser session's day on the portal: did it search, read an article, use the contact form.

    ``visitor`` is the random value of the portal's visitor cookie (never an address); the
    retention job blanks it (NULL) and keeps the row, so the self-service score keeps its counts.
    """

    __tablename__ = "portal_visits"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    visitor: so.Mapped[Optional[str]] = so.mapped_column(sa.String(64))
    day: so.Mapped[date] = so.mapped_column(index=True)
    lang: so.Mapped[str] = so.mapped_column(sa.String(16), default="")
    searched: so.Mapped[bool] = so.mapped_column(default=False)
    viewed: so.Mapped[bool] = so.mapped_column(default=False)
    contacted: so.Mapped[bool] = so.mapped_column(default=False)
    sample: so.Mapped[bool] = so.mapped_column(default=False)

    __table_args__ = (sa.UniqueConstraint("visitor", "day", name="uq_portal_visits_visitor_day"),)


class ArticleDay(Base):
    """Counted views of one article on one day (Article.views is the all-time total)."""

    __tablename__ = "article_days"
    article_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("articles.id", ondelete="CASCADE"),
                                                  primary_key=True)
    day: so.Mapped[date] = so.mapped_column(primary_key=True, index=True)
    sample: so.Mapped[bool] = so.mapped_column(primary_key=True, default=False)
    views: so.Mapped[int] = so.mapped_column(default=0)

    # the period's views of every article, read from the index alone
    __table_args__ = (sa.Index("ix_article_days_day_article", "day", "article_id", "views"),)


class RateCount(Base):
    """How many times one key (a keyed hash of an address or a client) did something in a window.

    Used by the contact form's per-address and per-client limits; shared by every worker and
    host, like kb.throttle's login counts.
    """

    __tablename__ = "rate_counts"
    key: so.Mapped[str] = so.mapped_column(sa.String(64), primary_key=True)
    window_start: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    count: so.Mapped[int] = so.mapped_column(default=0)


class SearchRollup(Base):
    """One UTC day's (or month's) searches of one group in one language, counted from search_log (a cache: kb.insights.rollup).

    Visitors are visitor-days (distinct visitors that day). ``wording`` is the day's most frequent
    wording and ``wording_count`` its searches; past the retention period they and ``group_key`` are
    blanked and the counts stay (they then count in the totals only, as blanked search_log rows do).
    """

    __tablename__ = "search_rollup"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    day: so.Mapped[date] = so.mapped_column()
    # 1: the row counts the day; more: the whole month starting at ``day`` (the sum of its day rows)
    span: so.Mapped[int] = so.mapped_column(default=1)
    lang: so.Mapped[str] = so.mapped_column(sa.String(16), default="")
    group_key: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    searches: so.Mapped[int] = so.mapped_column(default=0)
    visitors: so.Mapped[int] = so.mapped_column(default=0)
    no_results: so.Mapped[int] = so.mapped_column(default=0)
    v_no_results: so.Mapped[int] = so.mapped_column(default=0)  # visitors with a search that found nothing
    no_click: so.Mapped[int] = so.mapped_column(default=0)
    v_no_click: so.Mapped[int] = so.mapped_column(default=0)
    v_gaps: so.Mapped[int] = so.mapped_column(default=0)  # visitors with either
    contacted: so.Mapped[int] = so.mapped_column(default=0)
    ct_no_results: so.Mapped[int] = so.mapped_column(default=0)
    ct_no_click: so.Mapped[int] = so.mapped_column(default=0)
    wording: so.Mapped[str] = so.mapped_column(sa.String(500), default="")
    wording_count: so.Mapped[int] = so.mapped_column(default=0)

    __table_args__ = (sa.Index("ix_search_rollup_day_key", "day", "group_key"),)


class SearchRollupDay(Base):
    """One UTC day's searches in one language ("" = every language: the mark that the day is rolled up)."""

    __tablename__ = "search_rollup_days"
    day: so.Mapped[date] = so.mapped_column(primary_key=True)
    lang: so.Mapped[str] = so.mapped_column(sa.String(16), primary_key=True, default="")
    searches: so.Mapped[int] = so.mapped_column(default=0)
    visitors: so.Mapped[int] = so.mapped_column(default=0)
    no_results: so.Mapped[int] = so.mapped_column(default=0)
    no_click: so.Mapped[int] = so.mapped_column(default=0)
    contacted: so.Mapped[int] = so.mapped_column(default=0)


class SearchRollupHour(Base):
    """One UTC hour's searches in one language and those that found nothing (the per-day chart in TIME_ZONE)."""

    __tablename__ = "search_rollup_hours"
    hour: so.Mapped[datetime] = so.mapped_column(UTCDateTime, primary_key=True)
    lang: so.Mapped[str] = so.mapped_column(sa.String(16), primary_key=True, default="")
    searches: so.Mapped[int] = so.mapped_column(default=0)
    no_results: so.Mapped[int] = so.mapped_column(default=0)
