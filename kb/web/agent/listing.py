"""Request-free queries behind the editor's article list: filters and pagination."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.models import Article

# The status filter's extra choice: published articles with unpublished changes waiting.
PENDING_FILTER = "pending"


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

    def __post_init__(self) -> None:
        self.pages = max(1, math.ceil(self.total / self.per_page))


def list_articles(session: so.Session, filters: ArticleFilters, *, page: int = 1, per_page: int = 25) -> ArticlePage:
    """Articles matching ``filters``, most recently updated first, one page at a time."""
    total = session.scalar(filters.apply(sa.select(sa.func.count()).select_from(Article))) or 0
    page = min(max(1, page), max(1, math.ceil(total / per_page)))
    stmt = filters.apply(sa.select(Article)).order_by(Article.updated_at.desc(), Article.id.desc())
    rows = session.scalars(stmt.offset((page - 1) * per_page).limit(per_page))
    return ArticlePage(list(rows), total, page, per_page)


def categories(session: so.Session) -> list[str]:
    """Every category in use, for the filter and the editor's suggestions."""
    stmt = sa.select(Article.category).where(Article.category != "").distinct().order_by(Article.category)
    return list(session.scalars(stmt))


def languages(session: so.Session, configured: list[str]) -> list[str]:
    """The configured languages, then any other language an article uses (e.g. imported)."""
    used = session.scalars(sa.select(Article.lang).distinct().order_by(Article.lang))
    return configured + [lang for lang in used if lang not in configured]
