"""Whoosh hosts follow the kept change feed: each its own index and cursor on one shared database.

Covers SQLite and PostgreSQL (``shared_db_url``), a host that was down catching up, a host that
missed purged changes rebuilding, the daily purge, and commits on PostgreSQL in another order than
their ids and transaction ids were given out.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from kb import jobs, search
from kb.articles import ArticleDraft, create_article, set_status
from kb.db import get_db, session_scope
from kb.jobs.runner import Runner
from kb.jobs.models import Job
from kb.models import Article, IndexChange, utcnow
from kb.search import cursor as cursors
from kb.search import build, feed, follower, indexer
from kb.web import create_app
from tests.conftest import close_app, make_config
from tests.test_search_index import found, outbox_size, publish


@pytest.fixture
def hosts(shared_db_url, tmp_path):
    """Factory: ``hosts("a")`` starts host "a" (its own instance and index folders) on the shared database."""
    made = []

    def start(name: str, **overrides):
        app = create_app(make_config(tmp_path / name, DATABASE_URL=shared_db_url, **overrides))
        made.append(app)
        return app

    yield start
    for app in made:
        close_app(app)


def current(app) -> str:
    """The host's current index generation."""
    return app.extensions["kb.search"].store.current()


def feed_rows(app) -> list[int]:
    """Article ids of every kept change, in id order (marks are 0)."""
    with session_scope(app) as session:
        return list(session.scalars(sa.select(IndexChange.article_id).order_by(IndexChange.id)))


def test_two_hosts_on_one_database_each_apply_every_change(hosts):
    a, b = hosts("a"), hosts("b")
    kayak = publish(a, "Kayak paddles")
    canoe = publish(b, "Canoe paddles")
    assert search.process_outbox(a) == 2 and search.process_outbox(b) == 2  # each host applies both
    for host in (a, b):
        assert sorted(found(host, "paddles")) == sorted([kayak, canoe])
    with session_scope(b) as session:
        set_status(session, session.get(Article, kayak), "archived")
    search.process_outbox(a)
    search.process_outbox(b)
    assert found(a, "paddles") == found(b, "paddles") == [canoe]
    assert feed_rows(a) == [kayak, canoe, kayak]  # kept for every host, not deleted by the first
    assert indexer.lag_seconds(a.extensions["kb.search"]) == 0.0


def test_a_host_that_was_down_catches_up_from_its_cursor_without_a_rebuild(hosts):
    a, b = hosts("a"), hosts("b")
    first = publish(a, "Tent pole 0")
    search.process_outbox(b)
    gen = current(b)
    close_app(b)
    ids = [publish(a, f"Tent pole {n}") for n in range(1, 6)]
    with session_scope(a) as session:
        set_status(session, session.get(Article, first), "draft")
    back = hosts("b")
    assert current(back) == gen and outbox_size(back) == 0  # caught up from its cursor
    assert sorted(found(back, "tent", per_page=50)) == sorted(ids)


def test_an_index_without_a_cursor_is_rebuilt_on_start(hosts):
    a = hosts("a")
    article_id = publish(a, "Rain cover")
    gen = current(a)
    (Path(a.config["INDEX_DIR"]) / gen / cursors.FILE).unlink()  # as an index made by an older kb
    again = hosts("a")
    assert current(again) != gen and found(again, "rain") == [article_id]
    assert cursors.load(Path(again.config["INDEX_DIR"]) / current(again)) is not None


def age(app, days: float) -> None:
    """Make every change in the feed ``days`` old."""
    with session_scope(app) as session:
        session.execute(sa.update(IndexChange).values(queued_at=utcnow() - timedelta(days=days)))


def test_a_host_whose_cursor_is_older_than_the_oldest_kept_change_rebuilds(hosts):
    a, b = hosts("a"), hosts("b")
    old = publish(a, "Bivvy bag")
    search.process_outbox(b)
    gen = current(b)
    close_app(b)
    missed = [publish(a, f"Camp stove {n}") for n in range(3)]
    search.process_outbox(a)
    age(a, 8)
    with session_scope(a) as session:
        assert feed.purge(session, utcnow() - timedelta(days=7)) == 3  # all but the newest, now the mark
    assert feed_rows(a) == [feed.MARK]
    later = publish(a, "Camp chair")
    back = hosts("b")  # its cursor is before the mark: changes it never applied are gone
    assert current(back) != gen
    assert sorted(found(back, "camp", per_page=50)) == sorted([*missed, later]) and found(back, "bivvy") == [old]
    assert found(a, "chair") == []
    assert search.process_outbox(a) == 1 and current(a) is not None  # a's cursor is past the mark: it follows
    assert found(a, "chair") == [later]


def test_a_running_host_that_missed_purged_changes_rebuilds(hosts):
    a, b = hosts("a"), hosts("b")
    publish(a, "Sleeping bag")
    search.process_outbox(b)
    gen = current(b)
    missed = [publish(a, f"Sleeping mat {n}") for n in range(2)]
    age(a, 8)
    with session_scope(a) as session:
        feed.purge(session, utcnow() - timedelta(days=7))
    search.process_outbox(b)  # what b's indexer thread does on its next poll
    assert current(b) != gen and sorted(found(b, "mat")) == sorted(missed)


def test_the_daily_purge_keeps_changes_younger_than_index_feed_days(hosts):
    a = hosts("a", INDEX_FEED_DAYS=7)
    old = [publish(a, f"Old lantern {n}") for n in range(3)]
    age(a, 8)
    young = [publish(a, f"New lantern {n}") for n in range(2)]
    search.process_outbox(a)
    gen = current(a)
    for runner in (Runner(a), Runner(a)):  # two hosts' runners: one job a day
        runner._ensure_daily()
    with session_scope(a) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.kind == feed.KIND)) == 1
    assert jobs.run_due(a)["done"] >= 1
    assert feed_rows(a) == [feed.MARK, *young]  # the oldest change stays, as the mark
    with session_scope(a) as session:  # a second run in a day deletes nothing more
        assert feed.purge(session, utcnow() - timedelta(days=7)) == 0
    assert search.process_outbox(a) == 0 and current(a) == gen  # a caught-up host goes on following
    assert len(found(a, "lantern", per_page=50)) == len(old) + len(young)


def test_lag_is_the_age_of_the_oldest_change_past_the_cursor(hosts):
    a = hosts("a")
    service = a.extensions["kb.search"]
    assert indexer.lag_seconds(service) == 0.0
    publish(a, "Compass")
    assert indexer.lag_seconds(service, now=utcnow() + timedelta(seconds=90)) >= 90
    search.process_outbox(a)
    assert indexer.lag_seconds(service, now=utcnow() + timedelta(seconds=90)) == 0.0


def test_a_change_committed_during_a_rebuild_is_applied_after_it(hosts, monkeypatch):
    a = hosts("a")
    ids = [publish(a, f"Trekking pole {n}") for n in range(3)]
    real_documents = build.documents
    edited = []

    def read_then_edit_elsewhere(session, chunk, examples):
        docs = real_documents(session, chunk, examples)
        if not edited:  # another host saves an article after the rebuild read the articles
            with session_scope(a) as other:
                set_status(other, other.get(Article, ids[0]), "archived")
            edited.append(ids[0])
        return docs

    monkeypatch.setattr(build, "documents", read_then_edit_elsewhere)
    search.rebuild(a)
    assert sorted(found(a, "trekking")) == sorted(ids)  # the rebuild read the articles before the edit
    search.process_outbox(a)
    assert sorted(found(a, "trekking")) == sorted(ids[1:])


def open_change(app, title: str, take_xid_first: bool = False):
    """A session that published ``title`` (flushed: its change has an id and txid) but has not committed."""
    session = get_db(app).sessionmaker()
    if take_xid_first:
        session.execute(sa.select(sa.func.pg_current_xact_id()))
    create_article(session, ArticleDraft(title, f"About {title}."), status="published")
    session.flush()
    return session


def change_of(session, title: str):
    """(txid, id) of the article's change as its own session sees it."""
    article_id = session.scalar(sa.select(Article.id).where(Article.title == title))
    return session.execute(sa.select(IndexChange.txid, IndexChange.id).where(IndexChange.article_id == article_id)).one()


@pytest.mark.postgres
def test_a_transaction_that_commits_after_a_later_one_is_not_skipped(pg_database_url, tmp_path):
    app = create_app(make_config(tmp_path, DATABASE_URL=pg_database_url))
    service = app.extensions["kb.search"]
    try:
        first = open_change(app, "Kayak paddles")  # the lower id and txid, still open
        early = change_of(first, "Kayak paddles")
        second = open_change(app, "Canoe paddles")
        late = change_of(second, "Canoe paddles")
        assert (early.txid, early.id) < (late.txid, late.id)
        second.commit()
        search.process_outbox(app)
        position = follower.current_cursor(service).position
        assert position < (early.txid, early.id)  # it waits for the open transaction, never passes it
        assert found(app, "kayak") == []
        assert indexer.lag_seconds(service, now=utcnow() + timedelta(seconds=60)) >= 60  # the wait shows as lag
        first.commit()
        search.process_outbox(app)
        assert sorted(found(app, "paddles")) == sorted([early_id(app, "Kayak"), early_id(app, "Canoe")])
        assert indexer.lag_seconds(service) == 0.0
        first.close()
        second.close()
    finally:
        close_app(app)


@pytest.mark.postgres
def test_a_later_transaction_that_took_its_id_first_and_commits_last_is_not_skipped(pg_database_url, tmp_path):
    app = create_app(make_config(tmp_path, DATABASE_URL=pg_database_url))
    try:
        older = get_db(app).sessionmaker()
        older.execute(sa.select(sa.func.pg_current_xact_id()))  # the lower txid, no change yet
        newer = open_change(app, "Canoe paddles")  # the higher txid takes the lower id
        older_change = open_change_in(older, "Kayak paddles")
        newer_change = change_of(newer, "Canoe paddles")
        assert older_change.id > newer_change.id and older_change.txid < newer_change.txid
        older.commit()  # the higher id commits first
        search.process_outbox(app)
        assert found(app, "kayak") == [early_id(app, "Kayak")] and found(app, "canoe") == []
        newer.commit()  # the lower id commits last: an id cursor would be past it now
        search.process_outbox(app)
        assert sorted(found(app, "paddles")) == sorted([early_id(app, "Kayak"), early_id(app, "Canoe")])
        older.close()
        newer.close()
    finally:
        close_app(app)


def open_change_in(session, title: str):
    """Publish ``title`` in an open session and return its change's (txid, id)."""
    create_article(session, ArticleDraft(title, f"About {title}."), status="published")
    session.flush()
    return change_of(session, title)


def early_id(app, title_start: str) -> int:
    """The id of the article whose title starts with ``title_start``."""
    with session_scope(app) as session:
        return session.scalar(sa.select(Article.id).where(Article.title.startswith(title_start)))
