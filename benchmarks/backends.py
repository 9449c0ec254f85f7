"""A throwaway PostgreSQL server for the benchmarks, started the way tests/servers.py starts one.

As root the cluster belongs to the ``postgres`` user (PostgreSQL refuses to run as root). Every
database made here is dropped by ``database``; the caller stops the cluster with ``stop``.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import PG_INSTALL_HINT, PostgresCluster, find_pg_bindir, free_port  # noqa: E402


def start_cluster() -> PostgresCluster:
    """A started throwaway cluster on a free loopback port; SystemExit saying what to install if none can run."""
    bindir = find_pg_bindir()
    if bindir is None:
        raise SystemExit(f"no PostgreSQL server programs (initdb, pg_ctl) found: {PG_INSTALL_HINT}")
    user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise SystemExit("running as root and there is no `postgres` user to own the cluster: "
                             f"{PG_INSTALL_HINT}") from None
        user = "postgres"
    folder = Path(tempfile.mkdtemp(prefix="kb-bench-pg-"))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    cluster = PostgresCluster(bindir, folder, free_port(), user)
    try:
        cluster.init()
        cluster.start()
    except BaseException:
        stop(cluster)
        raise
    return cluster


def stop(cluster: PostgresCluster) -> None:
    """Stop the cluster and remove its folder."""
    cluster.stop()
    shutil.rmtree(cluster.folder, ignore_errors=True)


@contextmanager
def database(cluster: PostgresCluster) -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty database on ``cluster``, dropped afterwards."""
    import psycopg

    name = f"kb_bench_{uuid.uuid4().hex[:12]}"
    assert re.fullmatch(r"kb_bench_[0-9a-f]{12}", name)  # it goes into SQL as an identifier
    parts = sa.make_url(cluster.url)

    def admin(sql: str) -> None:
        with psycopg.connect(host=parts.host, port=parts.port, user=parts.username, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(sql)

    admin(f"CREATE DATABASE {name}")
    try:
        yield parts.set(database=name).render_as_string(hide_password=False)
    finally:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def check_backend(name: str) -> None:
    """SystemExit with what to do unless kb can load the search backend ``name`` (before any slow work)."""
    from kb import search
    from kb.errors import ConfigError

    try:
        search.backend_class(name)
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    except ImportError as exc:
        raise SystemExit(f"the {name!r} search backend cannot be loaded ({exc}): this checkout has no "
                         f"{search.BACKENDS[name][0]} yet, or a package it needs is missing; run the "
                         "benchmark on a checkout that has it, or pick another --backend") from None


def create_search_app(backend: str, config: dict):
    """``kb.web.create_app`` with SEARCH_BACKEND ``backend``; SystemExit saying why if it cannot start."""
    from kb.errors import ConfigError
    from kb.web import create_app

    check_backend(backend)
    try:
        return create_app({**config, "SEARCH_BACKEND": backend})
    except ConfigError as exc:
        raise SystemExit(f"kb cannot start with SEARCH_BACKEND={backend}: {exc}") from None


def close_app(app) -> None:
    """Close the app's search backend and its database connections (so its database can be dropped)."""
    from kb.cli import close_app as close_kb_app

    close_kb_app(app)
