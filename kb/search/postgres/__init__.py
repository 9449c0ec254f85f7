"""The ``postgres`` search backend: PostgreSQL full-text search in the database itself.

Documents live in ``search_documents`` beside the articles (kb.search.postgres.models), written in
the publishing transaction (kb.search.postgres.writes), so every host and read replica sees the
same index and no host keeps search state. Queries are planned as on Whoosh (planner), ranked in
SQL (ranked), and get the same snippets (kb.search.snippets).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

import sqlalchemy as sa

from kb.db import get_db, session_scope
from kb.errors import ConfigError
from kb.models import IndexChange
from kb.search import backend, feed
from kb.search.analysis import GROUPS, group_for
from kb.search.backend import Asked, IndexHit, IndexPage
from kb.search.postgres import alike, planner, ranked, writes
from kb.search.postgres.health import count_problem, problem, stale
from kb.search.postgres.models import SearchDocument
from kb.search.postgres.vocabulary import Vocabulary
from kb.search.snippets import snippet
from kb.search.synonyms import SynonymCache

log = logging.getLogger(__name__)
SETTLE_LOCK = 0x6B625F736561  # the advisory lock of the start-up comparison and rebuild ("kb_sea")
PENDING = "kb_pg_search"  # session.info key: article ids whose documents this transaction must write


class PostgresSearch(backend.SearchBackend):
    """Search on PostgreSQL; nothing on the host's disk, nothing to follow, no lag."""

    name = "postgres"

    def __init__(self, app):
        super().__init__(app)
        self.synonyms = SynonymCache(app)
        self._listeners: list = []
        self.problem: str | None = None  # why the documents are being rebuilt (None when they serve as they are)
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()

    def start(self) -> None:
        """Check the database can serve search, hook commits, and bring stale documents in line.

        At start only a cheap count (health.count_problem); with INDEXER on, a background thread
        compares every article and rebuilds if needed, one process at a time (an advisory lock),
        while searches answer from the documents there are. Without it (commands) a count that is
        off is repaired before start returns.
        """
        try:
            self.check(repair=True)
        except ConfigError:
            get_db(self.app).engine.dispose()  # the app will not start: release its connections
            raise
        with session_scope(self.app) as session:
            self.warm_chinese(session)
            self.problem = count_problem(session)
        self._listen()
        if self.app.config["INDEXER"]:
            self.thread = threading.Thread(target=self._settle, name="kb-search-check", daemon=True)
            self.thread.start()
        elif self.problem and backend.rebuild_at_start():
            log.info("search: %s; rebuilding them", self.problem)
            self.rebuild()
            self.problem = None

    def _settle(self) -> None:
        """The background start-up work: compare every article, rebuild if they differ (one process at a time)."""
        while not self.stopping.is_set():
            try:
                with session_scope(self.app) as session:
                    if session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(SETTLE_LOCK))):
                        problem = count_problem(session) or ("the search documents differ from the articles"
                                                             if stale(session) else None)
                        if problem:
                            log.info("search: %s; rebuilding them", problem)
                            writes.rebuild(session)
                        self.problem = None
                        return
            except Exception:  # noqa: BLE001 - searches go on with the documents there are; try again
                log.exception("search: could not check the search documents; will retry")
            self.stopping.wait(1.0)  # another process is at it: look again when it is done

    def building(self) -> bool:
        """Whether the documents are being rebuilt after a start-up count found them off."""
        return self.problem is not None

    def check(self, repair: bool = False) -> None:
        """ConfigError unless DATABASE_URL is PostgreSQL with pg_trgm and the search tables (see health)."""
        message = problem(get_db(self.app).engine, str(self.app.config["DATABASE_URL"]), repair=repair)
        if message:
            raise ConfigError(message)

    def _listen(self) -> None:
        """Write the documents of a session's index changes just before it commits (same transaction)."""
        def after_flush(session, _context):
            ids = {obj.article_id for obj in session.new if isinstance(obj, IndexChange)}
            if ids:
                session.info.setdefault(PENDING, set()).update(ids)

        def before_commit(session):
            for _round in range(3):  # writing may render an article, which may queue another change
                session.flush()
                ids = session.info.pop(PENDING, None)
                if not ids:
                    return
                writes.apply(session, ids)

        def after_rollback(session):
            session.info.pop(PENDING, None)

        target = get_db(self.app).sessionmaker
        for name, fn in (("after_flush", after_flush), ("before_commit", before_commit),
                         ("after_rollback", after_rollback)):
            sa.event.listen(target, name, fn)
            self._listeners.append((target, name, fn))

    def close(self) -> None:
        """Stop the start-up thread, write the waiting search-log rows and unhook the session events."""
        self.close_log()
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=15)
            self.thread = None
        for target, name, fn in self._listeners:
            sa.event.remove(target, name, fn)
        self._listeners = []

    def add(self, article) -> None:
        """Write one article's document now (in its own transaction)."""
        self._write([article.id])

    def remove(self, article_id: int) -> None:
        """Remove one article's document now (its next published change writes it again)."""
        self._write([article_id], remove=True)

    def _write(self, ids: list[int], remove: bool = False) -> None:
        """Bring these articles' documents in line with the database, in a transaction of their own."""
        with session_scope(self.app) as session:
            session.info.pop(PENDING, None)
            writes.apply(session, ids, remove)

    def process_changes(self) -> int:
        """Nothing is ever queued: changes are written as they commit."""
        return 0

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Rewrite every document and the vocabulary from the published articles, in one transaction."""
        with session_scope(self.app) as session:
            indexed = writes.rebuild(session, progress)
        try:  # after the commit: the statistics of the new rows; the rebuild stands without them
            with session_scope(self.app) as session:
                writes.analyze(session)
        except sa.exc.SQLAlchemyError:
            log.warning("could not ANALYZE the search tables after the rebuild; autovacuum will", exc_info=True)
        return indexed

    def lag_seconds(self) -> float:
        """Always 0: a change is searchable when its transaction commits."""
        return 0.0

    def version(self):
        """(the synonym sets' version, the change feed's head): documents are written with their feed rows, so a change moves it.

        The head counts settled rows only (kb.search.feed), so a change may show some moments late,
        while an older transaction is still open, but always shows.
        """
        with session_scope(self.app) as session:
            return self.content_version(session)

    def content_version(self, session):
        """The version, read on the caller's session: it already holds the feed's head, so pages need nothing more."""
        return (self.synonyms.versioned(), feed.head_mark(session))

    def _related(self, source, limit: int) -> list[int]:
        """The articles most like ``source`` (kb.search.postgres.alike)."""
        with get_db(self.app).engine.connect() as connection:
            return alike.related(connection, source, limit)

    def _query(self, asked: Asked) -> IndexPage:
        """Plan, rank in SQL, cut, page, and make the page's snippets."""
        _epoch, synonyms = self.synonyms.current()
        groups = [group_for(asked.lang)] if asked.lang else list(GROUPS)
        primary = group_for(asked.detected)
        with get_db(self.app).engine.connect() as connection:
            # Every statement of a search is meant to go through an index. For a rare word the planner
            # bets that a sequential scan finds the LIMIT's rows early, and reads all the articles.
            connection.execute(sa.text("SET LOCAL enable_seqscan = off"))
            plan = planner.build(Vocabulary(connection), asked.text, groups, primary, synonyms)
            if not plan.carriers:
                return IndexPage([], 0, plan.suggestion, asked.detected)
            results, total = ranked.ranked(connection, plan, asked, primary)
            page = results[(asked.page - 1) * asked.per_page: asked.page * asked.per_page]
            plain = dict(connection.execute(sa.select(SearchDocument.article_id, SearchDocument.plain)
                                            .where(SearchDocument.article_id.in_([r.article_id for r in page])))
                         .all()) if page else {}
        hits = [IndexHit(r.article_id, r.score, snippet(plain.get(r.article_id, ""), r.grp,
                                                         plan.highlight.get(r.grp, set()))) for r in page]
        corrected = plan.suggestion is not None and any(r.corrected for r in results)
        return IndexPage(hits, total, plan.suggestion, asked.detected, corrected)

