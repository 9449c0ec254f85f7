"""Keeping the index in step with the database: following the change feed, full rebuilds, the thread.

Domain functions queue article ids in ``index_changes`` in the same transaction as the change.
Every host's index follows that feed from its own cursor (kb.search.follower, kb.search.feed); a
host whose index has no cursor, or missed changes a purge deleted, rebuilds aside and switches in.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Callable

import sqlalchemy as sa
from whoosh.index import LockError

from kb import render_cache
from kb.db import session_scope
from kb.models import Article
from kb.search import build
from kb.search import cursor as cursors
from kb.search import feed, follower, freshness
from kb.search.cursor import Cursor
from kb.search.follower import MAX_ATTEMPTS, RETRY_DELAYS, FeedGap, record_failure  # noqa: F401 (used by tests)
from kb.search.schema import SCHEMA_VERSION, examples_by_article, stamp

log = logging.getLogger(__name__)


def process_outbox(service, now: datetime | None = None) -> int:
    """Apply the feed's changes past this index's cursor; returns how many feed rows were applied.

    An index that vanished while running, or cannot follow the feed any more, is rebuilt instead.
    """
    if service.store.current() is None:
        return rebuild(service)
    try:
        return follower.follow(service, now)
    except FeedGap as gap:
        log.warning("search index: %s; rebuilding it", gap)
        return rebuild(service)


def rebuild(service, progress: Callable[[int, int], None] | None = None) -> int:
    """Build a new generation from the published articles, switch to it; returns the count."""
    with service.store.rebuild_lock(), service.write_lock:
        count = _rebuild_locked(service, progress)
        freshness.mark_checked(service)
    service.problem = None  # whatever failed at start, the index is now made from the database
    return count


def _rebuild_locked(service, progress) -> int:
    """The rebuild itself; the caller holds the rebuild and write locks."""
    store, app = service.store, service.app
    old = store.current()
    # Hold the old generation's write lock so no other process indexes into it meanwhile.
    old_writer = _try_writer(store, old)
    try:
        # The feed position before the articles are read: what commits meanwhile is applied after.
        with session_scope(app) as session:
            start = feed.head(session)
        with session_scope(app) as session:
            gen = store.create_generation()
            indexed = build.build(session, store.index(gen), progress)  # in worker processes when many
        cursors.save(store.folder(gen), Cursor(start))  # inside the generation: it switches in with it
        store.switch(gen)
        service.on_change()
        with session_scope(app) as session:
            # Plain-text stand-ins of a busy moment get another try.
            render_cache.queue_stale(session, feed.after(session, start))
        return indexed
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


def lag_seconds(service, now: datetime | None = None) -> float:
    """Age in seconds of the oldest change this host's index has not applied (0 when caught up)."""
    return follower.lag_seconds(service, now)


def is_stale(service) -> bool:
    """Whether the index is missing, of another schema, or differs from the published articles.

    Articles with a change past the cursor (not applied yet) or waiting for a retry are left out:
    the follower brings them in, no rebuild is needed for them.
    """
    store = service.store
    gen = store.current()
    if gen is None or store.schema_version(gen) != SCHEMA_VERSION:
        return True
    found = cursors.load(store.folder(gen))
    with session_scope(service.app) as session:
        pending = {str(i) for i in feed.pending_articles(session, found.position)} if found else set()
        published = session.execute(sa.select(Article.id, Article.updated_at, Article.index_error)
                                     .where(Article.status == "published")).all()
        examples = examples_by_article(session)
    pending |= {str(i) for i in (found.retries if found else {})}
    # Articles search could not take are missing from the index on purpose: no rebuild for them.
    skipped = pending | {str(a.id) for a in published if a.index_error}
    in_db = {(str(a.id), stamp(a, examples.get(a.id, []))) for a in published if str(a.id) not in skipped}
    try:
        with store.index(gen).searcher() as searcher:
            in_index = {(fields["id"], fields.get("updated", "")) for fields in searcher.all_stored_fields()
                        if fields["id"] not in skipped}
    except Exception:  # noqa: BLE001 - an unreadable index is simply rebuilt
        log.warning("the search index %s is unreadable; rebuilding it", gen, exc_info=True)
        return True
    return in_db != in_index


def ensure_fresh(service) -> bool:
    """Make the index fresh now, waiting for it (apps without the indexer thread); True if rebuilt.

    Only the cheap check: the full comparison of every article is the indexer thread's (``settle``).
    """
    with service.store.rebuild_lock():
        rebuilt = _settle_locked(service, full=False)
    service.problem = None
    return rebuilt


def settle(service) -> bool:
    """The indexer thread's start-up work: rebuild aside if needed and compare every article once.

    Never waits for the rebuild lock: False (nothing done) while another thread or process rebuilds,
    which leaves a fresh generation that this process then just uses.
    """
    with service.store.try_rebuild_lock() as locked:
        if not locked:
            return False
        _settle_locked(service, full=freshness.full_check_due(service))
    service.problem = None
    return True


def _settle_locked(service, full: bool) -> bool:
    """Catch up from the cursor, or rebuild aside; ``full`` also compares every article. The caller holds the rebuild lock."""
    problem = freshness.start_problem(service)  # again: another process may have rebuilt it meanwhile
    if problem is None:
        try:
            follower.follow(service)  # a host that was down catches up from its cursor
        except FeedGap as gap:
            problem = str(gap)
    if problem is None and full and is_stale(service):
        problem = "the search index differs from the published articles"
    if problem is not None:
        log.info("search index: %s; rebuilding it aside", problem)
        service.problem = problem
        with service.write_lock:
            _rebuild_locked(service, None)
        freshness.mark_checked(service)
        return True
    if full:
        freshness.mark_checked(service)
    found = follower.current_cursor(service)
    with session_scope(service.app) as session:
        # e.g. after an upgrade of the renderer; an article queued and not yet applied here is not queued twice.
        render_cache.queue_stale(session, feed.after(session, found.position if found else feed.START))
    return False


class Indexer(threading.Thread):
    """Settles the index once (``settle``), then follows the change feed every INDEXER_POLL_SECONDS
    and at once when woken by a local commit."""

    def __init__(self, service, poll: float):
        super().__init__(name="kb-indexer", daemon=True)
        self.service, self.poll = service, poll
        self.stopping = threading.Event()
        self.unsettled = True
        self.retry_at, self.failures = 0.0, 0

    def run(self) -> None:
        """Loop until stopped; an error is logged and the loop goes on."""
        wake, first = self.service.wake, True
        while not self.stopping.is_set():
            if not first:  # the start-up work begins at once
                wake.wait(self.poll)
                wake.clear()
            first = False
            if self.stopping.is_set():
                break
            try:
                if self.unsettled and not self._settle():
                    continue
                if self.service.store.rebuild_running():
                    continue  # the new generation brings every change in: waiting for its lock would only fail
                process_outbox(self.service)
            except LockError:
                log.info("search indexer: the index is busy (a rebuild?); will retry")
            except Exception:  # noqa: BLE001 - the thread must survive a bad batch or a busy lock
                log.exception("search indexer: applying queued changes failed; will retry")

    def _settle(self) -> bool:
        """The start-up work (``settle``), tried again later, waiting longer after each failure; True once done."""
        if time.monotonic() < self.retry_at:
            return False
        try:
            done = settle(self.service)
        except Exception:
            self.failures += 1
            self.retry_at = time.monotonic() + min(300, 2 ** self.failures)
            raise
        if done:
            self.unsettled, self.failures = False, 0
        return done

    def stop(self) -> None:
        """Ask the loop to end and wait for it."""
        self.stopping.set()
        self.service.wake.set()
        self.join(timeout=15)
