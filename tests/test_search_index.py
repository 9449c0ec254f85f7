"""The index follows the database: outbox, indexer thread, rebuilds, stale indexes on start."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from kb import search
from kb.articles import ArticleDraft, create_article, set_status, update_article
from kb.db import session_scope
from kb.errors import ConfigError
from kb.models import Article, IndexChange
from kb.search import feed, follower, indexer
from tests.conftest import close_app
from tests.searchbackends import BACKENDS, backend_app


@pytest.fixture
def app(request, app_factory):
    """Whoosh, unless a test asks for each search backend (parametrize "app" indirectly)."""
    return backend_app(request, app_factory, getattr(request, "param", "whoosh"))


def found(app, q: str, **kw) -> list[int]:
    """Ids of the articles a query finds, in rank order."""
    with app.app_context():
        return [hit.article_id for hit in search.query_index(q, **kw).hits]


def publish(app, title: str, body: str = "", status: str = "published", **fields) -> int:
    """Create and commit an article in its own session; returns its id."""
    with session_scope(app) as session:
        article = create_article(session, ArticleDraft(title, body or f"About {title}.", **fields), status=status)
        session.flush()
        return article.id


def outbox_size(app) -> int:
    """Changes in the feed past this app's cursor (not applied to its index yet)."""
    found = follower.current_cursor(app.extensions["kb.search"])
    with session_scope(app) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(IndexChange)
                              .where(feed.after(session, found.position)))


def wait_until(predicate, timeout: float) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_publish_edit_unpublish_archive(app):
    article_id = publish(app, "Kayak paddles", "Choose a paddle by your height.", status="draft")
    assert search.process_outbox(app) == 1 and outbox_size(app) == 0
    assert found(app, "kayak") == []

    with session_scope(app) as session:
        set_status(session, session.get(Article, article_id), "published")
    assert found(app, "kayak") == []  # not before the outbox is applied
    search.process_outbox(app)
    assert found(app, "kayak") == [article_id]

    with session_scope(app) as session:
        update_article(session, session.get(Article, article_id), ArticleDraft("Canoe paddles", "Pick a blade."))
    search.process_outbox(app)
    assert found(app, "canoe blade") == [article_id]
    assert found(app, "kayak") == [] and found(app, "height") == []

    for status in ("draft", "published", "archived"):
        with session_scope(app) as session:
            set_status(session, session.get(Article, article_id), status)
        search.process_outbox(app)
        assert found(app, "canoe") == ([article_id] if status == "published" else []), status
    assert outbox_size(app) == 0


def test_indexer_thread_applies_a_publish_within_a_second(app_factory):
    # A long poll: only the after-commit wake-up can make this fast.
    app = app_factory(INDEXER=True, INDEXER_POLL_SECONDS=30)
    article_id = publish(app, "Snowshoe rental", "Rent snowshoes by the day.")
    assert wait_until(lambda: found(app, "snowshoe") == [article_id], 1.0)
    with session_scope(app) as session:
        update_article(session, session.get(Article, article_id), ArticleDraft("Ski rental", "Rent skis by the day."))
    assert wait_until(lambda: found(app, "skis") == [article_id] and found(app, "snowshoe") == [], 1.0)
    assert wait_until(lambda: outbox_size(app) == 0, 1.0)


def test_searches_during_publishes_and_rebuilds_never_fail(app_factory, caplog):
    app = app_factory(INDEXER=True, INDEXER_POLL_SECONDS=0.05)
    stop, errors, counts = threading.Event(), [], []

    def searcher():
        with app.app_context():
            while not stop.is_set():
                try:
                    page = search.query_index("lantern battery", per_page=5)
                    counts.append(page.total)
                except Exception as exc:  # noqa: BLE001 - the test reports any failure
                    errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(2)]
    with caplog.at_level(logging.WARNING, logger="kb.search"):
        for thread in threads:
            thread.start()
        try:
            for n in range(12):
                seen = len(counts)
                assert wait_until(lambda: len(counts) > seen, 1.0)  # searches interleave with writes
                publish(app, f"Lantern {n}", f"Battery life of lantern {n}.")
                if n % 4 == 0:
                    search.process_outbox(app)
                if n == 6:
                    search.rebuild(app)
            assert wait_until(lambda: found(app, "lantern", per_page=50) and
                              len(found(app, "lantern", per_page=50)) == 12, 2.0)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert errors == []
    assert len(counts) >= 12 and max(counts) == 12
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_rebuild_builds_aside_then_switches(app):
    ids = [publish(app, f"Tent pole {n}") for n in range(3)]
    store = app.extensions["kb.search"].store
    first = store.current()
    assert found(app, "tent") == []  # queued, not yet applied
    calls = []
    assert search.rebuild(app, progress=lambda done, total: calls.append((done, total))) == 3
    assert calls[0] == (0, 3) and calls[-1] == (3, 3)
    second = store.current()
    assert second != first and outbox_size(app) == 0
    assert sorted(found(app, "tent")) == sorted(ids)
    assert (store.root / first).is_dir()  # the predecessor is kept for readers in other processes
    search.rebuild(app)
    assert not (store.root / first).exists() and (store.root / second).is_dir()
    assert sorted(found(app, "tent pole")) == sorted(ids)


def test_stale_or_missing_index_is_rebuilt_on_start(app_factory):
    app = app_factory()
    article_id = publish(app, "Rain cover", "Keeps the backpack dry.")
    search.process_outbox(app)
    index_dir = Path(app.config["INDEX_DIR"])
    gen = app.extensions["kb.search"].store.current()

    # An unchanged index is reused as it is.
    assert app_factory().extensions["kb.search"].store.current() == gen

    # Changed behind the index's back (no outbox row, same count): the indexer thread of the next
    # start compares every article and rebuilds aside.
    with session_scope(app) as session:
        session.execute(sa.update(Article).where(Article.id == article_id)
                        .values(title="Zeppelin cover", updated_at=sa.func.current_timestamp()))
    restarted = app_factory(INDEXER=True, INDEXER_POLL_SECONDS=0.05)
    assert wait_until(lambda: found(restarted, "zeppelin") == [article_id], timeout=20)
    assert restarted.extensions["kb.search"].store.current() != gen
    close_app(restarted)

    shutil.rmtree(index_dir)
    assert found(app_factory(), "zeppelin") == [article_id]

    old = app_factory().extensions["kb.search"].store.current()
    (index_dir / old / "KB_SCHEMA").write_text("0")  # as if built by an older kb
    again = app_factory()
    assert again.extensions["kb.search"].store.current() != old
    assert found(again, "zeppelin") == [article_id]


def test_start_catches_up_with_the_feed_and_keeps_it(app_factory):
    app = app_factory()
    publish(app, "Headlamp")
    assert outbox_size(app) == 1
    gen = app.extensions["kb.search"].store.current()
    restarted = app_factory()
    assert outbox_size(restarted) == 0 and restarted.extensions["kb.search"].store.current() == gen  # no rebuild
    assert found(restarted, "headlamp")
    with session_scope(app) as session:  # the change stays for the other hosts
        assert session.scalar(sa.select(sa.func.count()).select_from(IndexChange)) == 1


@pytest.mark.parametrize("app", BACKENDS, indirect=True)
def test_add_to_index_and_remove_from_index(app):
    article_id = publish(app, "Climbing rope")
    with app.app_context(), session_scope(app) as session:
        article = session.get(Article, article_id)
        search.add_to_index(article)
        assert found(app, "rope") == [article_id]
        search.remove_from_index(article_id)
        assert found(app, "rope") == []
        article.status = "draft"
        search.add_to_index(article)
        assert found(app, "rope") == []


def test_result_cache_follows_the_index(app):
    with app.app_context():
        first = search.query_index("otter")
        assert first.total == 0 and search.query_index("otter") is first  # cached
        publish(app, "Otter stickers")
        search.process_outbox(app)
        assert search.query_index("otter").total == 1


def test_close_stops_the_indexer_thread(app_factory):
    app = app_factory(INDEXER=True)
    thread = app.extensions["kb.search"].thread
    assert thread.is_alive()
    app.extensions["kb.search"].close()
    assert not thread.is_alive()


def test_searchers_are_pooled_and_replaced_when_stale(app):
    store = app.extensions["kb.search"].store
    publish(app, "Compass")
    search.process_outbox(app)
    with store.searcher() as (_gen, first):
        with store.searcher() as (_gen, second):
            assert second is not first  # in use: never shared
    with store.searcher() as (_gen, again):
        assert again in (first, second)  # reused
    publish(app, "Map case")
    search.process_outbox(app)
    with store.searcher() as (_gen, fresh):
        assert fresh not in (first, second) and fresh.up_to_date()

    def one_search():
        with app.app_context():
            search.query_index("compass")

    threads = [threading.Thread(target=one_search) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store._idle) <= 8  # short-lived threads do not pile up open searchers


def test_two_workers_share_one_index(app_factory):
    # Two apps on one database and index folder behave like two gunicorn workers.
    first, second = app_factory(), app_factory()
    article_id = publish(first, "Trekking poles")
    assert found(first, "trekking") == []
    search.process_outbox(second)  # the other worker's indexer applies it
    assert found(first, "trekking") == [article_id]  # first's pooled searcher was stale: reopened
    old_gen = first.extensions["kb.search"].store.current()
    search.rebuild(second)
    assert first.extensions["kb.search"].store.current() != old_gen
    assert found(first, "poles") == [article_id]


def test_index_folder_removed_while_running_is_rebuilt(app):
    article_id = publish(app, "Sleeping bag")
    search.process_outbox(app)
    shutil.rmtree(app.config["INDEX_DIR"])
    assert found(app, "sleeping") == []  # no index: no results, no error
    search.process_outbox(app)  # what the indexer thread does on its next poll
    assert found(app, "sleeping") == [article_id]


def test_unusable_index_folder_is_a_clear_error(app_factory, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="KB_INDEX_DIR"):
        app_factory(INDEX_DIR=str(blocker / "index"))


def test_change_ids_are_never_reused(app):
    # A follower's cursor is an id: SQLite must not hand a deleted row's id to the next change.
    publish(app, "Bivvy bag")
    with session_scope(app) as session:
        first = session.scalar(sa.select(sa.func.max(IndexChange.id)))
        session.execute(sa.delete(IndexChange))
    publish(app, "Camp stove")
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.min(IndexChange.id))) > first


def _worker(tmp: str, n: int) -> None:
    """One 'gunicorn worker': publishes, indexes, rebuilds and searches on the shared index."""
    from tests.conftest import close_app, make_config
    from kb.web import create_app

    app = create_app(make_config(Path(tmp), INDEXER=n == 1, INDEXER_POLL_SECONDS=0.05))
    try:
        for i in range(10):
            publish(app, f"Worker {n} lantern {i}")
            if n == 0 and i in (3, 6):
                search.rebuild(app)
            search.process_outbox(app)
            with app.app_context():
                assert search.query_index("lantern").total >= 1
    finally:
        close_app(app)


def test_processes_sharing_the_index_lose_nothing(app_factory, tmp_path):
    import multiprocessing

    app_factory()  # create the database and the index first
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(str(tmp_path), n)) for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    checker = app_factory()
    service = checker.extensions["kb.search"]
    assert not indexer.is_stale(service) and outbox_size(checker) == 0
    assert len(found(checker, "lantern", per_page=100)) == 20


@pytest.mark.parametrize("query", ["refund", "refnud my card payment", '"card payment"', "密码"])
def test_an_index_without_articles_answers_empty_without_an_error(app_factory, caplog, query):
    app = app_factory(STARTER_ARTICLES_DIR="")  # a new site: its index has no segment yet
    client = app.test_client()
    with caplog.at_level(logging.WARNING):
        answer = client.get("/api/search", query_string={"q": query})
        page = client.get("/en/search", query_string={"q": query})
    assert answer.status_code == 200 and answer.get_json()["results"] == []
    assert page.status_code == 200
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
