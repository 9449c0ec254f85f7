"""The search service of one app: the index store, the result cache and the indexer thread."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import sqlalchemy as sa
from whoosh.query import And, Term

from kb.articles import normalise_lang
from kb.db import get_db
from kb.errors import ConfigError, ValidationError
from kb.models import IndexOutbox
from kb.search import indexer
from kb.search.analysis import GROUPS, group_for, warm_jieba_in_background
from kb.search.querying import build, clean_query, detect_language
from kb.search.snippets import snippet
from kb.search.store import IndexStore

log = logging.getLogger(__name__)
MAX_PAGE = 100
MAX_PER_PAGE = 100
# Whoosh ranks by BM25F; the best RERANK hits are then re-ordered by the share of query words
# they match. Deeper pages re-rank everything up to themselves.
RERANK = 100


@dataclass(frozen=True)
class IndexHit:
    """One matching article: its id, relevance score and a safe HTML snippet."""

    article_id: int
    score: float
    snippet_html: str


@dataclass(frozen=True)
class IndexPage:
    """One page of index results, the total, the "did you mean" text and the query language."""

    hits: list[IndexHit] = field(default_factory=list)
    total: int = 0
    suggestion: str | None = None
    lang: str = "en"


class ResultCache:
    """A small LRU of result pages, valid for one index version only."""

    def __init__(self, size: int):
        self.size, self.version = size, None
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, version, key):
        """The cached page for ``key`` at ``version``, or None (a new version empties the cache)."""
        with self.lock:
            if version != self.version:
                # Versions sort by age; a searcher opened just before a commit must not flush
                # what threads on the newer version have cached.
                if self.version is None or version > self.version:
                    self.items.clear()
                    self.version = version
                return None
            page = self.items.get(key)
            if page is not None:
                self.items.move_to_end(key)
            return page

    def put(self, version, key, page) -> None:
        """Remember a page computed at ``version``."""
        if self.size <= 0:
            return
        with self.lock:
            if version != self.version:
                return
            self.items[key] = page
            while len(self.items) > self.size:
                self.items.popitem(last=False)


class SearchService:
    """Everything search keeps for one app, in ``app.extensions["kb.search"]``."""

    def __init__(self, app):
        self.app = app
        self.store = IndexStore(app.config["INDEX_DIR"])
        self.cache = ResultCache(int(app.config["SEARCH_CACHE_SIZE"]))
        self.write_lock = threading.Lock()
        self.wake = threading.Event()
        self.thread: indexer.Indexer | None = None
        self._listeners = []
        # Set when making the index fresh failed at start: the indexer thread tries again.
        self.stale = False

    def start(self) -> None:
        """Make the index fresh, hook commits, and start the indexer thread if configured."""
        if "zh" in [code.strip() for code in str(self.app.config.get("LANGUAGES", "")).split(",")]:
            warm_jieba_in_background()
        self._check_index_folder()
        try:
            indexer.ensure_fresh(self)
        except Exception:  # noqa: BLE001 - start-up must never depend on every article (or on search)
            log.exception("could not bring the search index up to date at start; serving anyway, "
                          "the indexer tries again")
            self.stale = True
        self._listen()
        if self.app.config["INDEXER"]:
            self.thread = indexer.Indexer(self, float(self.app.config["INDEXER_POLL_SECONDS"]))
            self.thread.start()

    def _check_index_folder(self) -> None:
        """ConfigError unless the index folder can be created and written."""
        try:
            self.store.root.mkdir(parents=True, exist_ok=True)
            with open(self.store.root / ".rebuild.lock", "a"):
                pass
        except OSError as exc:
            raise ConfigError(f"Cannot use the search index folder {self.store.root}: {exc.strerror or exc}. "
                              "Set KB_INDEX_DIR to a writable folder on a local disk.") from exc

    def _listen(self) -> None:
        """Wake the indexer as soon as a session that queued index changes commits."""
        def after_flush(session, _context):
            if any(isinstance(obj, IndexOutbox) for obj in session.new):
                session.info["kb_outbox"] = True

        def after_commit(session):
            if session.info.pop("kb_outbox", False):
                self.wake.set()

        def after_rollback(session):
            session.info.pop("kb_outbox", None)

        target = get_db(self.app).sessionmaker
        for name, fn in (("after_flush", after_flush), ("after_commit", after_commit),
                         ("after_rollback", after_rollback)):
            sa.event.listen(target, name, fn)
            self._listeners.append((target, name, fn))

    def close(self) -> None:
        """Stop the indexer thread, unhook the session events and close the searchers."""
        if self.thread is not None:
            self.thread.stop()
            self.thread = None
        for target, name, fn in self._listeners:
            sa.event.remove(target, name, fn)
        self._listeners = []
        self.store.close()

    def query(self, q: str, *, lang: str | None = None, category: str | None = None,
              page: int = 1, per_page: int = 10) -> IndexPage:
        """Search the index; never raises on any input (a failure is logged, and gives no hits)."""
        text = clean_query(q, int(self.app.config["MAX_QUERY_LENGTH"]))
        lang = _lang_or_none(lang)
        detected = lang or detect_language(text, self.app.config["DEFAULT_LANGUAGE"])
        page, per_page = paging(page, per_page)
        category = str(category).strip() if category else None
        if not text:
            return IndexPage([], 0, None, detected)
        try:
            return self._query(text, lang, detected, category, page, per_page)
        except Exception:  # noqa: BLE001 - a search must never become a server error
            log.exception("search failed for %r", text)
            return IndexPage([], 0, None, detected)

    def _query(self, text, lang, detected, category, page, per_page) -> IndexPage:
        """The search itself, retried once if a concurrent commit pulled a file away."""
        for attempt in (1, 2):
            try:
                with self.store.searcher() as (gen, searcher):
                    if searcher is None:
                        return IndexPage([], 0, None, detected)
                    return self._run(gen, searcher, text, lang, detected, category, page, per_page)
            except OSError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _run(self, gen, searcher, text, lang, detected, category, page, per_page) -> IndexPage:
        """Plan, search, re-rank and make snippets, through the result cache."""
        # Generation folders are named by creation time, so these tuples sort by age.
        version = (gen, searcher.reader().generation() or 0, searcher.doc_count_all())
        key = (text, lang, detected, category, page, per_page)
        cached = self.cache.get(version, key)
        if cached is not None:
            return cached
        groups = [group_for(lang)] if lang else list(GROUPS)
        plan = build(searcher.reader(), text, groups, group_for(detected))
        hits, total = [], 0
        if plan.query is not None:
            filters = [Term("lang", lang)] if lang else []
            filters += [Term("category", category)] if category else []
            mask = (And(filters) if len(filters) > 1 else filters[0]) if filters else None
            results = searcher.search(plan.query, limit=max(RERANK, page * per_page), filter=mask, terms=True)
            total = len(results)
            ranked = sorted(((hit.score * plan.coverage(hit.matched_terms()), hit.rank, hit) for hit in results),
                            key=lambda item: (-item[0], item[1]))
            for score, _rank, hit in ranked[(page - 1) * per_page: page * per_page]:
                group = group_for(hit["lang"])
                html = snippet(hit.get("plain", ""), group, plan.highlight.get(group, set()))
                hits.append(IndexHit(int(hit["id"]), float(score), html))
        result = IndexPage(hits, total, plan.suggestion, detected)
        self.cache.put(version, key, result)
        return result


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
