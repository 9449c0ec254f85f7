"""Keeping the index in step with the database: the outbox drain, full rebuilds, the thread.

Domain functions queue article ids in ``index_changes`` in the same transaction as the change.
One writer at a time applies them: it takes the Whoosh write lock *before* reading the rows
and articles, so two processes can never apply an older state over a newer one.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Callable

import sqlalchemy as sa

from kb import render_cache
from kb.db import session_scope
from kb.models import Article, IndexChange, utcnow
from kb.search.schema import SCHEMA_VERSION, document, examples_by_article, stamp

log = logging.getLogger(__name__)
BATCH = 500
# An article that fails is tried this many times in all, waiting RETRY_DELAYS seconds in between.
MAX_ATTEMPTS = 3
RETRY_DELAYS = (10, 60)


def process_outbox(service) -> int:
    """Apply every queued index change; returns how many outbox rows were processed."""
    if service.store.current() is None:
        return rebuild(service)  # the index folder vanished while running: heal it
    done = 0
    with service.write_lock:
        while True:
            if not _pending(service.app):
                return done
            count = _apply_batch(service)
            done += count
            if count < BATCH:
                return done


def _pending(app) -> bool:
    """Whether the outbox holds a row due now (a cheap check before taking the write lock)."""
    with session_scope(app) as session:
        return session.scalar(sa.select(IndexChange.id).where(_due()).limit(1)) is not None


def _due():
    """Outbox rows to apply now: new ones, and failed ones whose retry time has come."""
    return sa.or_(IndexChange.retry_at.is_(None), IndexChange.retry_at <= utcnow())


def _apply_batch(service) -> int:
    """Index or delete the articles of up to BATCH due outbox rows; a failing article is skipped.

    Rows of articles that went in are deleted; a failing article's rows wait for a retry (see
    ``_settle``), so the rest of the batch, and everything queued after it, still goes in.
    """
    _gen, writer = service.store.writer()
    committed = False
    try:
        with session_scope(service.app) as session:
            rows = session.execute(sa.select(IndexChange.id, IndexChange.article_id, IndexChange.queued_at,
                                             IndexChange.attempts).where(_due())
                                   .order_by(IndexChange.id).limit(BATCH)).all()
            attempts = {}
            for row in rows:
                attempts[row.article_id] = min(attempts.get(row.article_id, row.attempts), row.attempts)
            articles = {a.id: a for a in session.scalars(sa.select(Article).where(Article.id.in_(attempts)))}
            failed = {}
            for article_id in sorted(attempts):
                last_try = attempts[article_id] + 1 >= MAX_ATTEMPTS
                problem = _apply_one(service, writer, rows, article_id, articles.get(article_id), last_try)
                if problem:
                    failed[article_id] = problem
            writer.commit()
            committed = True
        _settle(service.app, rows, failed)
        return len(rows)
    finally:
        if not committed:
            writer.cancel()


def _apply_one(service, writer, rows, article_id: int, article: Article | None, last_try: bool) -> str:
    """Bring one article's index entry up to date; returns why it must be tried again ("" if done)."""
    if article is None or article.status != "published":
        writer.delete_by_term("id", str(article_id))
        return ""
    try:
        doc = document(article)
    except Exception as exc:  # noqa: BLE001 - one bad article must not hold up the others
        log.warning("search indexer: skipping article %s", article_id, exc_info=True)
        return _record_failure(article, exc, last_try)
    try:
        writer.update_document(**doc)
    except Exception as exc:
        # The writer may hold half of this document: record why, and let the batch start again without it.
        _settle(service.app, [row for row in rows if row.article_id == article_id],
                {article_id: _record_failure(article, exc, last_try)}, article_problem=article.index_error)
        raise
    article.index_error = ""
    if render_cache.needs_retry(article):
        if not last_try:
            return "the server was too busy to render the article; trying again"
        render_cache.accept(article)
    return ""


def _record_failure(article: Article, exc: Exception, last_try: bool) -> str:
    """Note on the article, for agents, why search skips it; returns the reason."""
    reason = f"{type(exc).__name__}: {exc}"[:500]
    article.index_error = (f"Search skips this article ({reason}). Save the article to try again." if last_try
                           else f"Search could not take this article yet ({reason}); kb tries again shortly.")
    return reason


def _settle(app, rows, failed: dict[int, str], article_problem: str | None = None) -> None:
    """Delete the rows of articles that went in; give failed ones a retry time, or give up on them.

    An article's attempts count from its newest row, so saving it again starts the count over.
    """
    done = [(row.id, row.queued_at) for row in rows if row.article_id not in failed]
    _delete_outbox_rows(app, done)
    if not failed:
        return
    with session_scope(app) as session:
        for article_id, reason in failed.items():
            mine = [row for row in rows if row.article_id == article_id]
            tries = min(row.attempts for row in mine) + 1
            match = sa.tuple_(IndexChange.id, IndexChange.queued_at).in_([(row.id, row.queued_at) for row in mine])
            if tries >= MAX_ATTEMPTS:
                session.execute(sa.delete(IndexChange).where(match))
            else:
                session.execute(sa.update(IndexChange).where(match).values(
                    attempts=tries, last_error=reason, retry_at=utcnow() + timedelta(seconds=RETRY_DELAYS[tries - 1])))
            if article_problem is not None:
                session.execute(sa.update(Article).where(Article.id == article_id).values(index_error=article_problem))


def rebuild(service, progress: Callable[[int, int], None] | None = None) -> int:
    """Build a new generation from the published articles, switch to it; returns the count."""
    with service.store.rebuild_lock(), service.write_lock:
        count = _rebuild_locked(service, progress)
    service.stale = False  # whatever failed at start, the index is now made from the database
    return count


def _rebuild_locked(service, progress) -> int:
    """The rebuild itself; the caller holds the rebuild and write locks."""
    store, app = service.store, service.app
    old = store.current()
    # Hold the old generation's write lock so no other process indexes into it meanwhile.
    old_writer = _try_writer(store, old)
    try:
        with session_scope(app) as session:
            seen = _outbox_keys(session)
        with session_scope(app) as session:
            articles = list(session.scalars(sa.select(Article).where(Article.status == "published").order_by(Article.id)))
            examples = examples_by_article(session)  # one query, not one per article
            gen = store.create_generation()
            writer = store.index(gen).writer(limitmb=128)
            if progress:
                progress(0, len(articles))
            indexed = 0
            for done, article in enumerate(articles, 1):
                indexed += _add_for_rebuild(writer, article, examples.get(article.id, []))
                if progress:
                    progress(done, len(articles))
            writer.commit()
        store.switch(gen)
        _delete_outbox_rows(app, seen)
        with session_scope(app) as session:
            render_cache.queue_stale(session)  # plain-text stand-ins of a busy moment get another try
        return indexed
    finally:
        if old_writer is not None:
            old_writer.cancel()


def _add_for_rebuild(writer, article: Article, examples) -> int:
    """Add one article and its examples to a new generation; 0 (the reason noted for agents) if it fails."""
    try:
        doc = document(article, examples)
    except Exception as exc:  # noqa: BLE001 - one bad article must not stop the rebuild
        log.warning("search rebuild: skipping article %s", article.id, exc_info=True)
        _record_failure(article, exc, last_try=True)
        return 0
    writer.add_document(**doc)
    article.index_error = ""
    return 1


def _try_writer(store, gen):
    """A writer on ``gen`` if it can be had (a broken old index must not block a rebuild)."""
    if gen is None:
        return None
    try:
        return store.writer(gen)[1]
    except Exception:  # noqa: BLE001 - the old index is about to be replaced anyway
        log.warning("could not lock the old search index %s; rebuilding anyway", gen, exc_info=True)
        return None


def _outbox_keys(session) -> list[tuple]:
    """(id, queued_at) of every queued row."""
    return [tuple(row) for row in session.execute(sa.select(IndexChange.id, IndexChange.queued_at))]


def _delete_outbox_rows(app, keys: list[tuple]) -> None:
    """Delete exactly the rows read earlier, by (id, queued_at).

    SQLite reuses the ids of deleted rows, so an id alone could name a newer row queued by
    another process after this one read the outbox; its queued_at is always later.
    """
    with session_scope(app) as session:
        for start in range(0, len(keys), BATCH):
            chunk = keys[start:start + BATCH]
            session.execute(sa.delete(IndexChange).where(
                sa.tuple_(IndexChange.id, IndexChange.queued_at).in_(chunk)))


def lag_seconds(service) -> float:
    """Age in seconds of the oldest queued change (0 when the queue is empty)."""
    with session_scope(service.app) as session:
        oldest = session.scalar(sa.select(sa.func.min(IndexChange.queued_at)))
    return max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0


def is_stale(service) -> bool:
    """Whether the index is missing, of another schema, or differs from the published articles."""
    store = service.store
    gen = store.current()
    if gen is None or store.schema_version(gen) != SCHEMA_VERSION:
        return True
    with session_scope(service.app) as session:
        published = session.execute(sa.select(Article.id, Article.updated_at, Article.index_error)
                                     .where(Article.status == "published")).all()
        examples = examples_by_article(session)
    # Articles search could not take are missing from the index on purpose: no rebuild for them.
    skipped = {str(a.id) for a in published if a.index_error}
    in_db = {(str(a.id), stamp(a, examples.get(a.id, []))) for a in published if not a.index_error}
    try:
        with store.index(gen).searcher() as searcher:
            in_index = {(fields["id"], fields.get("updated", "")) for fields in searcher.all_stored_fields()
                        if fields["id"] not in skipped}
    except Exception:  # noqa: BLE001 - an unreadable index is simply rebuilt
        log.warning("the search index %s is unreadable; rebuilding it", gen, exc_info=True)
        return True
    return in_db != in_index


def ensure_fresh(service) -> bool:
    """On start: rebuild a missing or stale index, then clear the outbox; returns if it rebuilt."""
    with service.store.rebuild_lock(), service.write_lock:
        with session_scope(service.app) as session:
            seen = _outbox_keys(session)
        if is_stale(service):
            _rebuild_locked(service, None)
            return True
        _delete_outbox_rows(service.app, seen)
        with session_scope(service.app) as session:
            render_cache.queue_stale(session)  # e.g. after an upgrade of the renderer
        return False


class Indexer(threading.Thread):
    """Drains the outbox every INDEXER_POLL_SECONDS, and at once when woken by a commit."""

    def __init__(self, service, poll: float):
        super().__init__(name="kb-indexer", daemon=True)
        self.service, self.poll = service, poll
        self.stopping = threading.Event()
        self.fresh_retry_at, self.fresh_failures = 0.0, 0

    def run(self) -> None:
        """Loop until stopped; an error is logged and the loop goes on."""
        wake = self.service.wake
        while not self.stopping.is_set():
            wake.wait(self.poll)
            wake.clear()
            if self.stopping.is_set():
                break
            try:
                self._make_fresh_if_needed()
                process_outbox(self.service)
            except Exception:  # noqa: BLE001 - the thread must survive a bad batch or a busy lock
                log.exception("search indexer: applying queued changes failed; will retry")

    def _make_fresh_if_needed(self) -> None:
        """Retry the start-up freshness check that failed, waiting longer after each failure."""
        if not self.service.stale or time.monotonic() < self.fresh_retry_at:
            return
        self.fresh_failures += 1
        self.fresh_retry_at = time.monotonic() + min(300, 5 * 2 ** self.fresh_failures)
        ensure_fresh(self.service)
        self.service.stale, self.fresh_failures = False, 0

    def stop(self) -> None:
        """Ask the loop to end and wait for it."""
        self.stopping.set()
        self.service.wake.set()
        self.join(timeout=15)
