"""Cheap looks at a Whoosh index at start: can it serve and follow the feed as it is, is a full comparison due?

``start_problem`` never reads articles one by one (that is ``kb.search.indexer.is_stale``, run by the
indexer thread in the background); the ``CHECKED.json`` mark lets workers booting together compare
every article once, not once each.
"""

from __future__ import annotations

import json
import logging
import os

import sqlalchemy as sa

from kb.capture import examples as kb_examples
from kb.db import session_scope
from kb.models import Article
from kb.search import cursor as cursors
from kb.search import feed, follower
from kb.search.cursor import Cursor
from kb.search.schema import SCHEMA_VERSION

log = logging.getLogger(__name__)
MAX_ASIDE = 2000  # articles in flux the start-up count looks up one by one, at most
CHECKED = "CHECKED.json"  # a generation's mark: the state (``fingerprint``) it was built or fully compared at


def start_problem(service) -> str | None:
    """Why the index cannot serve and follow the feed as it is, found cheaply; None if it can.

    No per-article work (that is ``is_stale``, run by the indexer thread): the generation, its schema
    version and cursor, the feed, and the count of published articles against the index's.
    """
    store = service.store
    gen = store.current()
    if gen is None:
        return "there is no search index"
    if store.schema_version(gen) != SCHEMA_VERSION:
        return "the search index was built by another version of kb"
    found = cursors.load(store.folder(gen))
    if found is None:
        return "the search index has no feed cursor"
    with session_scope(service.app) as session:
        if feed.gap(session, found.position):
            return "changes the search index never applied were purged from the feed"
        if feed.head(session) < found.position:
            return "the search index is newer than the database (was the database restored?)"
        return _count_problem(service, gen, found, session)


def _count_problem(service, gen: str, found: Cursor, session) -> str | None:
    """Whether the index holds as many articles as the database has published, leaving aside the few in flux."""
    published = sa.and_(Article.status == "published", Article.index_error == "")
    # Changed past the cursor, waiting for a retry, or skipped: the follower deals with these.
    aside = feed.pending_articles(session, found.position) | set(found.retries)
    aside |= set(session.scalars(sa.select(Article.id).where(Article.status == "published", Article.index_error != "")))
    if len(aside) > MAX_ASIDE:
        return None  # too many to look up one by one: the indexer thread's full comparison decides
    in_db = session.scalar(sa.select(sa.func.count()).select_from(Article)
                           .where(published, Article.id.not_in(aside) if aside else sa.true()))
    try:
        with service.store.index(gen).searcher() as searcher:
            in_index = searcher.doc_count() - sum(searcher.document_number(id=str(i)) is not None for i in aside)
    except Exception:  # noqa: BLE001 - an unreadable index is simply rebuilt
        log.warning("the search index %s is unreadable", gen, exc_info=True)
        return "the search index is unreadable"
    if in_db != in_index:
        return f"the search index holds {in_index} articles, the database {in_db}"
    return None


def fingerprint(service) -> dict:
    """What changes when articles or examples change, even behind the feed's back: counts, newest edit, cursor."""
    found = follower.current_cursor(service)
    with session_scope(service.app) as session:
        count, newest = session.execute(sa.select(sa.func.count(), sa.func.max(Article.updated_at))
                                        .where(Article.status == "published")).one()
        return {"position": list(found.position) if found else None, "published": count,
                "newest": newest.isoformat() if newest else None, "examples": kb_examples.version(session)}


def full_check_due(service) -> bool:
    """Whether the current generation was not built, or compared article by article, at this very state.

    Workers booting together (gunicorn starts them all at once) compare every article once, not once each.
    """
    gen = service.store.current()
    try:
        marked = json.loads((service.store.folder(gen) / CHECKED).read_text(encoding="utf-8"))
    except (OSError, TypeError, ValueError):
        return True
    return marked != fingerprint(service)


def mark_checked(service) -> None:
    """Note in the current generation the state it was built at, or fully compared with the database at."""
    gen = service.store.current()
    if gen is not None:
        path = service.store.folder(gen) / CHECKED
        tmp = path.with_name(f".{CHECKED}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(fingerprint(service)), encoding="utf-8")
        os.replace(tmp, path)
