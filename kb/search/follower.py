"""Following the change feed: apply the changes past this index's cursor, then move the cursor.

One writer at a time: the process takes the index folder's feed lock and the Whoosh write lock
*before* it reads the cursor, the rows and the articles, so two processes can never apply an
older state over a newer one, and the cursor moves only under those locks. Applying a change
twice is harmless (an article's entry is replaced by its current state), skipping one is not: the
cursor is saved only after the Whoosh commit. An article that fails is skipped and tried again
(MAX_ATTEMPTS in all, RETRY_DELAYS apart) with its retry state in the cursor, so it never holds
up the changes after it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from kb import render_cache
from kb.db import session_scope
from kb.models import Article, utcnow
from kb.search import cursor as cursors
from kb.search import feed
from kb.search.cursor import Cursor, Retry
from kb.search.schema import document, failure_reason, record_failure

log = logging.getLogger(__name__)
BATCH = 500
# An article that fails is tried this many times in all, waiting RETRY_DELAYS seconds in between.
MAX_ATTEMPTS = 3
RETRY_DELAYS = (10, 60)


class FeedGap(Exception):
    """The index cannot follow the feed (no cursor, or a purge deleted changes it never applied): rebuild it."""


def follow(service, now: datetime | None = None) -> int:
    """Apply every settled change past the cursor and the due retries; returns how many feed rows were applied."""
    now = now or utcnow()
    if not has_work(service, now):
        return 0
    done = 0
    with service.write_lock, service.store.feed_lock():
        while True:
            count = _apply_batch(service, now)
            done += count
            if count < BATCH:
                return done


def current_cursor(service) -> Cursor | None:
    """The cursor of the current generation (None if there is no index or it has no cursor)."""
    gen = service.store.current()
    return cursors.load(service.store.folder(gen)) if gen is not None else None


def has_work(service, now: datetime) -> bool:
    """Whether a change or a retry is due (a cheap look before taking the locks); FeedGap if it must rebuild."""
    cursor = current_cursor(service)
    if cursor is None:
        raise FeedGap("the search index has no feed cursor")
    if any(r.due is not None and r.due <= now for r in cursor.retries.values()):
        return True
    with session_scope(service.app) as session:
        if feed.gap(session, cursor.position):
            raise FeedGap("changes this index never applied were purged from the feed")
        return bool(feed.read(session, cursor.position, 1))


def _apply_batch(service, now: datetime) -> int:
    """Apply up to BATCH feed rows and the due retries, commit, move the cursor; returns the rows read."""
    gen, writer = service.store.writer()
    folder, committed = service.store.folder(gen), False
    try:
        cursor = cursors.load(folder)  # read under the locks: another process may have moved it
        if cursor is None:
            raise FeedGap("the search index has no feed cursor")
        with session_scope(service.app) as session:
            if feed.gap(session, cursor.position):
                raise FeedGap("changes this index never applied were purged from the feed")
            rows = feed.read(session, cursor.position, BATCH)
            work = _plan(cursor, rows, now)
            articles = {a.id: a for a in session.scalars(sa.select(Article).where(Article.id.in_(work)))}
            failed = {}
            for article_id in sorted(work):
                last_try = work[article_id] + 1 >= MAX_ATTEMPTS
                try:
                    problem = _apply_one(writer, articles.get(article_id), article_id, last_try)
                except Exception as exc:
                    # The writer may hold half of this document: note the failure, and let the batch start again without it.
                    _fail(cursor, article_id, work[article_id], _seen(rows, article_id), failure_reason(exc), now)
                    cursors.save(folder, cursor)
                    if article_id in articles:
                        _note_problem(service.app, articles[article_id], exc, last_try)
                    raise
                if problem:
                    failed[article_id] = problem
            writer.commit()
            committed = True
        service.on_change()
        _settle(cursor, rows, work, failed, now)
        cursors.save(folder, cursor)
        return len(rows)
    finally:
        if not committed:
            writer.cancel()


def _plan(cursor: Cursor, rows, now: datetime) -> dict[int, int]:
    """Articles to apply now -> their attempts so far (a new change starts the count over)."""
    work: dict[int, int] = {}
    for row in rows:
        retry = cursor.retries.get(row.article_id)
        if row.article_id == feed.MARK:
            continue
        if retry is None or feed.position_of(row) > retry.seen:
            work[row.article_id] = 0
    for article_id, retry in cursor.retries.items():
        if article_id not in work and retry.due is not None and retry.due <= now:
            work[article_id] = retry.attempts
    return work


def _apply_one(writer, article: Article | None, article_id: int, last_try: bool) -> str:
    """Bring one article's index entry up to date; returns why it must be tried again ("" if done)."""
    if article is None or article.status != "published":
        writer.delete_by_term("id", str(article_id))
        return ""
    try:
        doc = document(article)
    except Exception as exc:  # noqa: BLE001 - one bad article must not hold up the others
        log.warning("search indexer: skipping article %s", article_id, exc_info=True)
        return record_failure(article, exc, last_try)
    writer.update_document(**doc)  # a failure here is handled by the caller (the writer may be broken)
    article.index_error = ""
    if render_cache.needs_retry(article):
        if not last_try:
            return "the server was too busy to render the article; trying again"
        render_cache.accept(article)
    return ""


def _note_problem(app, article: Article, exc: Exception, last_try: bool) -> None:
    """Note why search skips the article, in a session of its own (the batch's session is rolled back)."""
    record_failure(article, exc, last_try)
    with session_scope(app) as session:
        session.execute(sa.update(Article).where(Article.id == article.id).values(index_error=article.index_error))


def _seen(rows, article_id: int):
    """The newest position of the article's changes in ``rows`` (the feed's start if none)."""
    return max((feed.position_of(row) for row in rows if row.article_id == article_id), default=feed.START)


def _fail(cursor: Cursor, article_id: int, attempts: int, seen, reason: str, now: datetime) -> None:
    """Give a failed article its next retry time, or give up on it after MAX_ATTEMPTS."""
    tries = attempts + 1
    old = cursor.retries.get(article_id)
    seen = max(seen, old.seen) if old is not None else seen
    due = now + timedelta(seconds=RETRY_DELAYS[tries - 1]) if tries < MAX_ATTEMPTS else None
    cursor.retries[article_id] = Retry(tries, due, seen, reason)


def _settle(cursor: Cursor, rows, work: dict[int, int], failed: dict[int, str], now: datetime) -> None:
    """Move the cursor past ``rows``; note failures, forget what went in (and given-up articles passed)."""
    for article_id, attempts in work.items():
        if article_id in failed:
            _fail(cursor, article_id, attempts, _seen(rows, article_id), failed[article_id], now)
        else:
            cursor.retries.pop(article_id, None)
    if rows:
        cursor.position = feed.position_of(rows[-1])
    for article_id, retry in list(cursor.retries.items()):
        if retry.due is None and retry.seen <= cursor.position:
            del cursor.retries[article_id]  # given up; a new change of it starts over


def lag_seconds(service, now: datetime | None = None) -> float:
    """Age in seconds of the oldest change past this index's cursor (every change if it has none; 0 when none)."""
    found = current_cursor(service)
    with session_scope(service.app) as session:
        oldest = feed.oldest_after(session, found.position if found is not None else feed.START)
    return max(0.0, ((now or utcnow()) - oldest).total_seconds()) if oldest is not None else 0.0
