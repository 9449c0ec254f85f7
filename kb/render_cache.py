"""Rendered HTML and text kept with each article, so page views never render Markdown.

The database stays the source of truth: the cache is derived from ``body_md`` and made again
when it is missing, when the body changed, or when the renderer changed. Its key is
``<renderer version>#<digest of the body>``; a render that failed only because the server was
busy is kept under the version ``retry``, so it is shown but made again later (see the indexer).
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.models import Article, IndexChange
from kb.rendering import BUSY, BUSY_GAVE_UP, RENDERER_VERSION, Rendered, render

RETRY = "retry"


def body_digest(body: str | None) -> str:
    """A short digest of an article body, to tell whether a cache was made from it."""
    return hashlib.sha256((body or "").encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _key_parts(article: Article) -> tuple[str, str]:
    """(renderer version, body digest) of the article's cache; empty strings if it has none."""
    version, _, digest = (article.render_key or "").rpartition("#")
    return version, digest


def is_current(article: Article) -> bool:
    """Whether the cache was made by this renderer from the article's current body."""
    return article.body_html is not None and _key_parts(article) == (RENDERER_VERSION, body_digest(article.body_md))


def refresh(article: Article, *, accept: bool = False) -> Rendered:
    """Render the body and keep the result on the article (the caller commits).

    ``accept`` keeps even a result the busy server could not finish as final (the last retry).
    """
    rendered = render(article.body_md)
    article.body_html, article.body_text, article.render_error = rendered.html, rendered.text, rendered.problem
    version = RENDERER_VERSION if rendered.final or accept else RETRY
    article.render_key = f"{version}#{body_digest(article.body_md)}"
    return rendered


def article_html(session: so.Session, article: Article) -> str:
    """The article's HTML for a page, from the cache; rendered (within the time limit) only if none fits.

    A cache made from this very body is served even if an older renderer made it (start-up
    queues those again). With none, the body changed without kb (or the cache was never made):
    it is rendered once, kept (the caller commits), and queued so search catches up too.
    """
    if article.body_html is not None and _key_parts(article)[1] == body_digest(article.body_md):
        return article.body_html
    html = refresh(article).html
    session.add(IndexChange(article_id=article.id))
    return html


def article_text(article: Article) -> str:
    """The article's plain text for the index: from the cache if current, else rendered now."""
    if is_current(article):
        return article.body_text or ""
    return refresh(article).text


def needs_retry(article: Article) -> bool:
    """Whether the cache holds a plain-text stand-in kept only until the server is less busy."""
    return _key_parts(article)[0] == RETRY


def accept(article: Article) -> None:
    """Keep the cache as it is for good (after the last retry), until the body or renderer changes."""
    article.render_key = f"{RENDERER_VERSION}#{_key_parts(article)[1]}"
    if article.render_error == BUSY:
        article.render_error = BUSY_GAVE_UP


def queue_stale(session: so.Session, unapplied: sa.ColumnElement[bool]) -> int:
    """Queue every article whose cache is missing or from another renderer; returns how many.

    ``unapplied`` picks the feed rows the caller's index has not applied yet: an article with
    one is not queued again (several workers starting at once queue it once). Rows already
    applied do not count: the feed keeps them for days, and a cache gone stale since needs a new one.
    """
    queued = sa.select(IndexChange.id).where(IndexChange.article_id == Article.id, unapplied)
    stale = sa.select(Article.id).where(sa.or_(Article.render_key.is_(None),
                                               Article.render_key.not_like(f"{RENDERER_VERSION}#%")),
                                        ~queued.exists())
    ids = list(session.scalars(stale))
    session.add_all(IndexChange(article_id=article_id) for article_id in ids)
    return len(ids)
