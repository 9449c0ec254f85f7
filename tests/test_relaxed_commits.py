"""Counts and logs commit without waiting for the disk (kb.db.relax_durability); everything else, and
every later commit on the same pooled connection, waits for it as before. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from kb import articles as kb_articles
from kb import search
from kb.db import get_db, relax_durability, session_scope
from kb.models import SearchLog
from tests.conftest import app_with_article

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"}


@pytest.fixture
def db_app(app_factory, shared_db_url):
    """An app on SQLite or PostgreSQL with one published, indexed article."""
    return app_with_article(app_factory, shared_db_url)


@pytest.fixture
def commits(db_app):
    """The durability each commit ran with, in order: True waits for the disk, False does not."""
    seen: list[bool] = []
    engine = get_db(db_app).engine
    if engine.dialect.name == "postgresql":  # the test server runs with synchronous_commit off: kb's own default is on
        engine.dispose()
        sa.event.listen(engine, "connect", _commits_wait)

    def wrote(conn, _cursor, statement, *_args):
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            conn.info["test.wrote"] = True

    def note(conn):
        if not conn.info.pop("test.wrote", False):
            return  # a transaction that only read (the synonym sets' check, for one) flushes nothing
        raw = conn.connection.dbapi_connection
        if engine.dialect.name == "sqlite":
            seen.append(raw.execute("PRAGMA synchronous").fetchone()[0] == 2)  # 2 = FULL, 1 = NORMAL
        else:
            with raw.cursor() as cursor:
                cursor.execute("SHOW synchronous_commit")
                seen.append(cursor.fetchone()[0] == "on")

    sa.event.listen(engine, "before_cursor_execute", wrote)
    sa.event.listen(engine, "commit", note)
    yield seen
    sa.event.remove(engine, "commit", note)
    sa.event.remove(engine, "before_cursor_execute", wrote)


def _commits_wait(dbapi_connection, _record) -> None:
    """Make a PostgreSQL connection wait for the disk at commit, as a production server does."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO on")
    dbapi_connection.commit()


def test_a_search_log_commit_skips_the_flush_and_the_next_commit_does_not(db_app, commits):
    with session_scope(db_app) as s:
        relax_durability(s.connection())
        s.add(SearchLog(query="refund", lang="en", results=1))
        s.commit()
        s.add(SearchLog(query="refund again", lang="en", results=1))
        s.commit()
    assert commits == [False, True]
    with session_scope(db_app) as s:  # both rows are there: relaxed is not lost
        assert s.scalar(sa.select(sa.func.count()).select_from(SearchLog)) == 2


def test_portal_counts_skip_the_flush_and_an_article_edit_does_not(db_app, commits):
    client = db_app.test_client()
    html = client.get("/en/search?q=refund", headers=BROWSER).get_data(as_text=True)
    assert commits == [False]  # the search and the visitor's day
    slug = html.split('href="/en/articles/', 1)[1].split("?", 1)[0].split('"', 1)[0]
    client.get(f"/en/articles/{slug}/seen", headers=BROWSER)
    assert commits[-1] is False  # the view counter
    with session_scope(db_app) as s:
        article = kb_articles.get_article(s, slug)
        kb_articles.update_article(s, article, kb_articles.ArticleDraft(title="Refund a card payment, step by step",
                                                                        body_md="Refund."))
        s.commit()
    assert commits[-1] is True  # an agent's work waits for the disk
    with session_scope(db_app) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(SearchLog)) == 1


def test_the_api_search_log_batch_skips_the_flush(db_app, commits):
    db_app.test_client().get("/api/search?q=refund")
    search.flush_log(db_app)
    assert commits == [False]
    with session_scope(db_app) as s:
        assert s.scalar(sa.select(SearchLog.query)) == "refund"


def test_relaxing_after_a_write_leaves_the_commit_flushing(db_app, commits):
    with session_scope(db_app) as s:
        s.add(SearchLog(query="refund", lang="en", results=1))
        s.flush()  # the transaction has begun: SQLite refuses a new safety level now
        relax_durability(s.connection())
        s.commit()
    assert commits == [db_app.config["DATABASE_URL"].startswith("sqlite")]
    with session_scope(db_app) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(SearchLog)) == 1  # never lost for it


def test_a_failed_relaxed_commit_leaves_the_connection_flushing_again(db_app, commits):
    with session_scope(db_app) as s:
        relax_durability(s.connection())
        s.add(SearchLog(query="x" * 10, lang="en", results=1, clicked_article_id=10**6))  # no such article
        with pytest.raises(sa.exc.IntegrityError):
            s.commit()
        s.rollback()
        s.add(SearchLog(query="refund", lang="en", results=1))
        s.commit()
    assert commits[-1] is True
