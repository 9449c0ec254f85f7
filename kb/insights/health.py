"""Article health: views, votes, helpful share, "No" reasons and the searches that led to each article.

Every figure is a SQL aggregate over the period (views from ArticleDay, votes from Vote, clicks from
SearchLog.clicked_article_id), joined to the articles in one statement and bounded by LIMIT.

An article is *flagged* when, counting only the votes cast **since it was last reviewed**
(Article.reviewed_at; all its votes if never), it has at least ARTICLE_FLAG_VOTES votes and fewer
than ARTICLE_FLAG_HELPFUL of them say helpful. So the flag does not depend on the period shown, and
"Mark as reviewed" after a fix clears it: the old votes no longer count. An article is *overdue*
when its review-by date has passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.followup.models import VOTE_REASONS
from kb.followup.sample_builder import PREFIX
from kb.insights.models import ArticleDay
from kb.insights.periods import Period
from kb.models import Agent, Article, SearchLog, Vote, utcnow

MAX_ROWS = 500  # articles per table: more is a page nobody reads (the CSV has the same rows)
MAX_COMMENTS = 50
MAX_ARTICLES = 5000  # articles one page view reads (by id): a help centre, not a library
CHART_ARTICLES = 10
# How the per-article table can be ordered (?sort=...), each with its natural direction first.
SORTS = ("views", "helpful", "votes", "searches", "title", "review_by")


@dataclass(frozen=True)
class ArticleHealth:
    """One article's figures for a period (and its flag, which counts the votes since its last review)."""

    article_id: int
    title: str
    slug: str
    lang: str
    views: int
    votes: int
    helpful_share: float | None
    flagged: bool  # enough votes since the last review, and too few helpful
    review_by: date | None
    overdue: bool  # review_by has passed
    helpful: int = 0
    searches: int = 0  # searches in the period whose visitor opened this article from the results
    reviewed_at: datetime | None = None
    author_id: int | None = None
    author: str = ""
    status: str = "published"
    flag_votes: int = 0  # votes since the last review
    flag_helpful: int = 0


def threshold(settings: Mapping[str, Any]) -> tuple[int, Fraction]:
    """(ARTICLE_FLAG_VOTES, ARTICLE_FLAG_HELPFUL as an exact fraction), so 59 of 100 is under 0.6 and 60 is not."""
    share = Fraction(str(settings["ARTICLE_FLAG_HELPFUL"])).limit_denominator(1_000_000)
    return int(settings["ARTICLE_FLAG_VOTES"]), share


def is_flagged(votes: int, helpful: int, settings: Mapping[str, Any]) -> bool:
    """Whether ``votes`` votes with ``helpful`` helpful ones flag an article."""
    minimum, share = threshold(settings)
    return votes >= minimum and helpful * share.denominator < votes * share.numerator


def _in_period(column, period: Period) -> list:
    return [column >= period.start, column < period.end]


def _helpful_sum(column=Vote.helpful):
    return sa.func.coalesce(sa.func.sum(sa.case((column.is_(True), 1), else_=0)), 0)


def _subqueries(period: Period, searches: bool = True):
    """Views, votes and clicks per article in the period, and votes since each article's last review.

    ``searches=False`` leaves the clicks out (zero): they are the costly part on a long search log,
    and the dashboard's list does not show them.
    """
    last_day = (period.end - timedelta(microseconds=1)).date()
    views = (sa.select(ArticleDay.article_id.label("aid"), sa.func.sum(ArticleDay.views).label("n"))
             .where(ArticleDay.day >= period.start.date(), ArticleDay.day <= last_day)
             .group_by(ArticleDay.article_id).subquery("views"))
    votes = (sa.select(Vote.article_id.label("aid"), sa.func.count().label("n"), _helpful_sum().label("yes"))
             .where(*_in_period(Vote.created_at, period)).group_by(Vote.article_id).subquery("votes"))
    clicks = (sa.select(SearchLog.clicked_article_id.label("aid"), sa.func.count().label("n"))
              .where(*_in_period(SearchLog.created_at, period), SearchLog.clicked_article_id.is_not(None),
                     sa.true() if searches else sa.false())
              .group_by(SearchLog.clicked_article_id).subquery("clicks"))
    return views, votes, clicks, since_review()


def since_review():
    """Votes per article cast after its last review (all of them if never reviewed): what the flag counts."""
    reviewed = so.aliased(Article)
    return (sa.select(Vote.article_id.label("aid"), sa.func.count().label("n"), _helpful_sum().label("yes"))
            .join(reviewed, reviewed.id == Vote.article_id)
            .where(sa.or_(reviewed.reviewed_at.is_(None), Vote.created_at > reviewed.reviewed_at))
            .group_by(Vote.article_id).subquery("since_review"))


def _flag_condition(flags, settings: Mapping[str, Any]):
    minimum, share = threshold(settings)
    votes, helpful = sa.func.coalesce(flags.c.n, 0), sa.func.coalesce(flags.c.yes, 0)
    return sa.and_(votes >= minimum, helpful * share.denominator < votes * share.numerator)


def _statement(period: Period, searches: bool = True):
    """Every figure of every article in one select; the caller adds where, order and limit."""
    views, votes, clicks, flags = _subqueries(period, searches)
    n_votes, n_yes = sa.func.coalesce(votes.c.n, 0), sa.func.coalesce(votes.c.yes, 0)
    stmt = (sa.select(Article.id, Article.title, Article.slug, Article.lang, Article.status, Article.review_by,
                      Article.reviewed_at, Article.author_id, Agent.name.label("author"),
                      sa.func.coalesce(views.c.n, 0).label("views"), n_votes.label("votes"),
                      n_yes.label("helpful"), sa.func.coalesce(clicks.c.n, 0).label("searches"),
                      sa.func.coalesce(flags.c.n, 0).label("flag_votes"),
                      sa.func.coalesce(flags.c.yes, 0).label("flag_helpful"))
            .outerjoin(Agent, Agent.id == Article.author_id)
            .outerjoin(views, views.c.aid == Article.id).outerjoin(votes, votes.c.aid == Article.id)
            .outerjoin(clicks, clicks.c.aid == Article.id).outerjoin(flags, flags.c.aid == Article.id))
    if period.lang:
        stmt = stmt.where(Article.lang == period.lang)
    share = sa.cast(n_yes, sa.Float) / sa.func.nullif(n_votes, 0)
    return stmt, {"views": views.c.n, "votes": n_votes, "helpful": share, "searches": clicks.c.n,
                  "title": sa.func.lower(Article.title), "review_by": Article.review_by}, flags


def _row(row, settings: Mapping[str, Any], today: date) -> ArticleHealth:
    return ArticleHealth(
        article_id=row.id, title=row.title, slug=row.slug, lang=row.lang, views=int(row.views), votes=int(row.votes),
        helpful_share=int(row.helpful) / int(row.votes) if row.votes else None,
        flagged=is_flagged(int(row.flag_votes), int(row.flag_helpful), settings), review_by=row.review_by,
        overdue=row.review_by is not None and row.review_by < today, helpful=int(row.helpful),
        searches=int(row.searches), reviewed_at=row.reviewed_at, author_id=row.author_id, author=row.author or "",
        status=row.status, flag_votes=int(row.flag_votes), flag_helpful=int(row.flag_helpful))


def _order(column, descending: bool) -> list:
    """NULLs (no votes, no date) last whichever way, on SQLite and PostgreSQL alike; ties by id."""
    return [sa.case((column.is_(None), 1), else_=0), column.desc() if descending else column.asc(), Article.id]


def article_table(session: so.Session, period: Period, settings: Mapping[str, Any], *, sort: str = "views",
                  descending: bool = True, limit: int = MAX_ROWS, now: datetime | None = None) -> list[ArticleHealth]:
    """The published articles' figures for the period, ordered by ``sort`` (one of SORTS)."""
    stmt, columns, _flags = _statement(period)
    column = columns.get(sort, columns["views"])
    stmt = stmt.where(Article.status == "published").order_by(*_order(column, descending)).limit(limit)
    today = (now or utcnow()).date()
    return [_row(row, settings, today) for row in session.execute(stmt)]


def flagged(session: so.Session, period: Period, settings: Mapping[str, Any], limit: int = MAX_ROWS,
            now: datetime | None = None) -> list[ArticleHealth]:
    """Flagged published articles, the least helpful (since their review) first."""
    stmt, _columns, flags = _statement(period)
    share = sa.cast(flags.c.yes, sa.Float) / sa.func.nullif(flags.c.n, 0)
    stmt = (stmt.where(Article.status == "published", _flag_condition(flags, settings))
            .order_by(share, flags.c.n.desc(), Article.id).limit(limit))
    today = (now or utcnow()).date()
    return [_row(row, settings, today) for row in session.execute(stmt)]


def overdue(session: so.Session, period: Period, settings: Mapping[str, Any], limit: int = MAX_ROWS,
            now: datetime | None = None) -> list[ArticleHealth]:
    """Articles not archived whose review-by date has passed, the longest overdue first."""
    today = (now or utcnow()).date()
    stmt, _columns, _flags = _statement(period)
    stmt = (stmt.where(Article.status != "archived", Article.review_by < today)
            .order_by(Article.review_by, Article.id).limit(limit))
    return [_row(row, settings, today) for row in session.execute(stmt)]


def _sort_key(sort: str, descending: bool):
    """A Python sort key equal to _order's: None last whichever way, then the value, then the id."""
    def key(a: ArticleHealth):
        value = {"views": a.views, "votes": a.votes, "helpful": a.helpful_share, "searches": a.searches,
                 "title": a.title.casefold(), "review_by": a.review_by}.get(sort, a.views)
        if value is None:
            return (1, 0, a.article_id)
        if descending:
            value = -value if isinstance(value, (int, float)) else _Reversed(value)
        return (0, value, a.article_id)
    return key


class _Reversed:
    """Orders a text or a date the other way round (for descending sorts of non-numbers)."""

    def __init__(self, value):
        self.value = value

    def __lt__(self, other: "_Reversed") -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and other.value == self.value


def page(session: so.Session, period: Period, settings: Mapping[str, Any], *, sort: str = "views",
         descending: bool = True, now: datetime | None = None) -> dict[str, list[ArticleHealth]]:
    """Every list of the articles page from one aggregate query (articles not archived, at most MAX_ARTICLES).

    "articles": the published ones ordered by ``sort``; "flagged" (least helpful since review first);
    "overdue" (longest overdue first); "most_viewed" (the chart's CHART_ARTICLES). Each at most MAX_ROWS.
    """
    stmt, _columns, _flags = _statement(period)
    today = (now or utcnow()).date()
    rows = [_row(row, settings, today) for row in session.execute(
        stmt.where(Article.status != "archived").order_by(Article.id).limit(MAX_ARTICLES))]
    published = [a for a in rows if a.status == "published"]
    flagged_rows = sorted((a for a in published if a.flagged),
                          key=lambda a: (a.flag_helpful / a.flag_votes, -a.flag_votes, a.article_id))
    return {"articles": sorted(published, key=_sort_key(sort, descending))[:MAX_ROWS],
            "flagged": flagged_rows[:MAX_ROWS],
            "overdue": sorted((a for a in rows if a.overdue), key=lambda a: (a.review_by, a.article_id))[:MAX_ROWS],
            "most_viewed": sorted(published, key=_sort_key("views", True))[:CHART_ARTICLES]}


def needing_attention(session: so.Session, period: Period, settings: Mapping[str, Any],
                      limit: int = 10) -> list[ArticleHealth]:
    """Flagged and overdue articles, worst first: flagged ones (least helpful first), then overdue ones.

    Their "searches" are left at 0 (the dashboard does not show them; counting them costs most).
    """
    today = utcnow().date()
    stmt, _columns, flags = _statement(period, searches=False)
    stmt = stmt.where(sa.or_(sa.and_(Article.status == "published", _flag_condition(flags, settings)),
                             sa.and_(Article.status != "archived", Article.review_by < today)))
    rows = [_row(row, settings, today) for row in session.execute(stmt.order_by(Article.id).limit(MAX_ARTICLES))]
    flagged_rows = sorted((a for a in rows if a.flagged and a.status == "published"),
                          key=lambda a: (a.flag_helpful / a.flag_votes, -a.flag_votes, a.article_id))
    seen = {a.article_id for a in flagged_rows}
    overdue_rows = sorted((a for a in rows if a.overdue and a.article_id not in seen),
                          key=lambda a: (a.review_by, a.article_id))
    return (flagged_rows + overdue_rows)[:limit]


def one(session: so.Session, article_id: int, period: Period, settings: Mapping[str, Any],
        now: datetime | None = None) -> ArticleHealth | None:
    """One article's figures (any status), or None if there is no such article."""
    stmt, _columns, _flags = _statement(Period(period.start, period.end, period.days))  # its own language
    row = session.execute(stmt.where(Article.id == article_id)).one_or_none()
    return _row(row, settings, (now or utcnow()).date()) if row is not None else None


def reasons(session: so.Session, article_id: int, period: Period) -> list[tuple[str, int]]:
    """How many "No" votes in the period gave each reason (VOTE_REASONS, then "" for none given)."""
    counts = dict(session.execute(
        sa.select(Vote.reason, sa.func.count()).where(Vote.article_id == article_id, Vote.helpful.is_(False),
                                                      *_in_period(Vote.created_at, period))
        .group_by(Vote.reason)).all())
    return [(reason, int(counts.get(reason, 0))) for reason in (*VOTE_REASONS, "")]


def comments(session: so.Session, article_id: int, period: Period, limit: int = MAX_COMMENTS) -> list[Vote]:
    """The period's latest votes with a comment (stored scrubbed; retention blanks old ones), newest first."""
    return list(session.scalars(
        sa.select(Vote).where(Vote.article_id == article_id, Vote.comment != "", *_in_period(Vote.created_at, period))
        .order_by(Vote.created_at.desc(), Vote.id.desc()).limit(limit)))


def flag_of(session: so.Session, article: Article, settings: Mapping[str, Any], *,
            real_only: bool = False) -> ArticleHealth | None:
    """The article's figures if it is flagged now (the editor's notice), else None.

    ``real_only`` leaves sample votes out (kb.followup.sample_builder.PREFIX): no author is
    emailed about an article that only sample data flags.
    """
    since = [Vote.created_at > article.reviewed_at] if article.reviewed_at is not None else []
    if real_only:
        since.append(sa.not_(Vote.visitor.startswith(PREFIX, autoescape=True)))
    row = session.execute(sa.select(sa.func.count().label("n"), _helpful_sum().label("yes"))
                          .where(Vote.article_id == article.id, *since)).one()
    if not is_flagged(int(row.n), int(row.yes), settings):
        return None
    return ArticleHealth(article.id, article.title, article.slug, article.lang, article.views, int(row.n),
                         int(row.yes) / int(row.n), True, article.review_by, False, helpful=int(row.yes),
                         flag_votes=int(row.n), flag_helpful=int(row.yes), reviewed_at=article.reviewed_at)
