"""Fixtures that start real servers for the integration tests (see ../shared/TEST-SERVERS.md).

PostgreSQL: one throwaway cluster per test session on a free loopback port, and a fresh
database per test. Missing server binaries skip the tests that need them with a loud reason;
``scripts/test`` in CI mode turns any such skip into a failure.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

PG_INSTALL_HINT = "install Debian's `postgresql` package (apt-get install postgresql) or run `bash scripts/test` as root"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_pg_bindir() -> Path | None:
    """The newest Debian PostgreSQL bin folder, else the one holding ``initdb`` on PATH."""
    def version(path: Path) -> int:
        return int(path.parent.name) if path.parent.name.isdigit() else 0

    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for bindir in debian:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


@dataclass
class PostgresCluster:
    """A throwaway PostgreSQL cluster in ``folder``, owned by ``user`` (None: the current user)."""

    bindir: Path
    folder: Path
    port: int
    user: str | None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ``postgres`` database as the superuser ``kb``."""
        return f"postgresql+psycopg://kb@127.0.0.1:{self.port}/postgres"

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """Run a PostgreSQL program as the cluster's owner; raise with its output on failure."""
        cmd = [str(self.bindir / args[0]), *args[1:]]
        done = subprocess.run(cmd, user=self.user, cwd=self.folder, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}{self.log_tail()}")
        return done

    def log_tail(self) -> str:
        """The end of the server log, for error messages."""
        log = self.folder / "log"
        return "\n--- server log ---\n" + log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def init(self) -> None:
        """Create the cluster: UTF-8 (Chinese articles), trust auth, superuser ``kb``, no fsync."""
        self.run("initdb", "-D", str(self.folder / "data"), "-A", "trust", "-U", "kb",
                 "-E", "UTF8", "--locale=C", "--no-sync")

    def start(self) -> None:
        """Start the server on 127.0.0.1 only, socket in the cluster folder; durability off for speed."""
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self.run("pg_ctl", "-D", str(self.folder / "data"), "-o", options,
                 "-l", str(self.folder / "log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Stop the server at once (fast shutdown); ignore a server that already died."""
        try:
            self.run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")
        except RuntimeError:
            pass


def _cluster_owner() -> str | None:
    """PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip(f"PostgreSQL tests skipped: running as root and there is no `postgres` user; {PG_INSTALL_HINT}")
    return "postgres"


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL server for the whole test session, removed at the end."""
    bindir = find_pg_bindir()
    if bindir is None:
        pytest.skip(f"PostgreSQL tests skipped: no initdb/pg_ctl found; {PG_INSTALL_HINT}")
    user = _cluster_owner()
    folder = Path(tempfile.mkdtemp(prefix="kb-pg-"))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    cluster = PostgresCluster(bindir, folder, free_port(), user)
    try:
        cluster.init()
        cluster.start()
    except BaseException:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    yield cluster
    cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """SQLAlchemy URL of the session's PostgreSQL server (database ``postgres``, user ``kb``)."""
    return postgres_cluster.url


def _admin_connection(url: str):
    """An autocommit psycopg connection to the server's ``postgres`` database."""
    import psycopg

    parts = sa.make_url(url)
    return psycopg.connect(host=parts.host, port=parts.port, user=parts.username, dbname="postgres", autocommit=True)


@pytest.fixture
def pg_database_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards (even with connections left open)."""
    name = f"kb_{uuid.uuid4().hex[:12]}"
    assert re.fullmatch(r"kb_[0-9a-f]{12}", name)
    with _admin_connection(postgres_url) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with _admin_connection(postgres_url) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
