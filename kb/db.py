"""The database: engine, per-request sessions and migrations, plugged in with ``init_app``."""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask, current_app, g

from kb.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
RELAXED = "kb.db.relaxed"  # on a pooled SQLite connection's info: its last commit skipped the flush
SQLITE_BUSY_SECONDS = 30  # how long a statement waits for another process's write lock
MIGRATION_LOCK_KEY = 0x6B62_6D69_6772  # "kbmigr": the PostgreSQL advisory lock that one migrating process holds


@dataclass
class Database:
    """The engine and session factory of one app."""

    engine: sa.Engine
    sessionmaker: so.sessionmaker[so.Session]


def make_engine(url: str) -> sa.Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout for concurrent use."""
    try:
        return _make_engine(url)
    except (ImportError, sa.exc.NoSuchModuleError) as exc:
        raise ConfigError(missing_driver_message(url, exc)) from exc


def missing_driver_message(url: str, exc: Exception) -> str:
    """What to install (or write) when the database URL's dialect or driver cannot be loaded."""
    drivername = sa.make_url(url).drivername
    dialect = drivername.split("+")[0]
    if isinstance(exc, ImportError):
        missing = f"its Python driver ({getattr(exc, 'name', None) or exc}) is not installed"
    else:
        missing = "SQLAlchemy has no such dialect or driver"
    if dialect in ("postgresql", "postgres"):
        advice = ("install kb's PostgreSQL support with pip install 'kb[postgres]' and write the URL as "
                  "postgresql+psycopg://user:password@host/database")
    else:
        advice = ("use sqlite:///path/to/kb.sqlite3 or postgresql+psycopg://... (pip install 'kb[postgres]'), "
                  f"or install the driver for {drivername}")
    return f"KB_DATABASE_URL asks for {drivername}, but {missing}: {advice}."


def _make_engine(url: str) -> sa.Engine:
    """The engine itself (see make_engine)."""
    if url.startswith("sqlite"):
        sa_url = sa.make_url(url)
        if sa_url.database and sa_url.database != ":memory:":
            Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "checkin", _restore_durability)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """Foreign keys on, WAL so readers never wait for the writer, and every commit flushed to disk."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    _set_wal(cursor)
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _set_wal(cursor) -> None:
    """Switch to WAL, waiting out another process's lock as any statement does (up to SQLITE_BUSY_SECONDS).

    On a database file not yet in WAL (a new one) the switch fails at once while another process
    holds a lock: SQLite does not wait for it there. Workers that start together on a new
    database (gunicorn -w 4 on a first run) would otherwise fail to boot.
    """
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if not sqlite_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def sqlite_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock (worth waiting or skipping, not a fault)."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def relax_durability(connection: sa.Connection) -> None:
    """Let this transaction's commit skip the flush to disk: for counts and logs only, which a power cut may take back.

    Call it before the transaction's first write. A crash of kb loses nothing either way, and the
    database stays whole; after a power cut or an OS crash the last such commits may be missing.
    SQLite: synchronous=NORMAL until the connection returns to the pool, which sets FULL again
    (SQLite refuses the change inside a transaction: then the commit simply flushes, as any other);
    PostgreSQL: synchronous_commit off for this transaction. Why: on SQLite the flush holds the one
    write lock, so under load every worker's page that logs a search waited for the others' disk.
    """
    if connection.dialect.name == "sqlite":
        if connection.connection.dbapi_connection.in_transaction:
            return
        connection.info[RELAXED] = True
        connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


def _restore_durability(dbapi_connection, record) -> None:
    """A SQLite connection back in the pool after a relaxed commit flushes every commit again."""
    if not record.info.pop(RELAXED, False) or dbapi_connection is None:
        return
    try:
        dbapi_connection.execute("PRAGMA synchronous=FULL")
    except Exception:  # noqa: BLE001 - a connection that cannot be set back is never handed out again
        record.invalidate()


def begin_write(session: so.Session) -> None:
    """Make the session's transaction a real one before savepoints, on SQLite (elsewhere nothing).

    Python's sqlite3 opens a transaction only at the first INSERT or UPDATE, so a savepoint taken
    before it starts a transaction of its own, and its RELEASE commits: a later rollback would
    not undo it. BEGIN IMMEDIATE takes the write lock now (waiting out other writers), so the
    reads that follow cannot go stale before the writes.
    """
    _begin_immediate(session.connection())


def _begin_immediate(connection: sa.Connection) -> None:
    """On SQLite, start the transaction now with the write lock (waiting out other writers); elsewhere nothing."""
    if connection.dialect.name == "sqlite" and not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision`` on ``engine``, one process at a time, in one transaction."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        _lock_migrations(connection)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def _lock_migrations(connection: sa.Connection) -> None:
    """Wait until no other process migrates, and keep them waiting until this transaction ends.

    Gunicorn starts its workers together, and each migrates at start (AUTO_MIGRATE): without the
    lock two read the same version and both apply the next step, and the second fails ("index ...
    already exists") and stops the server. With it the others wait, then find nothing to do.
    SQLite: the write lock, taken before the version is read (waits up to the 30 s busy timeout);
    PostgreSQL: a transaction-level advisory lock.
    """
    _begin_immediate(connection)
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def init_app(app: Flask) -> None:
    """Create the engine, migrate if asked, and close each request's session at teardown."""
    engine = make_engine(app.config["DATABASE_URL"])
    if app.config["AUTO_MIGRATE"]:
        upgrade(engine)
    app.extensions["kb.db"] = Database(engine, so.sessionmaker(engine, expire_on_commit=False))
    app.teardown_appcontext(_close_session)


def get_db(app: Flask | None = None) -> Database:
    """The app's Database."""
    return (app or current_app).extensions["kb.db"]


def get_session() -> so.Session:
    """The session of the current app context, opened on first use."""
    if "kb_session" not in g:
        g.kb_session = get_db().sessionmaker()
    return g.kb_session


def _close_session(_exc: BaseException | None) -> None:
    """Roll back what a failed request left and close its session."""
    session = g.pop("kb_session", None)
    if session is not None:
        session.close()


@contextmanager
def session_scope(app: Flask | None = None) -> Iterator[so.Session]:
    """A session outside any request (CLI, worker threads): commit on success, roll back on error."""
    session = get_db(app).sessionmaker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
