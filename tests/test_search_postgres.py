"""The postgres search backend's own promises: writes in the publishing transaction, vocabulary
counts under concurrency, rebuilds, and clear errors when the database cannot serve search."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from kb import search
from kb.articles import ArticleDraft, create_article, set_status, update_article
from kb.db import get_db, session_scope
from kb.errors import ConfigError
from kb.models import Article
from kb.search.postgres import writes
from kb.search.postgres.health import TRIGRAM_INDEX
from tests.searchbackends import BACKENDS, backend_app
from tests.servers import _admin_connection

pytestmark = pytest.mark.postgres


@pytest.fixture
def app(request, app_factory):
    """An app on the postgres backend (the module's database, emptied)."""
    return backend_app(request, app_factory, "postgres")


def found(app, q: str, **kw) -> list[int]:
    """Ids of the articles a query finds, in rank order."""
    with app.app_context():
        return [hit.article_id for hit in search.query_index(q, **kw).hits]


def publish(app, title: str, body: str, status: str = "published") -> int:
    """Create and commit an article in its own session; returns its id."""
    with session_scope(app) as session:
        article = create_article(session, ArticleDraft(title, body), status=status)
        session.flush()
        return article.id


def vocabulary(app) -> dict[tuple[str, str], int]:
    """The vocabulary's positive counts."""
    with get_db(app).engine.connect() as conn:
        return {(r.grp, r.term): r.docs for r in conn.execute(sa.text(
            "SELECT grp, term, docs FROM search_vocabulary WHERE docs > 0"))}


def documents(app) -> set[tuple]:
    """Every document row, as text."""
    with get_db(app).engine.connect() as conn:
        return {tuple(tuple(v) if isinstance(v, list) else v for v in r) for r in conn.execute(sa.text(
            "SELECT article_id, lang, grp, category, terms::text, plain, words, stamp FROM search_documents"))}


@pytest.mark.parametrize("backend", BACKENDS)
def test_publish_edit_unpublish_is_findable_at_commit(request, app_factory, backend):
    """Whoosh after its indexer ran; postgres at once, with no indexer run."""
    app = backend_app(request, app_factory, backend)
    settle = (lambda: search.process_outbox(app)) if backend == "whoosh" else (lambda: None)
    article_id = publish(app, "Kayak paddles", "Choose a paddle by your height.")
    settle()
    assert found(app, "kayak") == [article_id]
    with session_scope(app) as session:
        update_article(session, session.get(Article, article_id), ArticleDraft("Canoe paddles", "Pick a blade."))
    settle()
    assert found(app, "canoe blade") == [article_id] and found(app, "kayak") == []
    for status in ("draft", "published", "archived"):
        with session_scope(app) as session:
            set_status(session, session.get(Article, article_id), status)
        settle()
        assert found(app, "canoe") == ([article_id] if status == "published" else []), status


def test_process_changes_has_nothing_to_do_and_there_is_no_lag(app):
    publish(app, "Headlamp", "Batteries last a week.")
    assert found(app, "headlamp") and search.process_outbox(app) == 0
    assert app.extensions["kb.search"].lag_seconds() == 0.0


def test_a_failing_article_never_fails_the_publish(app, monkeypatch):
    real = writes.make_row

    def make_row(article, examples=None):
        if "broken" in article.title:
            raise RuntimeError("renderer exploded")
        row = real(article, examples)
        return dict(row, terms="'unclosed") if "refused" in article.title else row

    monkeypatch.setattr(writes, "make_row", make_row)
    with session_scope(app) as session:
        ids = [create_article(session, ArticleDraft(title, "Lantern batteries."), status="published").id
               for title in ("A broken lantern", "A refused lantern", "A fine lantern")]
    assert found(app, "lantern") == [ids[2]]
    with session_scope(app) as session:
        notes = {a.id: a.index_error for a in session.scalars(sa.select(Article))}
    assert "renderer exploded" in notes[ids[0]] and "Search skips this article" in notes[ids[0]]
    assert notes[ids[1]].startswith("Search skips this article") and notes[ids[2]] == ""
    with session_scope(app) as session:
        assert {a.id for a in search.skipped_articles(session)} == set(ids[:2])


def test_concurrent_publishes_sharing_words_count_them_once_each(app, monkeypatch):
    real, holding, release = writes.apply, threading.Event(), threading.Event()

    def apply(session, article_ids):
        done = real(session, article_ids)
        if threading.current_thread().name == "first":
            holding.set()
            assert release.wait(10)  # keep the first transaction open, its vocabulary rows locked
        return done

    monkeypatch.setattr(writes, "apply", apply)
    errors = []

    def run(title):
        try:
            publish(app, title, "Shared lantern wick words.")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    first = threading.Thread(target=run, args=("Lantern one",), name="first")
    second = threading.Thread(target=run, args=("Lantern two",), name="second")
    first.start()
    assert holding.wait(10)
    second.start()
    with get_db(app).engine.connect() as conn:  # the second waits for the first's row locks
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()")).scalar():
            time.sleep(0.02)
            conn.rollback()
    release.set()
    first.join(10)
    second.join(10)
    assert errors == []
    words = vocabulary(app)
    assert words[("en", "lantern")] == 2 and words[("en", "wick")] == 2 and words[("en", "one")] == 1
    assert len(found(app, "wick")) == 2


def test_rebuild_equals_what_the_commits_wrote(app):
    ids = [publish(app, f"Tent {n}", f"Pitch the tent number {n} in wind.") for n in range(5)]
    with session_scope(app) as session:
        set_status(session, session.get(Article, ids[0]), "draft")
        update_article(session, session.get(Article, ids[1]), ArticleDraft("Tarp", "A tarp in rain."))
    before_docs, before_words = documents(app), vocabulary(app)
    assert before_words[("en", "tent")] == 3 and before_words[("en", "tarp")] == 1
    seen = []
    assert search.rebuild(app, progress=lambda done, total: seen.append((done, total))) == 4
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    assert documents(app) == before_docs and vocabulary(app) == before_words


def test_a_rebuild_leaves_the_planner_statistics_of_its_rows(app):
    for n in range(7):
        publish(app, f"Kayak {n}", f"Paddle kayak number {n} across the fjord.")
    assert search.rebuild(app) == 7
    with get_db(app).engine.connect() as conn:
        estimated = dict(conn.execute(sa.text(
            "SELECT relname, reltuples FROM pg_class WHERE relname IN ('search_documents', 'search_heads')")).all())
    assert estimated == {"search_documents": 7, "search_heads": 7}  # ANALYZE ran on the new rows


def test_a_failing_analyze_leaves_the_rebuild_standing(app, monkeypatch, caplog):
    publish(app, "Canoe", "Paddle the canoe.")

    def refuse(_session):
        raise sa.exc.OperationalError("ANALYZE", {}, Exception("canceling statement due to lock timeout"))

    monkeypatch.setattr(writes, "analyze", refuse)
    assert search.rebuild(app) == 1
    assert found(app, "canoe") and "could not ANALYZE" in caplog.text


def test_start_rebuilds_documents_that_differ_from_the_articles(request, app, app_factory):
    article_id = publish(app, "Compass", "Find north with a compass.")
    with get_db(app).engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM search_documents"))
    assert found(app, "compass") == []
    restarted = app_factory(DATABASE_URL=app.config["DATABASE_URL"], SEARCH_BACKEND="postgres")
    assert found(restarted, "compass") == [article_id]


def test_postgres_search_on_sqlite_is_a_clear_error(app_factory):
    with pytest.raises(ConfigError, match="needs a PostgreSQL database"):
        app_factory(SEARCH_BACKEND="postgres")


def test_a_role_that_may_not_create_pg_trgm(app_factory, postgres_url):
    """The migration still succeeds (Whoosh needs nothing) and postgres search says what to do."""
    name, role = f"kb_{uuid.uuid4().hex[:12]}", f"kb_role_{uuid.uuid4().hex[:8]}"
    with _admin_connection(postgres_url) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"CREATE DATABASE {name}")
    base = sa.make_url(postgres_url).set(database=name)
    try:
        admin = sa.create_engine(base.render_as_string(hide_password=False), poolclass=sa.pool.NullPool)
        with admin.begin() as conn:  # tables yes, extensions no (no CREATE on the database)
            conn.execute(sa.text(f"GRANT CREATE ON SCHEMA public TO {role}"))
        url = base.set(username=role).render_as_string(hide_password=False)
        whoosh = app_factory(DATABASE_URL=url)  # migrates, without pg_trgm
        get_db(whoosh).engine.dispose()
        with pytest.raises(ConfigError, match=rf"CREATE EXTENSION pg_trgm;` in that database.*{name}|{name}.*CREATE EXTENSION pg_trgm;"):
            app_factory(DATABASE_URL=url, SEARCH_BACKEND="postgres")
        with admin.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION pg_trgm"))
        ready = app_factory(DATABASE_URL=url, SEARCH_BACKEND="postgres")  # makes the trigram index it lacked
        with get_db(ready).engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM pg_indexes WHERE indexname = :n"), {"n": TRIGRAM_INDEX})
        get_db(ready).engine.dispose()
        admin.dispose()
    finally:
        with _admin_connection(postgres_url) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def heads(app) -> set[tuple]:
    """The narrow title-and-tags table, as text."""
    with get_db(app).engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT article_id, lang, category, head::text FROM search_heads")).all())


def heads_of_documents(app) -> set[tuple]:
    """What the title-and-tags table must hold: the A and B lexemes of every document."""
    with get_db(app).engine.connect() as conn:
        return set(conn.execute(sa.text(
            "SELECT article_id, lang, category, ts_filter(terms, '{a,b}')::text FROM search_documents")).all())


def test_heads_follow_the_documents_through_publish_edit_unpublish_and_rebuild(app):
    ids = [publish(app, f"Kayak {n}", f"Paddle the kayak number {n} upstream.") for n in range(3)]
    assert heads(app) == heads_of_documents(app) and len(heads(app)) == 3
    with session_scope(app) as session:
        update_article(session, session.get(Article, ids[1]), ArticleDraft("Canoe", "Paddle a canoe instead."))
        set_status(session, session.get(Article, ids[2]), "draft")
    assert heads(app) == heads_of_documents(app)
    assert {row[0] for row in heads(app)} == {ids[0], ids[1]}
    assert "'en:cano'" in dict((r[0], r[3]) for r in heads(app))[ids[1]]
    search.rebuild(app)
    assert heads(app) == heads_of_documents(app) and len(heads(app)) == 2


def test_a_word_in_every_article_ranks_a_bounded_set_title_matches_first(app, monkeypatch):
    from kb.search.postgres import ranked

    body_only = [publish(app, f"Note {n}", f"Every note mentions the harbour once, {n}.") for n in range(12)]
    with app.app_context():
        page = search.query_index("harbour", per_page=20)
    assert {hit.article_id for hit in page.hits} == set(body_only) and page.total == 12  # under the bound: all
    monkeypatch.setattr(ranked, "CANDIDATES", 4)
    with app.app_context():
        page = search.query_index("harbour", per_page=20)
    assert len(page.hits) == 4 and page.total >= 4
    # The newest article, past the bound of the body matches, is a candidate because its title holds the word.
    titled = publish(app, "Harbour", "Where the boats stay.")
    assert found(app, "harbour")[0] == titled
    # An article holding every word of the query is a candidate before those holding one.
    both = publish(app, "Quay", "The harbour pilot meets ships at the quay.")
    assert both in found(app, "harbour pilot", per_page=20)
