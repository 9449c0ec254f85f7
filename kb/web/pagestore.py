"""The page cache's second tier: kept pages in a SQLite file in INSTANCE_DIR, shared by one host's processes.

Each gunicorn worker keeps pages in its own memory (kb.web.pagecache), so without this tier a
popular page is rendered once by every worker, and each restart renders them all again. Here a
page one worker rendered is read by the others (one lookup by primary key). The file is a cache:
it holds only public pages with their per-visitor holes, deleting it loses nothing, and an
unreadable file makes that process keep pages in memory only, with a warning saying so.

Entries are keyed on a stamp of the code and the settings (so processes of another release or
configuration never share a page), the content version and the address. The content version is the
same in every process on the same content and names the database's feed head by its time too
(kb.search.feed.head_mark), so the file outlives restarts: a worker that gunicorn starts again
(``--max-requests``, a crash) or a host restarted on the same release serves what was rendered
before, and a database made anew never meets its predecessor's pages.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
from functools import lru_cache
from pathlib import Path

from kb.db import sqlite_busy

log = logging.getLogger(__name__)

FILE_NAME = "pagecache.sqlite3"
SWEEP_EVERY = 50  # puts (per process) between removals of other versions' and the oldest entries
BUSY_SECONDS = 0.25  # a write waits this long for another process's write, then the page is not shared
SCHEMA = "CREATE TABLE IF NOT EXISTS pages (key BLOB PRIMARY KEY, version BLOB NOT NULL, value TEXT NOT NULL)"


class PageStore:
    """Kept pages (JSON-able values) in one SQLite file, bounded to about ``size`` entries."""

    def __init__(self, path: str | Path, size: int, stamp: str):
        self.path, self.size, self.stamp = Path(path), size, stamp
        self.broken = False
        self._local = threading.local()
        self._puts = 0

    def check(self) -> None:
        """Open the file once at start, so an unusable one is reported then, with what to do, not at a first page."""
        self._run(lambda db: None)
        db = getattr(self._local, "db", None)
        if db is not None:  # closed: a server may fork its workers from this process next
            self._local.db = None
            db.close()

    def get(self, version, key: tuple):
        """The value kept for ``key`` at ``version``, or None."""
        def read(db):
            row = db.execute("SELECT value FROM pages WHERE key = ?", (_digest(self.stamp, version, key),)).fetchone()
            return None if row is None else json.loads(row[0])  # a value that is not JSON: the file is unusable
        return self._run(read)

    def put(self, version, key: tuple, value) -> None:
        """Keep ``value`` for ``key`` at ``version``; now and then drop other versions and the oldest entries."""
        if self.broken or self.size <= 0:
            return
        text = json.dumps(value)
        self._puts += 1
        sweep = self._puts % SWEEP_EVERY == 1

        def write(db):
            digest = _digest(self.stamp, version)
            db.execute("INSERT OR REPLACE INTO pages (key, version, value) VALUES (?, ?, ?)",
                       (_digest(self.stamp, version, key), digest, text))
            if sweep:  # a replaced or new row takes the highest rowid: the oldest have the lowest
                db.execute("DELETE FROM pages WHERE version <> ?", (digest,))
                db.execute("DELETE FROM pages WHERE rowid <= (SELECT rowid FROM pages ORDER BY rowid DESC "
                           "LIMIT 1 OFFSET ?)", (self.size,))
        self._run(write)

    def _run(self, work):
        """``work(connection)``; None when the file is busy or unusable (a cache never fails a page)."""
        if self.broken or self.size <= 0:
            return None
        try:
            return work(self._connection())
        except sqlite3.OperationalError as exc:
            if sqlite_busy(exc):
                return None  # another process is writing: this page is simply not shared this time
            self._give_up(exc)
        except (sqlite3.Error, OSError, ValueError) as exc:
            self._give_up(exc)
        return None

    def _give_up(self, exc: Exception) -> None:
        """Stop using the file in this process, saying why and what to do."""
        self.broken = True
        log.warning("The shared page cache %s cannot be used (%s); this process keeps pages in memory only. "
                    "Delete the file (kb makes it again on the next start) or set KB_PAGE_CACHE_SHARED=false.",
                    self.path, exc)

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a fork: a SQLite connection must not cross one)."""
        db = getattr(self._local, "db", None)
        if db is None or self._local.pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
            db.execute("PRAGMA synchronous=OFF")  # a cache: a crash may lose entries, never pages
            db.execute(SCHEMA)
            self._local.db, self._local.pid = db, os.getpid()
        return db


def _digest(*parts) -> bytes:
    """A row's key (stamp, version, address) or its version's mark (stamp, version): a digest of their repr."""
    return hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).digest()


def stamp(config, package: Path) -> str:
    """A digest of the settings and of kb's files (names, sizes, times): pages of another release or setup differ."""
    digest = hashlib.sha256(_files_digest(Path(package)).encode())
    digest.update(json.dumps(dict(config), sort_keys=True, default=_plain).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


@lru_cache(maxsize=4)
def _files_digest(package: Path) -> str:
    """A digest of the names, sizes and times of the files under ``package`` (once per process: a new release restarts it)."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            info = os.stat(os.path.join(root, name))
            digest.update(f"{os.path.relpath(os.path.join(root, name), package)}:{info.st_size}:{info.st_mtime_ns};"
                          .encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _plain(value) -> object:
    """A setting's value as JSON, the same in every process (sets sorted: their order is per process)."""
    if isinstance(value, (set, frozenset)):
        return sorted(map(str, value))
    return str(value)
