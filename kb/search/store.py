"""Index storage: generation folders under INDEX_DIR, an atomic CURRENT pointer, cached readers.

A full rebuild writes a new generation aside and then switches CURRENT with os.replace, so
searches never see a half-built index. Searchers are pooled and reused; one is replaced when
the generation switched or ``up_to_date()`` is false (never ``Searcher.refresh()``: it brings
back old segments in every maintained Whoosh fork).
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from whoosh import index as whoosh_index
from whoosh.index import LockError

from kb.search import mapped
from kb.search.schema import SCHEMA_VERSION, make_schema

mapped.install()  # before any index opens: its files are read from their memory map, not copied per reader

POINTER = "CURRENT"
POINTER_MOST = 256  # bytes read of CURRENT: a generation's name is about 30
VERSION_FILE = "KB_SCHEMA"
PREFIX = "gen-"
MAX_IDLE = 8  # pooled searchers kept open; more concurrent searches open extra ones


class IndexStore:
    """The index folder of one app: generations, the current pointer, writers and searchers."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._folder, self._pointer = str(self.root), str(self.root / POINTER)  # str: a Path join costs more than the read
        self._indexes: dict[str, whoosh_index.Index] = {}
        self._idle: list[tuple[str, object]] = []
        self._closed = False
        self._lock = threading.Lock()

    # -- generations -------------------------------------------------------------------

    def current(self) -> str | None:
        """The name of the current generation, or None if there is no usable index."""
        # Cheap on purpose (every search calls it): one small read, one stat; a broken generation fails on open instead.
        name = _read_small(self._pointer)
        if name is None or not name.startswith(PREFIX) or not os.path.isdir(os.path.join(self._folder, name)):
            return None
        return name

    def schema_version(self, gen: str) -> str | None:
        """The kb schema version a generation was built with."""
        try:
            return (self.root / gen / VERSION_FILE).read_text(encoding="utf-8").strip()
        except OSError:
            return None

    def create_generation(self) -> str:
        """Make a new, empty generation folder (not yet current) and return its name."""
        name = f"{PREFIX}{time.time_ns():x}-{secrets.token_hex(3)}"
        path = self.root / name
        path.mkdir(parents=True)
        whoosh_index.create_in(str(path), make_schema())
        (path / VERSION_FILE).write_text(SCHEMA_VERSION, encoding="utf-8")
        return name

    def switch(self, gen: str) -> None:
        """Make ``gen`` current atomically, then delete all but it and its predecessor."""
        previous = self.current()
        tmp = self.root / f".{POINTER}.{secrets.token_hex(4)}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(gen)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / POINTER)
        # Keep the predecessor: another process may have just read the old pointer.
        self.delete_generations(keep={gen, previous})

    def delete_generations(self, keep: set) -> None:
        """Remove generation folders not in ``keep``."""
        for path in self.root.glob(f"{PREFIX}*"):
            if path.name not in keep:
                with self._lock:
                    self._indexes.pop(path.name, None)
                shutil.rmtree(path, ignore_errors=True)

    def index(self, gen: str) -> whoosh_index.Index:
        """The (cached) Whoosh index object of a generation."""
        with self._lock:
            ix = self._indexes.get(gen)
            if ix is None:
                ix = self._indexes[gen] = whoosh_index.open_dir(str(self.root / gen))
            return ix

    def folder(self, gen: str) -> Path:
        """The folder of a generation (its Whoosh files and its feed cursor)."""
        return self.root / gen

    def rebuild_lock(self):
        """Serialise full rebuilds between processes (flock on a file in INDEX_DIR)."""
        return self._flock(".rebuild.lock")

    def feed_lock(self):
        """Serialise following the change feed between processes: one applies and moves the cursor."""
        return self._flock(".feed.lock")

    @contextmanager
    def try_rebuild_lock(self) -> Iterator[bool]:
        """The rebuild lock if it is free now (True), else False at once: a thread never waits on another's rebuild."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".rebuild.lock", "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def rebuild_running(self) -> bool:
        """Whether a rebuild holds the rebuild lock now (in this process or another)."""
        with self.try_rebuild_lock() as free:
            return not free

    @contextmanager
    def _flock(self, name: str) -> Iterator[None]:
        """Hold an exclusive flock on a file in INDEX_DIR (a new open file: it excludes this process's other holders too)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / name, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- writing -----------------------------------------------------------------------

    def writer(self, gen: str | None = None, timeout: float = 10.0):
        """(gen, writer) on the current generation (or ``gen``), waiting for other writers."""
        for _attempt in range(5):
            target = gen or self.current()
            if target is None:
                raise LockError("no search index yet")
            writer = self.index(target).writer(timeout=timeout, delay=0.05)
            # A rebuild may have switched generations while we waited for the lock.
            if gen is not None or self.current() == target:
                return target, writer
            writer.cancel()
        raise LockError("the search index keeps switching generations")

    # -- reading -----------------------------------------------------------------------

    @contextmanager
    def searcher(self):
        """(gen, searcher) for exclusive use, from a pool of reused searchers; (None, None) if no index.

        A pool rather than one searcher per thread: threaded servers start a thread per
        request, and per-thread searchers would pile up open files.
        """
        gen, searcher = self._checkout()
        try:
            yield gen, searcher
        except BaseException:
            if searcher is not None:
                _close(searcher)  # it may be what failed; never hand it out again
            raise
        else:
            if searcher is not None:
                self._checkin(gen, searcher)

    def _checkout(self):
        """An idle searcher of the current generation that is up to date, else a new one."""
        for attempt in range(4):
            gen = self.current()
            if gen is None:
                return None, None
            stale = []
            with self._lock:
                while self._idle:
                    old_gen, old = self._idle.pop()
                    if old_gen == gen and _fresh(old):
                        return gen, old
                    stale.append(old)
            for old in stale:
                _close(old)
            try:
                return gen, self.index(gen).searcher()
            except (OSError, whoosh_index.EmptyIndexError):
                # A commit or a switch removed a file between listing and opening: look again.
                if attempt == 3:
                    raise
                time.sleep(0.005 * (attempt + 1))

    def _checkin(self, gen: str, searcher) -> None:
        """Return a searcher to the pool (or close it if the pool is full or closed)."""
        with self._lock:
            if not self._closed and len(self._idle) < MAX_IDLE:
                self._idle.append((gen, searcher))
                return
        _close(searcher)

    def close(self) -> None:
        """Close the pooled searchers (called when the app shuts down)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._closed = True
            self._indexes.clear()
        for _gen, searcher in idle:
            _close(searcher)


def _read_small(path: str) -> str | None:
    """The text of a small file kb writes whole (POINTER_MOST bytes at most), or None if there is none."""
    try:
        fd = os.open(path, os.O_RDONLY)  # not Path.read_text: with the joins done once, 3 times cheaper
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return os.read(fd, POINTER_MOST).decode("utf-8", "replace").strip()
    finally:
        os.close(fd)


def _fresh(searcher) -> bool:
    """Whether the searcher still shows the latest commit of its generation."""
    try:
        return searcher.up_to_date()
    except (OSError, ValueError):
        return False  # e.g. its generation folder was deleted


def _close(searcher) -> None:
    """Close a searcher; a stale reader failing to close must never break a search."""
    try:
        searcher.close()
    except Exception:  # noqa: BLE001
        pass
