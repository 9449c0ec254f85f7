"""One article must not stop the index: the indexer, rebuilds, start-up and `kb reindex` skip it and say why."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
import sqlalchemy as sa

from kb import search
from kb.articles import ArticleDraft, create_article, update_article
from kb.cli import cli
from kb.db import session_scope
from kb.models import Article, utcnow
from kb.search import feed, follower, indexer
from tests.agent_helpers import login, make_agent
from tests.test_cli import kb_env, open_app  # noqa: F401  (fixtures)
from tests.poison import POISON
from tests.test_search_index import found, publish, wait_until


def publish_unindexable(app, title: str = "Broken tags") -> int:
    """A published article whose row another tool wrote with numbers as tags: search cannot take it."""
    article_id = publish(app, title, "Perfectly fine text.")
    with session_scope(app) as session:
        session.execute(sa.update(Article).where(Article.id == article_id).values(tags=[1, 2]))
    return article_id


def retry_of(app, article_id: int):
    """This host's retry state of one article (None if it waits for no retry)."""
    return follower.current_cursor(app.extensions["kb.search"]).retries.get(article_id)


def index_error(app, article_id: int) -> str:
    """Why search skips the article ("" if it does not)."""
    with session_scope(app) as session:
        return session.get(Article, article_id).index_error


def test_poison_markdown_does_not_block_what_is_published_after_it(app):
    for name in ("emphasis-stars-4kb", "list-nested-300", "brackets-15kb"):
        publish(app, f"Poison {name}", POISON[name])
    later = publish(app, "Rain jacket", "Seams are taped.")
    search.process_outbox(app)
    assert found(app, "rain jacket") == [later]
    assert found(app, "poison") != []  # the poison articles are searchable by their text too


def test_failing_article_is_skipped_retried_a_few_times_and_shown_to_agents(app, client):
    broken = publish_unindexable(app)
    later = publish(app, "Rain jacket", "Seams are taped.")
    search.process_outbox(app)
    assert found(app, "rain jacket") == [later]
    retry = retry_of(app, broken)
    assert retry.attempts == 1 and retry.due > utcnow() and "TypeError" in retry.error
    assert "kb tries again shortly" in index_error(app, broken)

    service = app.extensions["kb.search"]
    assert indexer.process_outbox(service) == 0  # not due yet: nothing happens
    assert retry_of(app, broken).attempts == 1
    for attempts in range(2, indexer.MAX_ATTEMPTS + 1):
        later_on = retry_of(app, broken).due + timedelta(seconds=1)  # the retry time has passed
        indexer.process_outbox(service, now=later_on)
        retry = retry_of(app, broken)
        assert (retry and retry.attempts) == (attempts if attempts < indexer.MAX_ATTEMPTS else None)
    assert index_error(app, broken).startswith("Search skips this article (TypeError")

    make_agent(app)
    login(client)
    assert "Not in search" in client.get("/agent/").text
    with session_scope(app) as session:  # an agent fixes the tags and saves
        article = session.get(Article, broken)
        update_article(session, article, ArticleDraft("Broken tags", "Perfectly fine text, saved.", tags=["ok"]))
    search.process_outbox(app)
    assert found(app, "broken tags") == [broken] and index_error(app, broken) == ""


def test_full_rebuild_skips_a_failing_article_and_start_up_does_not_rebuild_for_it(app_factory):
    app = app_factory()
    broken = publish_unindexable(app)
    fine = publish(app, "Rain jacket", "Seams are taped.")
    assert search.rebuild(app) == 1
    assert found(app, "rain jacket") == [fine] and "TypeError" in index_error(app, broken)
    gen = app.extensions["kb.search"].store.current()
    assert app_factory().extensions["kb.search"].store.current() == gen  # known skips are not "stale"


def test_start_up_rebuild_survives_poison_and_failing_articles(app_factory):
    app = app_factory()
    publish_unindexable(app)
    with session_scope(app) as session:
        for name in ("emphasis-stars-4kb", "html-div-500kb"):
            create_article(session, ArticleDraft(f"Poison {name}", POISON[name]), status="published")
        session.execute(sa.update(Article).values(body_html=None, body_text=None, render_key=None))
    fine = publish(app, "Rain jacket", "Seams are taped.")
    shutil.rmtree(app.config["INDEX_DIR"])
    restarted = app_factory()
    assert found(restarted, "rain jacket") == [fine]
    assert restarted.test_client().get("/en/articles/poison-emphasis-stars-4kb").status_code == 200


def test_start_up_serves_when_the_index_cannot_be_rebuilt_and_the_indexer_heals_it(app_factory, monkeypatch):
    app = app_factory()
    fine = publish(app, "Rain jacket", "Seams are taped.")
    shutil.rmtree(app.config["INDEX_DIR"])
    real_rebuild = indexer._rebuild_locked

    def disk_full(service, progress):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(indexer, "_rebuild_locked", disk_full)
    restarted = app_factory(INDEXER=True, INDEXER_POLL_SECONDS=0.05)
    assert restarted.test_client().get("/en/articles/rain-jacket").status_code == 200
    assert restarted.extensions["kb.search"].stale
    monkeypatch.setattr(indexer, "_rebuild_locked", real_rebuild)  # space freed: the indexer thread retries
    assert wait_until(lambda: found(restarted, "rain jacket") == [fine], timeout=20)
    assert wait_until(lambda: not restarted.extensions["kb.search"].stale, timeout=5)


def test_reindex_command_names_the_skipped_article(runner, kb_env, open_app, tmp_path):
    app = open_app()
    publish_unindexable(app, "Broken tags")
    publish(app, "Rain jacket")
    result = runner.invoke(cli, ["reindex"])
    assert result.exit_code == 0, result.output
    assert "Indexed 1 published articles" in result.stdout
    assert "Skipped broken-tags: Search skips this article (TypeError" in result.stdout


def test_an_article_that_breaks_the_writer_is_retried_later_and_the_rest_goes_in(app, monkeypatch):
    broken = publish(app, "Broken writer", "Fine text.")
    fine = publish(app, "Rain jacket", "Seams are taped.")
    real_document = follower.document

    def bad_field(article, *args):
        doc = real_document(article, *args)
        return {**doc, "no_such_field": "x"} if article.id == broken else doc  # fails inside the writer

    monkeypatch.setattr(follower, "document", bad_field)
    service = app.extensions["kb.search"]
    with pytest.raises(Exception, match="no_such_field"):
        indexer.process_outbox(service)
    assert follower.current_cursor(service).position == feed.START  # the batch was not committed
    assert retry_of(app, broken).attempts == 1 and "kb tries again shortly" in index_error(app, broken)
    assert indexer.process_outbox(service) == 2  # the batch again, without the article: no endless loop
    assert found(app, "rain jacket") == [fine] and found(app, "broken") == []
    monkeypatch.setattr(follower, "document", real_document)
    indexer.process_outbox(service, now=retry_of(app, broken).due + timedelta(seconds=1))
    assert found(app, "broken writer") == [broken] and retry_of(app, broken) is None
