"""Keeping the index in step with the database: the outbox drain, full rebuilds, the thread.

Domain functions queue article ids in ``index_outbox`` in the same transaction as the change.
One writer at a time applies them: it takes the Whoosh write lock *before* reading the rows
and articles, so two processes can never apply an older state over a newer one.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

import sqlalchemy as sa

from kb.db import session_scope
from kb.models import Article, IndexOutbox
from kb.search.schema import SCHEMA_VERSION, document, stamp

log = logging.getLogger(__name__)
BATCH = 500


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
    """Whether the outbox holds anything (a cheap check before taking the write lock)."""
    with session_scope(app) as session:
        return session.scalar(sa.select(IndexOutbox.id).limit(1)) is not None


def _apply_batch(service) -> int:
    """Index or delete the articles of up to BATCH outbox rows, then delete exactly those rows."""
    _gen, writer = service.store.writer()
    committed = False
    try:
        with session_scope(service.app) as session:
            rows = session.execute(sa.select(IndexOutbox.id, IndexOutbox.article_id, IndexOutbox.queued_at)
                                   .order_by(IndexOutbox.id).limit(BATCH)).all()
            ids = {row.article_id for row in rows}
            articles = {a.id: a for a in session.scalars(sa.select(Article).where(Article.id.in_(ids)))}
            for article_id in sorted(ids):
                article = articles.get(article_id)
                if article is not None and article.status == "published":
                    writer.update_document(**document(article))
                else:
                    writer.delete_by_term("id", str(article_id))
            writer.commit()
            committed = True
        _delete_outbox_rows(service.app, [(row.id, row.queued_at) for row in rows])
        return len(rows)
    finally:
        if not committed:
            writer.cancel()


def rebuild(service, progress: Callable[[int, int], None] | None = None) -> int:
    """Build a new generation from the published articles, switch to it; returns the count."""
    with service.store.rebuild_lock(), service.write_lock:
        return _rebuild_locked(service, progress)


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
            gen = store.create_generation()
            writer = store.index(gen).writer(limitmb=128)
            if progress:
                progress(0, len(articles))
            for done, article in enumerate(articles, 1):
                writer.add_document(**document(article))
                if progress:
                    progress(done, len(articles))
            writer.commit()
        store.switch(gen)
        _delete_outbox_rows(app, seen)
        return len(articles)
    finally:
        if old_writer is not None:
            old_writer.cancel()


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
    return [tuple(row) for row in session.execute(sa.select(IndexOutbox.id, IndexOutbox.queued_at))]


def _delete_outbox_rows(app, keys: list[tuple]) -> None:
    """Delete exactly the rows read earlier, by (id, queued_at).

    SQLite reuses the ids of deleted rows, so an id alone could name a newer row queued by
    another process after this one read the outbox; its queued_at is always later.
    """
    with session_scope(app) as session:
        for start in range(0, len(keys), BATCH):
            chunk = keys[start:start + BATCH]
            session.execute(sa.delete(IndexOutbox).where(
                sa.tuple_(IndexOutbox.id, IndexOutbox.queued_at).in_(chunk)))


def is_stale(service) -> bool:
    """Whether the index is missing, of another schema, or differs from the published articles."""
    store = service.store
    gen = store.current()
    if gen is None or store.schema_version(gen) != SCHEMA_VERSION:
        return True
    with session_scope(service.app) as session:
        in_db = {(str(a.id), stamp(a)) for a in session.scalars(
            sa.select(Article).where(Article.status == "published"))}
    try:
        with store.index(gen).searcher() as searcher:
            in_index = {(fields["id"], fields.get("updated", "")) for fields in searcher.all_stored_fields()}
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
        return False


class Indexer(threading.Thread):
    """Drains the outbox every INDEXER_POLL_SECONDS, and at once when woken by a commit."""

    def __init__(self, service, poll: float):
        super().__init__(name="kb-indexer", daemon=True)
        self.service, self.poll = service, poll
        self.stopping = threading.Event()

    def run(self) -> None:
        """Loop until stopped; an error is logged and the loop goes on."""
        wake = self.service.wake
        while not self.stopping.is_set():
            wake.wait(self.poll)
            wake.clear()
            if self.stopping.is_set():
                break
            try:
                process_outbox(self.service)
            except Exception:  # noqa: BLE001 - the thread must survive a bad batch or a busy lock
                log.exception("search indexer: applying queued changes failed; will retry")

    def stop(self) -> None:
        """Ask the loop to end and wait for it."""
        self.stopping.set()
        self.service.wake.set()
        self.join(timeout=15)
