"""Apps on either search backend, for the search tests that must behave alike on both.

``whoosh`` runs on a temporary SQLite database and index, as every other test. ``postgres`` runs
on one PostgreSQL database per test module (migrated once), emptied before each test, so the
suite pays for a database and a migration once per module rather than once per test.
"""

from __future__ import annotations

import re
import uuid
from typing import Iterator

import pytest
import sqlalchemy as sa

from tests.servers import _admin_connection

BACKENDS = ["whoosh", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module")
def search_pg_url(postgres_url: str) -> Iterator[str]:
    """One PostgreSQL database for the search tests of a module; dropped afterwards."""
    name = f"kb_search_{uuid.uuid4().hex[:12]}"
    assert re.fullmatch(r"kb_search_[0-9a-f]{12}", name)
    with _admin_connection(postgres_url) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with _admin_connection(postgres_url) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def empty_database(url: str) -> None:
    """Delete every row (ids start again) but the migration version: a fresh database for the next test."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            tables = [t for t in sa.inspect(conn).get_table_names() if t != "alembic_version"]
            if tables:
                # Append-only tables refuse TRUNCATE through a trigger; test data may go (superuser only).
                conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
                conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


def backend_app(request, app_factory, backend: str, **overrides):
    """An app on ``backend``: Whoosh on SQLite, or postgres on the module's emptied PostgreSQL database."""
    if backend == "postgres":
        url = request.getfixturevalue("search_pg_url")
        empty_database(url)
        overrides = {"DATABASE_URL": url, "SEARCH_BACKEND": "postgres", **overrides}
    return app_factory(**overrides)
