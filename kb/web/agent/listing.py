"""Request-free queries behind the editor's article list: filters and pagination."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.models import Article, Vote

# The status filter's extra choice: published articles with unpublished changes waiting.
PENDING_FILTER = "pending"
# The columns the list can be ordered by (?sort=...&order=asc|desc), and each one's first direction.
SORTS = {"updated": True, "title": False, "views": True, "helpful": True}


@dataclass
class ArticleFilters:
    """What the article list is narrowed to; empty strings mean "any"."""

    status: str = ""
    lang: str = ""
    category: str = ""
    text: str = ""

    def params(self) -> dict[str, str]:
        """The non-empty filters as query-string arguments, for pagination links."""
        values = {"q": self.text, "status": self.status, "lang": self.lang, "category": self.category}
        return {name: value for name, value in values.items() if value}

    def apply(self, stmt: sa.Select) -> sa.Select:
        """Add the filters to a select over Article."""
        if self.status == PENDING_FILTER:
            stmt = stmt.where(Article.pending_revision.is_not(None))
        elif self.status:
            stmt = stmt.where(Article.status == self.status)
        if self.lang:
            stmt = stmt.where(Article.lang == self.lang)
        if self.category:
            stmt = stmt.where(Article.category == self.category)
        text = " ".join(self.text.split()).lower()
        if text:
            # Escape LIKE's wildcards so "100%" means the characters, not a pattern.
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            stmt = stmt.where(sa.or_(sa.func.lower(Article.title).like(pattern, escape="\\"),
                                     Article.slug.like(pattern, escape="\\")))
        return stmt


@dataclass
class ArticlePage:
    """One page of the filtered article list."""

    articles: list[Article]
    total: int
    page: int
    per_page: int
    pages: int = field(init=False)
    # (votes, helpful share or None) per article id of this page: every vote the article ever had.
    helpful: dict[int, tuple[int, float | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pages = max(1, math.ceil(self.total / self.per_page))


def _votes(ids: list[int] | None = None):
    """Votes and helpful votes per article (of ``ids`` only, when given: the index finds them), as a subquery."""
    yes = sa.func.sum(sa.case((Vote.helpful.is_(True), 1), else_=0))
    stmt = sa.select(Vote.article_id.label("aid"), sa.func.count().label("n"), yes.label("yes"))
    if ids is not None:
        stmt = stmt.where(Vote.article_id.in_(ids))
    return stmt.group_by(Vote.article_id).subquery("article_votes")


def _ordering(sort: str, descending: bool, votes) -> list:
    """ORDER BY for one of SORTS: articles without votes last when sorting by helpful, ties by id."""
    if sort == "title":
        column = sa.func.lower(Article.title)
    elif sort == "views":
        column = Article.views
    elif sort == "helpful":
        share = sa.cast(votes.c.yes, sa.Float) / sa.func.nullif(votes.c.n, 0)
        return [sa.case((share.is_(None), 1), else_=0), share.desc() if descending else share.asc(),
                votes.c.n.desc(), Article.id]
    else:
        column = Article.updated_at
    return [column.desc() if descending else column.asc(), Article.id.desc() if descending else Article.id]


def list_articles(session: so.Session, filters: ArticleFilters, *, page: int = 1, per_page: int = 25,
                  sort: str = "updated", descending: bool = True) -> ArticlePage:
    """Articles matching ``filters`` ordered by ``sort`` (SORTS; most recently updated first by default), one page."""
    total = session.scalar(filters.apply(sa.select(sa.func.count()).select_from(Article))) or 0
    page = min(max(1, page), max(1, math.ceil(total / per_page)))
    if sort == "helpful":  # every article's votes are needed to order by them
        votes = _votes()
        stmt = (filters.apply(sa.select(Article, votes.c.n, votes.c.yes)).outerjoin(votes, votes.c.aid == Article.id)
                .order_by(*_ordering(sort, descending, votes)))
        rows = session.execute(stmt.offset((page - 1) * per_page).limit(per_page)).all()
        articles, counts = [row[0] for row in rows], {row[0].id: (row.n, row.yes) for row in rows}
    else:  # order first, then count the votes of this page's articles only
        stmt = filters.apply(sa.select(Article)).order_by(*_ordering(sort if sort in SORTS else "updated", descending, None))
        articles = list(session.scalars(stmt.offset((page - 1) * per_page).limit(per_page)))
        votes = _votes([a.id for a in articles])
        counts = {aid: (n, yes) for aid, n, yes in session.execute(sa.select(votes.c.aid, votes.c.n, votes.c.yes))}
    found = ArticlePage(articles, total, page, per_page)
    found.helpful = {a.id: (int(n or 0), int(yes or 0) / int(n) if n else None)
                     for a in articles for n, yes in [counts.get(a.id, (0, 0))]}
    return found


def categories(session: so.Session) -> list[str]:
    """Every category in use, for the filter and the editor's suggestions."""
    stmt = sa.select(Article.category).where(Article.category != "").distinct().order_by(Article.category)
    return list(session.scalars(stmt))


def languages(session: so.Session, configured: list[str]) -> list[str]:
    """The configured languages, then any other language an article uses (e.g. imported)."""
    used = session.scalars(sa.select(Article.lang).distinct().order_by(Article.lang))
    return configured + [lang for lang in used if lang not in configured]
