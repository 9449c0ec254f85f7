"""What every search backend shares: the result types, paging, and the checks before a query.

A backend (``kb.search.service.SearchService`` on Whoosh, ``kb.search.postgres.PostgresSearch`` on
PostgreSQL full-text search) subclasses ``SearchBackend`` and fills in the methods that raise
NotImplementedError. ``kb.search`` picks one by the SEARCH_BACKEND setting; nothing else names them.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Callable

import sqlalchemy as sa

from kb.articles import normalise_lang
from kb.config import configured_languages
from kb.errors import ValidationError
from kb.models import Article
from kb.search import feed
from kb.search.analysis import warm_jieba_in_background
from kb.search.querying import clean_query, detect_language

log = logging.getLogger(__name__)
MAX_PAGE = 100
MAX_PER_PAGE = 100
_REBUILD_AT_START: ContextVar[bool] = ContextVar("kb_search_rebuild_at_start", default=True)


@contextmanager
def no_rebuild_at_start():
    """Apps created inside do not rebuild a stale index while starting (``kb reindex`` rebuilds next anyway)."""
    token = _REBUILD_AT_START.set(False)
    try:
        yield
    finally:
        _REBUILD_AT_START.reset(token)


def rebuild_at_start() -> bool:
    """Whether an app starting now may rebuild its index during start (see ``no_rebuild_at_start``)."""
    return _REBUILD_AT_START.get()


@dataclass(frozen=True)
class IndexHit:
    """One matching article: its id, relevance score and a safe HTML snippet."""

    article_id: int
    score: float
    snippet_html: str


@dataclass(frozen=True)
class IndexPage:
    """One page of index results, the total, the "did you mean" text and the query language.

    ``corrected`` says the results already include matches for the suggestion (so a page shows
    "Showing results for ..." rather than asking "Did you mean ...?").
    """

    hits: list[IndexHit] = field(default_factory=list)
    total: int = 0
    suggestion: str | None = None
    lang: str = "en"
    corrected: bool = False


@dataclass(frozen=True)
class Asked:
    """One search as asked (cleaned): also the key of a result cache."""

    text: str
    lang: str | None
    detected: str
    category: str | None
    page: int
    per_page: int
    exclude: int | None = None


class SearchBackend:
    """The search of one app, in ``app.extensions["kb.search"]``; subclasses are the backends."""

    name = "?"

    def __init__(self, app):
        self.app = app
        # Called after this process commits to the search state outside a database session (kb.search.clock).
        self.on_change: Callable[[], None] = lambda: None

    def start(self) -> None:
        """Make the backend ready to answer (and, where it needs one, start its indexer)."""
        raise NotImplementedError

    def warm_chinese(self, session) -> None:
        """Load jieba in the background when the portal is in Chinese and has a published Chinese article.

        Loading it takes half a second of CPU, and the thread slowed the start beside it as much
        (create_app 0.92 -> 0.44 s at 10,000 articles without it): a site with no Chinese article
        leaves it to the first Chinese text, which then waits that half second once.
        """
        if "zh" not in configured_languages(self.app.config):
            return
        chinese = sa.select(Article.id).where(Article.status == "published", Article.lang == "zh").limit(1)
        if session.scalar(chinese) is not None:
            warm_jieba_in_background()

    def close(self) -> None:
        """Stop background work and release what the backend holds."""
        raise NotImplementedError

    def close_log(self) -> None:
        """Write the search-log rows the app still holds and stop their thread (each ``close`` calls it)."""
        buffer = self.app.extensions.get("kb.search.log")
        if buffer is not None:
            buffer.close()

    def building(self) -> bool:
        """Whether the index is being built, so results may be missing meanwhile (searches still answer)."""
        return False

    def add(self, article) -> None:
        """Index (or re-index) one published article now."""
        raise NotImplementedError

    def remove(self, article_id: int) -> None:
        """Remove one article from the index now."""
        raise NotImplementedError

    def process_changes(self) -> int:
        """Apply the queued index changes now; returns how many changes were applied."""
        raise NotImplementedError

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild the whole index from the database; returns the article count."""
        raise NotImplementedError

    def lag_seconds(self) -> float:
        """How far behind the database this host's index is, in seconds (0 when up to date)."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise ConfigError saying what to fix unless the backend can answer searches now."""
        raise NotImplementedError

    def version(self):
        """A cheap value that changes whenever what searches find may change; None if there is none (never cache)."""
        return None

    def content_version(self, session):
        """What public pages are made of (kb.web.pagecache): this version and the change feed's head read on ``session``.

        None when there is no version: then no page is kept. The value is the same in every process
        of a host on the same content, and differs for a database made anew (kb.web.pagestore).
        """
        version = self.version()
        return None if version is None else (version, feed.head_mark(session))

    def query(self, q: str, *, lang: str | None = None, category: str | None = None,
              page: int = 1, per_page: int = 10, exclude: int | None = None) -> IndexPage:
        """Search (``exclude``: an article id never to return); never raises on any input."""
        text = clean_query(q, int(self.app.config["MAX_QUERY_LENGTH"]))
        lang = _lang_or_none(lang)
        detected = lang or detect_language(text, self.app.config["DEFAULT_LANGUAGE"])
        page, per_page = paging(page, per_page)
        category = str(category).strip() if category else None
        if not text:
            return IndexPage([], 0, None, detected)
        asked = Asked(text, lang, detected, category, page, per_page, exclude)
        try:
            return self._query(asked)
        except Exception:  # noqa: BLE001 - a search must never become a server error
            log.exception("search failed for %r", text)
            return IndexPage([], 0, None, detected)

    def related(self, source, limit: int) -> list[int]:
        """Ids of up to ``limit`` articles most like ``source`` (a kb.search.likeness.Source), best first.

        Same language, never the source itself; never raises (a page shows no related articles instead).
        """
        try:
            return self._related(source, limit)
        except Exception:  # noqa: BLE001 - related articles must never fail an article page
            log.exception("related articles failed for article %s", source.id)
            return []

    def _related(self, source, limit: int) -> list[int]:
        """The backend's related articles of ``source`` (kb.search.likeness)."""
        raise NotImplementedError

    def probe(self, text: str, lang: str) -> IndexPage:
        """One search that raises on failure (for health checks), where ``query`` would show an empty page."""
        return self._query(Asked(clean_query(text, 100), None, lang, None, 1, 1))

    def _query(self, asked: Asked) -> IndexPage:
        """The backend's search for a cleaned, non-empty query."""
        raise NotImplementedError


def _lang_or_none(lang) -> str | None:
    """kb's code for a language filter, or None for none or nonsense."""
    if not lang:
        return None
    try:
        return normalise_lang(str(lang))
    except ValidationError:
        return None


def paging(page, per_page) -> tuple[int, int]:
    """Page number and page size from user input, clamped to sane bounds."""
    return min(max(_int(page, 1), 1), MAX_PAGE), min(max(_int(per_page, 10), 1), MAX_PER_PAGE)


def _int(value, default: int) -> int:
    """An int from user input, or ``default``."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
