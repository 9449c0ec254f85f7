"""The data layer on a real PostgreSQL server (and, where cheap, on SQLite too, for comparison).

The server is started by ``tests/servers.py``; each test gets its own empty database.
"""

from __future__ import annotations

import multiprocessing
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
import sqlalchemy.exc
import sqlalchemy.orm as so
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from kb import articles as kb_articles
from kb.db import MIGRATIONS_DIR, get_db, session_scope
from kb.errors import ValidationError
from kb.models import Agent, Article, Base, IndexChange, Revision, SlugRedirect, Vote
from kb.search.postgres.health import TRIGRAM_INDEX
from kb.search.postgres.models import SearchBase

pytestmark = pytest.mark.filterwarnings("error")

TABLES = {"agents", "articles", "revisions", "slug_redirects", "votes", "search_log", "index_changes", "worker_heartbeats"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """An empty database: SQLite in tmp_path, or a fresh PostgreSQL database (started only if needed)."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_database_url")
    return f"sqlite:///{tmp_path / 'param.sqlite3'}"


@pytest.fixture
def pg_app(app_factory, pg_database_url):
    """An app on a fresh PostgreSQL database."""
    return app_factory(DATABASE_URL=pg_database_url)


@pytest.fixture
def db_app(app_factory, db_url):
    """An app on the parametrised database."""
    return app_factory(DATABASE_URL=db_url)


@pytest.fixture
def db_session(db_app):
    """A session on the parametrised database, inside an app context."""
    with db_app.app_context():
        with session_scope(db_app) as session:
            yield session


def alembic_config(connection: sa.Connection) -> Config:
    """An Alembic config that runs kb's migrations on ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


def new_article(session: so.Session, title: str = "Reset your password", **fields) -> Article:
    """Create and commit an article through the domain function."""
    status = fields.pop("status", "published")
    draft = kb_articles.ArticleDraft(title=title, body_md=fields.pop("body_md", "Click *Forgot password*."), **fields)
    article = kb_articles.create_article(session, draft, status=status)
    session.commit()
    return article


@pytest.mark.postgres
def test_create_app_migrates_an_empty_postgres_database(pg_app):
    engine = get_db(pg_app).engine
    assert engine.dialect.name == "postgresql"
    inspector = sa.inspect(engine)
    assert TABLES <= set(inspector.get_table_names())
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == head_revision()


def test_migrations_match_the_models(db_app):
    """A model changed without a migration shows up here as a difference."""
    with get_db(db_app).engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": _not_search_table}),
                                Base.metadata)
        assert diff == []
        if conn.dialect.name == "postgresql":
            # The search backend's tables exist on PostgreSQL only, with models of their own metadata
            # (kb.search.postgres.models); their trigram index is made outside the models, as pg_trgm
            # may come after the migration (kb.search.postgres.health).
            diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": _search_table}),
                                    SearchBase.metadata)
            assert diff == []


def _search_table(name, type_, _parent_names) -> bool:
    """Only the PostgreSQL search backend's tables (and their indexes but the trigram one)."""
    if type_ == "table":
        return name in SearchBase.metadata.tables
    return name != TRIGRAM_INDEX


def _not_search_table(name, type_, _parent_names) -> bool:
    """Everything but the PostgreSQL search backend's tables (compared on their own above)."""
    return type_ != "table" or name not in SearchBase.metadata.tables


def test_downgrade_to_base_and_upgrade_again(db_app):
    engine = get_db(db_app).engine
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert not TABLES & set(sa.inspect(engine).get_table_names())
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    assert TABLES <= set(sa.inspect(engine).get_table_names())
    with session_scope(db_app) as session:
        assert new_article(session).id


def test_restarting_on_an_existing_database_keeps_the_data(app_factory, db_url):
    first = app_factory(DATABASE_URL=db_url)
    with session_scope(first) as session:
        new_article(session, "Kept across restarts")
    get_db(first).engine.dispose()
    second = app_factory(DATABASE_URL=db_url)
    with session_scope(second) as session:
        assert [a.title for a in session.scalars(sa.select(Article))] == ["Kept across restarts"]


def test_models_round_trip_json_tags_and_aware_datetimes(db_session):
    oslo = timezone(timedelta(hours=2))
    when = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=oslo)
    agent = Agent(email="ada@example.com", name="Ada", role="admin", password_hash="x")
    article = Article(slug="retur", title="Hvordan returnerer jeg en vare?", body_md="Kunder kan returnere…\n",
                      lang="nb", category="Retur", tags=["retur", "refusjon", "退款"], status="published",
                      author=agent, created_at=when, updated_at=when, published_at=when)
    db_session.add(article)
    db_session.commit()
    db_session.expunge_all()

    loaded = db_session.scalar(sa.select(Article).where(Article.slug == "retur"))
    assert loaded.tags == ["retur", "refusjon", "退款"]
    assert loaded.body_md == "Kunder kan returnere…\n"
    assert loaded.author.email == "ada@example.com"
    assert loaded.created_at == when
    assert loaded.created_at.tzinfo == timezone.utc
    assert loaded.created_at.hour == 23  # 01:30 at +02:00 is 23:30 UTC the day before


@pytest.mark.parametrize("violation", ["slug", "vote", "revision", "status"])
def test_constraints_are_enforced_by_the_database(db_session, violation):
    article = new_article(db_session)
    db_session.add(Vote(article_id=article.id, visitor="v1", helpful=True, comment=""))
    db_session.commit()
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        if violation == "slug":
            db_session.add(Article(slug=article.slug, title="Another", body_md="", tags=[]))
        elif violation == "vote":
            db_session.add(Vote(article_id=article.id, visitor="v1", helpful=False, comment="changed my mind"))
        elif violation == "revision":
            db_session.add(Revision(article_id=article.id, number=1, title="t", body_md="", lang="en",
                                    category="", tags=[], note=""))
        else:
            db_session.execute(sa.update(Article).where(Article.id == article.id).values(status="deleted"))
        db_session.commit()
    db_session.rollback()


def test_a_vote_from_another_visitor_is_accepted(db_session):
    article = new_article(db_session)
    db_session.add_all([Vote(article_id=article.id, visitor=v, helpful=v == "a", comment="") for v in ("a", "b")])
    db_session.commit()
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Vote)) == 2


def test_domain_functions_create_update_publish_rename_restore(db_session):
    article = new_article(db_session, "Reset your password", status="draft", category="Account", tags=["login"])
    assert kb_articles.resolve_public(db_session, article.slug) == (None, None)  # drafts are not public

    changed = kb_articles.update_article(db_session, article, kb_articles.ArticleDraft(
        title="Reset a forgotten password", body_md="Use the *Forgot password* link.", category="Account", tags=["login"]))
    assert changed
    assert kb_articles.set_status(db_session, article, "published")
    db_session.commit()
    assert article.slug == "reset-your-password"  # the title changed, the slug stayed
    assert kb_articles.resolve_public(db_session, "reset-your-password") == (article, None)

    kb_articles.update_article(db_session, article, kb_articles.ArticleDraft(
        title=article.title, body_md=article.body_md, category="Account", tags=["login"], slug="forgot-password"))
    db_session.commit()
    assert kb_articles.resolve_public(db_session, "reset-your-password") == (None, "forgot-password")
    assert db_session.get(SlugRedirect, "reset-your-password").article_id == article.id

    restored = kb_articles.restore_revision(db_session, article, 1)
    db_session.commit()
    # Revisions: created, edited, published (status changes are in the history too), renamed, restored.
    assert (restored.number, article.title, article.slug) == (5, "Reset your password", "forgot-password")
    assert [(r.number, r.status) for r in article.revisions] == [
        (1, "draft"), (2, "draft"), (3, "published"), (4, "published"), (5, "published")]


def test_a_taken_slug_is_refused_with_a_message(db_session):
    new_article(db_session, "Track your order")
    other = new_article(db_session, "Delivery times")
    with pytest.raises(ValidationError, match="already used"):
        kb_articles.update_article(db_session, other, kb_articles.ArticleDraft(title=other.title, slug="track-your-order"))


def test_index_change_rows_share_the_article_transaction(db_session):
    draft = kb_articles.ArticleDraft(title="Gift cards", body_md="Buy one online.")
    kb_articles.create_article(db_session, draft, status="published")
    db_session.rollback()
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Article)) == 0
    assert db_session.scalar(sa.select(sa.func.count()).select_from(IndexChange)) == 0

    article = kb_articles.create_article(db_session, draft, status="published")
    kb_articles.set_status(db_session, article, "archived")
    db_session.commit()
    queued = db_session.scalars(sa.select(IndexChange.article_id)).all()
    assert queued == [article.id, article.id]


@pytest.mark.postgres
def test_the_full_app_searches_articles_stored_in_postgres(pg_app):
    from kb import search

    client = pg_app.test_client()
    with pg_app.app_context():
        with session_scope(pg_app) as session:
            new_article(session, "Reset your password", body_md="Forgot your password? Use the reset link.",
                        category="Account", tags=["login"])
            new_article(session, "如何申请退款", body_md="在订单页面申请退款。", lang="zh", category="退款")
            new_article(session, "Secret draft about passwords", status="draft")
        assert search.process_outbox(pg_app) >= 3

    found = client.get("/api/search?q=passwords").get_json()
    assert [r["slug"] for r in found["results"]] == ["reset-your-password"]
    assert client.get("/api/search?q=退款&lang=zh").get_json()["results"][0]["title"] == "如何申请退款"
    page = client.get("/en/articles/reset-your-password")
    assert page.status_code == 200 and b"reset link" in page.data
    search.flush_log(pg_app)  # the API's search-log rows wait for the next batch (kb.insights.logbuffer)
    with session_scope(pg_app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(sa.table("search_log"))) >= 2


def _migrate(url: str, start) -> str:
    """One process's start-up migration, begun with the others: "" or what went wrong."""
    from kb.db import make_engine, upgrade

    engine = make_engine(url)
    start.wait()
    try:
        upgrade(engine)
        return ""
    except Exception as exc:  # noqa: BLE001 - reported to the test
        return f"{type(exc).__name__}: {exc}"
    finally:
        engine.dispose()


def test_workers_that_start_together_migrate_one_at_a_time(db_url):
    # gunicorn -w 4 on a database one step behind (here: all steps): each worker migrates at start.
    with multiprocessing.Manager() as manager:
        start = manager.Barrier(4)
        with multiprocessing.get_context("spawn").Pool(4) as pool:
            errors = pool.starmap(_migrate, [(db_url, start)] * 4)
    assert errors == [""] * 4, "\n".join(errors)
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
    finally:
        engine.dispose()
