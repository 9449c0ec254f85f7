"""Shared fixtures: a fresh app per test on a temporary SQLite database and index."""

from __future__ import annotations

pytest_plugins = ["tests.servers", "tests.mailservers", "tests.searchbackends",  # real servers (PostgreSQL, IMAP, SMTP) started by fixtures
                  "tests.exit_watch"]  # a process stuck after its session says where

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb import articles as kb_articles
from kb import search
from kb.db import get_db, session_scope
from kb.web import create_app

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


@pytest.fixture(autouse=True)
def _no_kb_environment(monkeypatch):
    """Keep the developer's own KB_ variables out of every test."""
    for name in list(os.environ):
        if name.startswith("KB_"):
            monkeypatch.delenv(name)


def make_config(tmp_path: Path, **overrides) -> dict:
    """Settings for a throwaway app under ``tmp_path``."""
    config = {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET,
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'kb.sqlite3'}",
        "INDEX_DIR": str(tmp_path / "index"),
        "INDEXER": False,
        "JOBS_RUNNER": False,
        "STARTER_ARTICLES_DIR": str(REPO / "articles"),
    }
    config.update(overrides)
    return config


def close_app(app) -> None:
    """Stop background threads (a test that turned JOBS_RUNNER on leaves no runner behind), unhook the
    session events and release the database: kb.cli's, which every command uses."""
    from kb.cli import close_app as close_kb_app

    close_kb_app(app)


@pytest.fixture
def app_factory(tmp_path):
    """Build apps with extra settings; all are closed at the end of the test."""
    made = []

    def factory(**overrides):
        app = create_app(make_config(tmp_path, **overrides))
        made.append(app)
        return app

    yield factory
    for app in made:
        close_app(app)


@pytest.fixture
def app(app_factory):
    """A fresh app with its own empty database and index, indexer thread off."""
    return app_factory()


@pytest.fixture
def client(app):
    """The Flask test client."""
    return app.test_client()


@pytest.fixture
def runner():
    """A click runner for ``kb`` commands."""
    return CliRunner()


@pytest.fixture
def session(app):
    """A database session outside any request; committed work is visible to the app.

    No app context is held open: requests made during the test get their own, as in production.
    """
    with session_scope(app) as s:
        yield s


@pytest.fixture
def make_article(session):
    """Factory: ``make_article(title=..., body_md=..., status="published", ...)`` commits and returns it."""
    counter = iter(range(1, 10_000))

    def factory(title: str | None = None, *, status: str = "published", author=None, **fields):
        n = next(counter)
        draft = kb_articles.ArticleDraft(title=title or f"Article {n}", body_md=fields.pop("body_md", f"Body {n}."), **fields)
        article = kb_articles.create_article(session, draft, author=author, status=status)
        session.commit()
        return article

    return factory


def app_with_article(app_factory, database_url: str, title: str = "Refund a card payment"):
    """An app on ``database_url`` with one published article, indexed."""
    app = app_factory(DATABASE_URL=database_url)
    with session_scope(app) as s:
        kb_articles.create_article(s, kb_articles.ArticleDraft(title=title, body_md="How."), status="published")
        s.commit()
    search.process_outbox(app)
    return app


def csrf_token_from(html: str) -> str:
    """The CSRF token in a rendered form."""
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert match, "no csrf_token field in the page"
    return match.group(1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_db_url(request, tmp_path) -> str:
    """A database URL that several app instances (workers) share: SQLite, or a fresh PostgreSQL database."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_database_url")
    return f"sqlite:///{tmp_path / 'shared.sqlite3'}"
