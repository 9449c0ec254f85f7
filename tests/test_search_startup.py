"""Start-up never waits for a rebuild: a worker with the indexer thread serves at once, one process
rebuilds aside in the background, and the others pick up its generation."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from kb import search
from kb.db import get_db, session_scope
from kb.models import IndexChange
from kb.search.store import IndexStore
from tests.conftest import close_app
from tests.searchbackends import BACKENDS, backend_app, search_pg_url  # noqa: F401 - fixture
from tests.test_search_index import found, publish, wait_until

NOTICE = "The search index is being built"
THREAD = {"INDEXER": True, "INDEXER_POLL_SECONDS": 0.05}


def generations(app) -> list[str]:
    """The generation folders in the app's index folder."""
    return sorted(p.name for p in Path(app.config["INDEX_DIR"]).glob("gen-*"))


def seeded(app_factory) -> Path:
    """Publish an article with a first app, close it and delete the index folder; returns that folder."""
    first = app_factory()
    publish(first, "Reset your password", "Click the link we send to choose a new password.")
    close_app(first)
    index = Path(first.config["INDEX_DIR"])
    shutil.rmtree(index)
    return index


def test_a_missing_index_is_built_in_the_background_while_search_answers(app_factory):
    index = seeded(app_factory)
    # Another process holds the rebuild lock (as if it were rebuilding): this worker must not wait for it.
    with IndexStore(index).rebuild_lock():
        app = app_factory(**THREAD)
        service = app.extensions["kb.search"]
        assert service.store.current() is None and service.building()  # created without building the index
        client = app.test_client()
        answer = client.get("/api/search?q=password")
        assert answer.status_code == 200
        assert answer.json["results"] == [] and answer.json["notice"].startswith(NOTICE)
        page = client.get("/en/search?q=password")
        assert page.status_code == 200 and NOTICE in page.get_data(as_text=True)
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json["checks"]["search"]["reason"] == "search index being built"
    # The lock is free: this worker's indexer thread builds the index, switches it in, then says it is done.
    assert wait_until(lambda: not service.building(), timeout=30)
    assert found(app, "password")
    answer = app.test_client().get("/api/search?q=password")
    assert answer.json["results"] and "notice" not in answer.json
    assert NOTICE not in app.test_client().get("/en/search?q=password").get_data(as_text=True)
    assert not service.building() and app.test_client().get("/readyz").status_code == 200


def test_a_stale_index_serves_and_is_fixed_in_the_background(app_factory, caplog):
    first = app_factory()
    search.process_outbox(first)
    gen = first.extensions["kb.search"].store.current()
    article_id = publish(first, "Zeppelin mooring", "Tie the airship to the mast.")
    with session_scope(first) as session:  # added behind the feed's back: no change row for it
        session.execute(sa.delete(IndexChange))
    close_app(first)
    caplog.set_level(logging.INFO, logger="kb.search")
    app = app_factory(**THREAD)
    service = app.extensions["kb.search"]
    # The start-up count saw it (read from the log: the thread may already have cleared ``problem``).
    assert any("holds" in r.getMessage() for r in caplog.records if r.name == "kb.search.service")
    assert wait_until(lambda: not service.building(), timeout=30)
    assert found(app, "zeppelin") == [article_id] and service.store.current() != gen


def test_two_workers_on_one_folder_rebuild_once(app_factory):
    index = seeded(app_factory)
    with IndexStore(index).rebuild_lock():  # both start before either can rebuild: they race for the lock
        workers = [app_factory(**THREAD) for _n in range(2)]
        assert all(w.extensions["kb.search"].building() for w in workers)
    assert wait_until(lambda: all(not w.extensions["kb.search"].building() for w in workers), timeout=30)
    assert len(list(index.glob("gen-*"))) == 1  # a second rebuild would have kept the first as its predecessor
    assert all(found(w, "password") for w in workers)


def test_an_unchanged_index_is_not_compared_again_by_each_worker(app_factory, monkeypatch):
    from kb.search import indexer

    seeded(app_factory)
    app_factory()  # builds the index at this state
    compared = []
    real = indexer.is_stale
    monkeypatch.setattr(indexer, "is_stale", lambda service: compared.append(1) or real(service))
    one = app_factory(**THREAD)
    assert wait_until(lambda: not one.extensions["kb.search"].thread.unsettled, timeout=30)
    two = app_factory(**THREAD)
    assert wait_until(lambda: not two.extensions["kb.search"].thread.unsettled, timeout=30)
    assert compared == []  # the generation was built at this very state: no worker compares every article


def test_reindex_does_not_rebuild_at_start_too(app_factory):
    app = app_factory()
    article_id = publish(app, "Compass", "Find north.")
    close_app(app)
    for gen in Path(app.config["INDEX_DIR"]).glob("gen-*"):
        (gen / "KB_SCHEMA").write_text("0")  # as if built by an older kb: stale
    with search.no_rebuild_at_start():
        again = app_factory()
    service = again.extensions["kb.search"]
    assert service.problem and generations(again) == generations(app)  # start left it to the command
    assert search.rebuild(again) >= 1 and found(again, "compass") == [article_id]
    assert not service.building()


@pytest.mark.postgres
def test_postgres_documents_off_at_start_are_rebuilt_in_the_background(request, app_factory):
    app = backend_app(request, app_factory, "postgres")
    article_id = publish(app, "Sextant", "Measure the angle of the sun.")
    with get_db(app).engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM search_documents"))
    restarted = app_factory(DATABASE_URL=app.config["DATABASE_URL"], SEARCH_BACKEND="postgres", **THREAD)
    assert wait_until(lambda: found(restarted, "sextant") == [article_id], timeout=30)
    assert not restarted.extensions["kb.search"].building()


@pytest.mark.parametrize("pointer", [b"\xff\xfe\x00garbage", b"", b"gen-missing", b"gen-" + b"x" * 5000])
def test_a_pointer_that_names_no_generation_reads_as_no_index(tmp_path, pointer):
    store = IndexStore(tmp_path)
    (tmp_path / "gen-missing-not").mkdir()
    (tmp_path / "CURRENT").write_bytes(pointer)  # not UTF-8, empty, a folder that is not there, too long
    assert store.current() is None


def test_the_pointer_names_the_current_generation(tmp_path):
    store = IndexStore(tmp_path)
    (tmp_path / "gen-2026").mkdir()
    (tmp_path / "CURRENT").write_text("gen-2026\n")
    assert store.current() == "gen-2026"


@pytest.mark.parametrize("backend", BACKENDS)
def test_jieba_is_loaded_at_start_only_for_a_site_with_a_chinese_article(request, app_factory, backend, monkeypatch):
    from kb.search import backend as search_backend

    warmed = []
    monkeypatch.setattr(search_backend, "warm_jieba_in_background", lambda: warmed.append(1))
    first = backend_app(request, app_factory, backend)
    publish(first, "Reset your password", "Click the link we send to choose a new password.", lang="en")
    publish(first, "重置密码", "点击我们发送的链接。", lang="zh", status="draft")
    app_factory(DATABASE_URL=first.config["DATABASE_URL"], SEARCH_BACKEND=first.config["SEARCH_BACKEND"])
    assert warmed == []  # English only (a Chinese draft is not searched): the first Chinese text loads it
    publish(first, "重置密码", "点击我们发送的链接。", lang="zh")
    app_factory(DATABASE_URL=first.config["DATABASE_URL"], SEARCH_BACKEND=first.config["SEARCH_BACKEND"], LANGUAGES="en,nb")
    assert warmed == []  # a portal without Chinese never loads it at start
    app_factory(DATABASE_URL=first.config["DATABASE_URL"], SEARCH_BACKEND=first.config["SEARCH_BACKEND"])
    assert warmed == [1]  # a published Chinese article on a portal in Chinese: loaded in the background
