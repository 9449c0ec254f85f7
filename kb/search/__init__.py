"""The search seam over published articles. Nothing outside kb.search imports whoosh.

The database is the source of truth. SEARCH_BACKEND picks the backend (kb.search.backend):
``whoosh`` keeps a local index folder that follows the database's change feed (``indexer``) and can
always be rebuilt with ``rebuild``; ``postgres`` searches the database itself, so no host keeps
search state.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import Callable

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask, current_app

from kb.db import get_db, relax_durability
from kb.insights import logbuffer, searchlog
from kb.models import Article, utcnow
from kb.render_cache import article_text
from kb.search import feed
from kb.search.analysis import has_cjk
from kb.errors import ConfigError
from kb.search.clock import ContentClock
from kb.search.backend import MAX_PAGE, MAX_PER_PAGE, IndexHit, IndexPage, SearchBackend, no_rebuild_at_start, paging
from kb.search.likeness import Source
from kb.search.related import RelatedCache

__all__ = ["MAX_PAGE", "MAX_PER_PAGE", "IndexHit", "IndexPage", "SearchPage", "SearchResult", "init_app", "add_to_index",
           "remove_from_index", "query_index", "search_articles", "log_search", "content_version", "suggest_titles",
           "related_articles", "process_outbox", "flush_log", "rebuild", "skipped_articles", "no_rebuild_at_start", "building"]
log = logging.getLogger(__name__)
CLOCK = "kb.search.clock"


@dataclass
class SearchResult:
    """A published article found by a search, with its score and safe HTML snippet."""

    article: Article
    score: float
    snippet_html: str


@dataclass
class SearchPage:
    """One page of search results for the portal and the API."""

    query: str
    total: int
    page: int
    per_page: int
    lang: str
    suggestion: str | None
    results: list[SearchResult] = field(default_factory=list)
    corrected: bool = False  # the results already include matches for the suggestion
    search_id: int | None = None  # the search-log row, for the result links' click recording
    building: bool = False  # the index is being built: results may be missing (say so to the customer)

    @property
    def pages(self) -> int:
        """How many pages of results there are to show (0 for none; never more than MAX_PAGE)."""
        return min(-(-self.total // self.per_page), MAX_PAGE)


# SEARCH_BACKEND -> (module, class); imported only when chosen, so one backend's needs never load the other.
BACKENDS = {"whoosh": ("kb.search.service", "SearchService"), "postgres": ("kb.search.postgres", "PostgresSearch")}


def init_app(app: Flask) -> None:
    """Start the SEARCH_BACKEND backend (Whoosh: open or rebuild the index, start the indexer thread)."""
    from kb.retention import retention_days  # kb.retention's imports reach far: loaded once the app is made

    feed.init_app(app)  # the change feed is kept (and purged) whichever backend searches
    app.extensions["kb.search.log"] = logbuffer.make(app.config, lambda: get_db(app).engine, retention_days(app.config))
    app.extensions["kb.search.related"] = RelatedCache(int(app.config["RELATED_CACHE_SIZE"]))
    service = backend_class(str(app.config.get("SEARCH_BACKEND") or "whoosh"))(app)
    app.extensions["kb.search"] = service
    app.extensions[CLOCK] = clock = ContentClock(service.content_version)
    clock.listen(get_db(app).sessionmaker)
    service.on_change = clock.touch
    service.start()


def close_app(app: Flask) -> None:
    """Stop the search backend and unhook the content clock from the app's sessions."""
    service = app.extensions.get("kb.search")
    if service is not None and hasattr(service, "close"):
        service.close()
    clock = app.extensions.get(CLOCK)
    if clock is not None:
        clock.close()


def backend_class(name: str) -> type[SearchBackend]:
    """The backend class for a SEARCH_BACKEND value; ConfigError for an unknown one."""
    if name not in BACKENDS:
        raise ConfigError(f"SEARCH_BACKEND is {name!r}; set it to one of: {', '.join(BACKENDS)}.")
    module, cls = BACKENDS[name]
    return getattr(importlib.import_module(module), cls)


def _service(app: Flask | None = None) -> SearchBackend:
    """The search service of ``app`` or of the current app."""
    return (app or current_app).extensions["kb.search"]


def add_to_index(article: Article) -> None:
    """Index (or re-index) one article now; unpublished articles are removed instead."""
    if article.status != "published":
        remove_from_index(article.id)
        return
    _service().add(article)


def remove_from_index(article_id: int) -> None:
    """Remove one article from the index now."""
    _service().remove(article_id)


def query_index(q: str, *, lang: str | None = None, category: str | None = None,
                page: int = 1, per_page: int = 10, exclude: int | None = None) -> IndexPage:
    """Search the index: article ids with scores and snippets; never raises on user input."""
    return _service().query(q, lang=lang, category=category, page=page, per_page=per_page, exclude=exclude)


def search_articles(session: so.Session, q: str, *, lang: str | None = None, category: str | None = None,
                    page: int = 1, per_page: int = 10, log: bool = True) -> SearchPage:
    """Search and load the published articles in rank order; logs the search without a visitor (the API's).

    The portal passes ``log=False`` and logs the search with its visitor and visit itself
    (kb.web.portal.counting.note_search): its links need the row's id.
    """
    found = query_index(q, lang=lang, category=category, page=page, per_page=per_page)
    building = _service().building()
    ids = [hit.article_id for hit in found.hits]
    rows = {a.id: a for a in session.scalars(sa.select(Article).where(Article.id.in_(ids), Article.status == "published"))} if ids else {}
    results = [SearchResult(rows[h.article_id], h.score, h.snippet_html) for h in found.hits if h.article_id in rows]
    total = max(found.total - (len(found.hits) - len(results)), len(results))
    page, per_page = paging(page, per_page)
    search_id = log_search(session, q, found.lang, total, page) if log else None
    return SearchPage(str(q or ""), total, page, per_page, found.lang, found.suggestion, results, found.corrected,
                      search_id, building)


def log_search(session: so.Session, q: str, lang: str, total: int, page: int) -> int | None:
    """Record a search without a visitor for analytics; a failure to log never fails the search.

    Its row waits in the app's buffer (kb.insights.logbuffer), so the request neither writes nor
    commits and there is no id to return; without a buffer it is written here and its id returned.
    """
    buffer = current_app.extensions.get("kb.search.log")
    if buffer is not None and buffer.add(str(q or ""), lang, total, utcnow()):
        return None
    try:
        relax_durability(session.connection())  # a log: a power cut may take back the last rows
        search_id = searchlog.log_search(session, visitor=None, query=str(q or ""), lang=lang, results=total,
                                         settings=current_app.config, page=page)
        session.commit()
        return search_id
    except Exception:  # noqa: BLE001 - analytics, whatever breaks in them, never fail a customer's search
        session.rollback()
        log.warning("could not write the search log", exc_info=True)
        return None


def content_version(session: Callable[[], so.Session], max_age: float = 0.0):
    """What public pages are made of, as one value: the search version and the change feed's head (each backend's); None: never keep pages.

    Every article change adds a feed row in its own transaction (kb.articles.enqueue_index), so a
    page kept at this value shows what a render would, until the value moves. ``session`` is asked
    for only when the value is read: one read less than ``max_age`` seconds ago is reused unless
    this process changed content since (kb.search.clock).
    """
    return current_app.extensions[CLOCK].version(session, max_age)


def suggest_titles(session: so.Session, prefix: str, *, lang: str | None = None, limit: int = 8) -> list[Article]:
    """Published articles whose title has a word starting with each typed word (substring for CJK)."""
    text = " ".join(str(prefix or "").split())[:100].lower()
    if not text:
        return []
    title = sa.func.lower(Article.title)
    if has_cjk(text):
        match = title.like(f"%{_like_escape(text)}%", escape="\\")
    else:
        match = sa.and_(*(sa.or_(title.like(f"{w}%", escape="\\"), title.like(f"% {w}%", escape="\\"))
                          for w in map(_like_escape, text.split()[:8])))
    stmt = sa.select(Article).where(Article.status == "published", match)
    if lang:
        stmt = stmt.where(Article.lang == lang)
    return list(session.scalars(stmt.order_by(Article.views.desc(), Article.title).limit(max(1, min(limit, 50)))))


def _like_escape(text: str) -> str:
    """Escape LIKE wildcards so typed % and _ match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# A long article's text, Markdown and HTML are hundreds of KB: lists of related articles load them only if asked.
WITHOUT_TEXT = (so.defer(Article.body_md), so.defer(Article.body_html), so.defer(Article.body_text))


def related_articles(session: so.Session, article: Article, limit: int = 5) -> list[Article]:
    """Articles like this one (sharing its title, tag and rarest body words; same language), then others of its category.

    Kept per process (kb.search.related) until the article or the search index changes, so a page
    view loads the rows of a list found before instead of searching again.
    """
    cache: RelatedCache = current_app.extensions["kb.search.related"]
    version = _service().version() if cache.size > 0 else None
    key = (article.id, article.updated_at, limit)
    ids = cache.get(version, key)
    if ids is None:
        related = _find_related(session, article, limit)
        cache.put(version, key, [a.id for a in related])
        return related
    return _listed(session, ids)


def _listed(session: so.Session, ids: list[int]) -> list[Article]:
    """The published articles ``ids`` in that order, without their text: a list shows titles only."""
    if not ids:
        return []
    rows = {a.id: a for a in session.scalars(sa.select(Article).options(*WITHOUT_TEXT)
                                             .where(Article.id.in_(ids), Article.status == "published"))}
    return [rows[i] for i in ids if i in rows]


def _find_related(session: so.Session, article: Article, limit: int) -> list[Article]:
    """The articles most like this one (kb.search.likeness), then the most viewed others of the category to fill the list."""
    source = Source(article.id, article.lang, article.title, tuple(article.tags or ()), article_text(article))
    related = _listed(session, _service().related(source, limit))
    if len(related) < limit and article.category:
        taken = [article.id, *(a.id for a in related)]
        related += session.scalars(sa.select(Article).options(*WITHOUT_TEXT).where(
            Article.status == "published", Article.category == article.category, Article.id.not_in(taken))
            .order_by(Article.views.desc(), Article.title).limit(limit - len(related)))
    return related


def flush_log(app: Flask | None = None) -> int:
    """Write the search-log rows waiting in this process now (kb.insights.logbuffer); how many were written."""
    buffer = (app or current_app).extensions.get("kb.search.log")
    return buffer.flush() if buffer is not None else 0


def building(app: Flask | None = None) -> bool:
    """Whether the search index is being built, so results may be missing meanwhile."""
    return _service(app).building()


def process_outbox(app: Flask | None = None) -> int:
    """Apply the queued index changes now; returns how many queue rows were processed."""
    return _service(app).process_changes()


def rebuild(app: Flask | None = None, progress: Callable[[int, int], None] | None = None) -> int:
    """Rebuild the whole index from the database aside, then switch; returns the article count."""
    return _service(app).rebuild(progress)


def skipped_articles(session: so.Session) -> list[Article]:
    """Published articles the index could not take, each with its reason in ``index_error``."""
    return list(session.scalars(sa.select(Article).where(Article.status == "published", Article.index_error != "")
                                .order_by(Article.slug)))
