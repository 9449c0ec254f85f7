"""The search service of one app: the index store, the result cache and the indexer thread."""

from __future__ import annotations

import logging
import threading
from typing import Callable

from whoosh.query import And, Term

from kb.db import get_db, session_scope
from kb.errors import ConfigError
from kb.search.schema import document
from kb.search import alike, feed, freshness, indexer, likeness, ranking, topk
from kb.search.cache import VersionedCache
from kb.search.analysis import GROUPS, group_for
from kb.search.backend import Asked, IndexHit, IndexPage, SearchBackend, rebuild_at_start
from kb.search.querying import build
from kb.search.snippets import snippet
from kb.search.store import IndexStore
from kb.search.synonyms import SynonymCache

log = logging.getLogger(__name__)
# Whoosh ranks by BM25F; its best FETCH hits (twice the asked page's end, if more) are then ranked
# and cut (kb.search.ranking). A planned long question (kb.search.planning) is scored by its rare
# words only, so more of its hits are re-ranked by the share of all its words they hold: its rare
# words make that cheap. Both chosen on benchmarks/search.py's sentences at 10,000 articles (source
# article on page 1: 72 of 100 with 30 for both, 88 with these, as before planning).
FETCH = 30
FETCH_PLANNED = 200


class SearchService(SearchBackend):
    """The Whoosh backend: a local index folder that follows the database (see ``indexer``)."""

    name = "whoosh"

    def __init__(self, app):
        super().__init__(app)
        self.store = IndexStore(app.config["INDEX_DIR"])
        self.cache = VersionedCache(int(app.config["SEARCH_CACHE_SIZE"]))
        self.synonyms = SynonymCache(app)
        self.write_lock = threading.Lock()
        self.wake = threading.Event()
        self.thread: indexer.Indexer | None = None
        self._listeners = []
        # Why the index is being built (None when it serves as it is): set at start, cleared once rebuilt.
        self.problem: str | None = None

    @property
    def stale(self) -> bool:
        """Whether the index still has to be rebuilt (or caught up) since start."""
        return self.problem is not None

    def start(self) -> None:
        """A cheap look at the index, hook commits; the indexer thread settles it, else it is made fresh now.

        With the thread (INDEXER), start never waits: a missing or stale index is rebuilt aside by
        the thread of one process, and searches meanwhile answer from what there is (``building``).
        """
        self._check_index_folder()
        try:
            with session_scope(self.app) as session:
                self.warm_chinese(session)
            self.problem = freshness.start_problem(self)
        except Exception:  # noqa: BLE001 - start-up must never depend on every article (or on search)
            log.exception("could not check the search index at start")
            self.problem = "the search index could not be checked"
        if self.problem is not None:
            log.info("search index: %s; it is rebuilt aside", self.problem)
        if not self.app.config["INDEXER"] and rebuild_at_start():
            try:
                indexer.ensure_fresh(self)  # no thread to do it later (commands, tests)
            except Exception:  # noqa: BLE001 - start-up must never depend on every article (or on search)
                log.exception("could not bring the search index up to date at start; serving anyway")
        self._listen()
        if self.app.config["INDEXER"]:
            self.thread = indexer.Indexer(self, float(self.app.config["INDEXER_POLL_SECONDS"]))
            self.thread.start()

    def building(self) -> bool:
        """Whether the index is being rebuilt since start, so results may be missing meanwhile."""
        return self.problem is not None

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
        self._listeners = feed.on_commit_of_changes(get_db(self.app).sessionmaker, self.wake.set)

    def close(self) -> None:
        """Stop the indexer thread, write the waiting search-log rows, unhook the session events, close the searchers."""
        self.close_log()
        if self.thread is not None:
            self.thread.stop()
            self.thread = None
        feed.remove_listeners(self._listeners)
        self._listeners = []
        self.store.close()

    def add(self, article) -> None:
        """Index (or re-index) one published article now."""
        with self.write_lock:
            _gen, writer = self.store.writer()
            writer.update_document(**document(article))
            writer.commit()
        self.on_change()

    def remove(self, article_id: int) -> None:
        """Remove one article from the index now."""
        with self.write_lock:
            _gen, writer = self.store.writer()
            writer.delete_by_term("id", str(article_id))
            writer.commit()
        self.on_change()

    def process_changes(self) -> int:
        """Apply the queued index changes now; returns how many were applied."""
        return indexer.process_outbox(self)

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild the whole index from the database aside, then switch; returns the article count."""
        return indexer.rebuild(self, progress)

    def lag_seconds(self) -> float:
        """Age of the oldest change past this host's cursor (0 when caught up)."""
        return indexer.lag_seconds(self)

    def check(self) -> None:
        """ConfigError unless the index folder is usable and an index generation is in it."""
        self._check_index_folder()
        if self.store.current() is None:
            raise ConfigError(f"The search index in {self.store.root} is missing; run `kb reindex`.")

    def version(self):
        """(generation, commit, documents, synonyms version): it changes with each commit to the index and each synonym change."""
        synonyms_version = self.synonyms.versioned()
        with self.store.searcher() as (gen, searcher):
            if searcher is None:
                return None
            return (gen, searcher.reader().generation() or 0, searcher.doc_count_all(), synonyms_version)

    def _query(self, asked: Asked) -> IndexPage:
        """The search itself, retried once if a concurrent commit pulled a file away."""
        for attempt in (1, 2):
            try:
                with self.store.searcher() as (gen, searcher):
                    if searcher is None:
                        return IndexPage([], 0, None, asked.detected)
                    return self._run(gen, searcher, asked)
            except OSError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _related(self, source: likeness.Source, limit: int) -> list[int]:
        """The articles sharing most of ``source``'s rarest words (kb.search.alike), read straight from the postings."""
        with self.store.searcher() as (_gen, searcher):
            if searcher is None:
                return []
            reader = searcher.reader()
            return [int(reader.stored_fields(d)["id"]) for d in alike.related(reader, source, limit)]

    def _run(self, gen, searcher, asked: Asked) -> IndexPage:
        """Plan, search, rank and cut, and make the page's snippets, through the result cache."""
        # Generation folders are named by creation time, so these tuples sort by age; the synonyms'
        # epoch comes first, so pages planned with older sets are never served after a change.
        epoch, synonyms = self.synonyms.current()
        version = (epoch, gen, searcher.reader().generation() or 0, searcher.doc_count_all())
        cached = self.cache.get(version, asked)
        if cached is not None:
            return cached
        groups = [group_for(asked.lang)] if asked.lang else list(GROUPS)
        plan = build(searcher.reader(), asked.text, groups, group_for(asked.detected), synonyms)
        ranked, total = _ranked(searcher, plan, asked) if plan.query is not None else ([], 0)
        hits = []
        for result in ranked[(asked.page - 1) * asked.per_page: asked.page * asked.per_page]:
            group = group_for(result.hit["lang"])
            html = snippet(result.hit.get("plain", ""), group, plan.highlight.get(group, set()))
            hits.append(IndexHit(int(result.hit["id"]), float(result.score), html))
        corrected = plan.suggestion is not None and any(r.corrected for r in ranked)
        found = IndexPage(hits, total, plan.suggestion, asked.detected, corrected)
        self.cache.put(version, asked, found)
        return found


def _ranked(searcher, plan, asked: Asked) -> tuple[list[ranking.Ranked], int]:
    """The results up to the asked page (see kb.search.ranking), and how many there are.

    One top-k search of twice the asked page's end (FETCH or FETCH_PLANNED at least): re-ranking
    moves hits within that window. The total is exact when no hit left out could be a result, else
    an estimate: the share of fetched hits that are results, over the documents matching the
    commonest choosing word.
    """
    filters = [Term("lang", asked.lang)] if asked.lang else []
    filters += [Term("category", asked.category)] if asked.category else []
    wanted = (And(filters) if len(filters) > 1 else filters[0]) if filters else None
    unwanted = Term("id", str(asked.exclude)) if asked.exclude is not None else None
    limit = max(FETCH_PLANNED if plan.others else FETCH, 2 * asked.page * asked.per_page)
    hits, terms_of = topk.search(searcher, plan.query, limit, wanted, unwanted, plan.others)
    ranked, floor = ranking.rank(hits, plan, terms_of)
    fetched = len(hits)
    last = hits[-1] if fetched else None
    if fetched < limit or last.score < floor or last.docnum not in {r.hit.docnum for r in ranked}:
        return ranked, len(ranked)  # every hit that could be a result was fetched (or the tail is cut)
    return ranked, len(ranked) + int(len(ranked) / fetched * max(plan.min_matches - fetched, 0))
