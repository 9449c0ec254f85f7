"""What the portal's pages list: categories, popular and recent articles, the sitemap.

Plain functions over a session, so the portal, the API and any later report share them.
Only published articles ever appear here. Lists for a visitor come in their language first,
filled up from other languages only when it has too few.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import partial
from typing import Callable, NamedTuple

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb import visitors
from kb.articles import slugify
from kb.models import Article, Vote

ArticleFetch = Callable[..., list[Article]]


class Category(NamedTuple):
    """A category as the portal shows it: its name, URL slug and number of articles."""

    name: str
    slug: str
    count: int


class Topic(NamedTuple):
    """A category for one language's home page: its articles in that language and in others."""

    name: str
    slug: str
    count: int
    others: int


class HomeLists(NamedTuple):
    """The home page's lists; ``recent`` stands in for ``most_viewed`` until articles are read."""

    most_viewed: list[Article]
    recent: list[Article]
    most_helpful: list[Article]


class SitemapEntry(NamedTuple):
    """One page for the sitemap: kind is "home", "category" or "article"; lang None is every language."""

    kind: str
    slug: str
    lang: str | None
    lastmod: datetime | None


def category_slug(name: str) -> str:
    """A URL slug for a category name; non-Latin names keep their letters."""
    return slugify(name) or re.sub(r"[\W_]+", "-", name.lower()).strip("-")


def _published(stmt: sa.Select, lang: str | None, other_than: str | None = None) -> sa.Select:
    """Restrict a query on Article to published articles, optionally of one language (or not of one)."""
    stmt = stmt.where(Article.status == "published")
    if other_than:
        stmt = stmt.where(Article.lang != other_than)
    return stmt.where(Article.lang == lang) if lang else stmt


def categories(session: so.Session, lang: str | None = None) -> list[Category]:
    """Categories that have published articles (in ``lang`` if given), with their counts."""
    stmt = _published(sa.select(Article.category, sa.func.count(Article.id)), lang)
    stmt = stmt.where(Article.category != "").group_by(Article.category).order_by(Article.category)
    return [Category(name, category_slug(name), count) for name, count in session.execute(stmt)]


def topics(session: so.Session, lang: str) -> list[Topic]:
    """Every category with published articles: those with articles in ``lang`` first, by name."""
    stmt = _published(sa.select(Article.category, Article.lang, sa.func.count(Article.id)), None)
    stmt = stmt.where(Article.category != "").group_by(Article.category, Article.lang)
    counts: dict[str, list[int]] = {}
    for name, article_lang, count in session.execute(stmt):
        counts.setdefault(name, [0, 0])[0 if article_lang == lang else 1] += count
    found = [Topic(name, category_slug(name), mine, others) for name, (mine, others) in counts.items()]
    return sorted(found, key=lambda topic: (topic.count == 0, topic.name.casefold()))


def category_by_slug(session: so.Session, slug: str) -> str | None:
    """The name of the category whose slug is ``slug``, or None."""
    for category in categories(session):
        if category.slug == slug:
            return category.name
    return None


def category_articles(session: so.Session, name: str, lang: str) -> list[Article]:
    """The published articles of one category, those in ``lang`` first, each group by title."""
    stmt = _published(sa.select(Article), None).where(Article.category == name)
    return sorted(session.scalars(stmt), key=lambda a: (a.lang != lang, a.title.casefold()))


def most_viewed(session: so.Session, lang: str | None = None, limit: int = 5, *,
                other_than: str | None = None) -> list[Article]:
    """The published articles read most often, most read first (articles never read are left out)."""
    stmt = _published(sa.select(Article), lang, other_than).where(Article.views > 0)
    return list(session.scalars(stmt.order_by(Article.views.desc(), Article.title).limit(limit)))


def recently_updated(session: so.Session, lang: str | None = None, limit: int = 5, *,
                     other_than: str | None = None) -> list[Article]:
    """The published articles changed last, newest first (ties: the newest article first, in the index's order)."""
    stmt = _published(sa.select(Article), lang, other_than)
    return list(session.scalars(stmt.order_by(Article.updated_at.desc(), Article.id.desc()).limit(limit)))


def most_helpful(session: so.Session, lang: str | None = None, limit: int = 5, *,
                 other_than: str | None = None) -> list[Article]:
    """Published articles with the most "helpful" votes, ties broken by the share of yes votes."""
    # The votes are counted first (from their covering index), then joined: grouping the joined
    # rows walked every published article (10 ms a list at 10,000).
    yes = sa.func.sum(sa.case((Vote.helpful.is_(True), 1), else_=0))
    tally = (sa.select(Vote.article_id, yes.label("yes"), sa.func.count(Vote.id).label("votes"))
             .group_by(Vote.article_id).having(yes > 0).subquery())
    stmt = (_published(sa.select(Article).join(tally, tally.c.article_id == Article.id), lang, other_than)
            .order_by(tally.c.yes.desc(), (tally.c.yes * 1.0 / tally.c.votes).desc(), Article.title)
            .limit(limit))
    return list(session.scalars(stmt))


def language_first(fetch: ArticleFetch, lang: str, limit: int) -> list[Article]:
    """``fetch``'s articles in ``lang``, filled up to ``limit`` from other languages."""
    found = fetch(lang=lang, limit=limit)
    if len(found) < limit:
        found += fetch(other_than=lang, limit=limit - len(found))
    return found


def home_lists(session: so.Session, lang: str, limit: int = 5) -> HomeLists:
    """Most viewed (or, while nothing in ``lang`` has been read, recently updated) and most helpful."""
    viewed = language_first(partial(most_viewed, session), lang, limit) if most_viewed(session, lang, 1) else []
    recent = [] if viewed else language_first(partial(recently_updated, session), lang, limit)
    return HomeLists(viewed, recent, language_first(partial(most_helpful, session), lang, limit))


def popular(session: so.Session, lang: str, limit: int = 5) -> list[Article]:
    """Articles to offer when a search found nothing: most read, then newest, in ``lang`` before others."""
    found: dict[int, Article] = {}
    for fetch in (partial(most_viewed, lang=lang), partial(recently_updated, lang=lang),
                  partial(most_viewed, other_than=lang), partial(recently_updated, other_than=lang)):
        for article in fetch(session, limit=limit):
            found.setdefault(article.id, article)
    return list(found.values())[:limit]


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
    """Every public page: home, each category per language, each published article, with last change."""
    newest = session.scalar(_published(sa.select(sa.func.max(Article.updated_at)), None))
    entries = [SitemapEntry("home", "", None, newest)]
    stmt = _published(sa.select(Article.category, Article.lang, sa.func.max(Article.updated_at)), None)
    stmt = stmt.where(Article.category != "").group_by(Article.category, Article.lang)
    seen: set[tuple[str, str]] = set()
    for name, lang, lastmod in session.execute(stmt.order_by(Article.category, Article.lang)):
        slug = category_slug(name)
        if slug and (slug, lang) not in seen:
            seen.add((slug, lang))
            entries.append(SitemapEntry("category", slug, lang, lastmod))
    rows = session.execute(_published(sa.select(Article.slug, Article.lang, Article.updated_at), None)
                           .order_by(Article.slug))
    entries.extend(SitemapEntry("article", slug, lang, updated) for slug, lang, updated in rows)
    return entries
