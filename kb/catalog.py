"""What the portal's home page lists: categories, popular articles, the sitemap.

Plain functions over a session, so the portal, the API and any later report share them.
Only published articles ever appear here.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb import visitors
from kb.articles import slugify
from kb.models import Article, Vote

# Native names for the language switch; an unknown code shows as itself.
LANGUAGE_NAMES = {"en": "English", "zh": "中文", "nb": "Norsk"}


class Category(NamedTuple):
    """A category as the portal shows it: its name, URL slug and number of articles."""

    name: str
    slug: str
    count: int


class SitemapEntry(NamedTuple):
    """One page for the sitemap: kind is "home", "category" or "article"."""

    kind: str
    slug: str
    lastmod: datetime | None


def language_name(code: str) -> str:
    """The language's own name for its code (English, 中文, Norsk)."""
    return LANGUAGE_NAMES.get(code, code)


def category_slug(name: str) -> str:
    """A URL slug for a category name; non-Latin names keep their letters."""
    return slugify(name) or re.sub(r"[\W_]+", "-", name.lower()).strip("-")


def _published(stmt: sa.Select, lang: str | None) -> sa.Select:
    """Restrict a query on Article to published articles, optionally of one language."""
    stmt = stmt.where(Article.status == "published")
    return stmt.where(Article.lang == lang) if lang else stmt


def categories(session: so.Session, lang: str | None = None) -> list[Category]:
    """Categories that have published articles (in ``lang`` if given), with their counts."""
    stmt = _published(sa.select(Article.category, sa.func.count(Article.id)), lang)
    stmt = stmt.where(Article.category != "").group_by(Article.category).order_by(Article.category)
    return [Category(name, category_slug(name), count) for name, count in session.execute(stmt)]


def category_by_slug(session: so.Session, slug: str) -> str | None:
    """The name of the category whose slug is ``slug``, or None."""
    for category in categories(session):
        if category.slug == slug:
            return category.name
    return None


def most_viewed(session: so.Session, lang: str | None = None, limit: int = 5) -> list[Article]:
    """The published articles read most often, most read first (articles never read are left out)."""
    stmt = _published(sa.select(Article), lang).where(Article.views > 0)
    return list(session.scalars(stmt.order_by(Article.views.desc(), Article.title).limit(limit)))


def most_helpful(session: so.Session, lang: str | None = None, limit: int = 5) -> list[Article]:
    """Published articles with the most "helpful" votes, ties broken by the share of yes votes."""
    yes = sa.func.sum(sa.case((Vote.helpful.is_(True), 1), else_=0))
    stmt = (_published(sa.select(Article), lang).join(Vote, Vote.article_id == Article.id)
            .group_by(Article.id).having(yes > 0)
            .order_by(yes.desc(), (yes * 1.0 / sa.func.count(Vote.id)).desc(), Article.title)
            .limit(limit))
    return list(session.scalars(stmt))


def record_view(session: so.Session, article: Article) -> None:
    """Count one more view of the article, atomically in SQL so parallel requests don't lose any."""
    session.execute(sa.update(Article).where(Article.id == article.id)
                    .values(views=Article.views + 1)
                    .execution_options(synchronize_session=False))


def count_view(session: so.Session, article: Article, *, visitor: str, client: str, limit: int) -> bool:
    """Count a person's view: once per visitor session a day, ``limit`` times per client a day.

    ``visitor`` and ``client`` are keys from kb.visitors (never an address). The caller has
    already turned away obvious automation and commits. Returns whether the view counted.
    """
    if not visitors.claim(session, "view-session", article.id, visitor, 1):
        return False
    if not visitors.claim(session, "view", article.id, client, limit):
        return False
    record_view(session, article)
    return True


def sitemap_entries(session: so.Session) -> list[SitemapEntry]:
    """Every public page: home, each category and each published article, with last change."""
    newest = session.scalar(_published(sa.select(sa.func.max(Article.updated_at)), None))
    entries = [SitemapEntry("home", "", newest)]
    stmt = _published(sa.select(Article.category, sa.func.max(Article.updated_at)), None)
    stmt = stmt.where(Article.category != "").group_by(Article.category).order_by(Article.category)
    seen: set[str] = set()
    for name, lastmod in session.execute(stmt):
        slug = category_slug(name)
        if slug and slug not in seen:
            seen.add(slug)
            entries.append(SitemapEntry("category", slug, lastmod))
    rows = session.execute(_published(sa.select(Article.slug, Article.updated_at), None).order_by(Article.slug))
    entries.extend(SitemapEntry("article", slug, updated) for slug, updated in rows)
    return entries
