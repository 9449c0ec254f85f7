"""Search-log rows written in batches: a search without a visitor is kept in memory, not committed per request.

Committing one row per search cost a request more than the rest of its work outside the index
(benchmarks/api_search.py). A search without a visitor (the JSON API's) needs no row id back: it
never collapses into another and no click can name it, since only the portal's result links carry
a search id. So its row waits here, and a thread writes every waiting row in one transaction
SEARCH_LOG_FLUSH_SECONDS later (at once when FLUSH_ROWS wait), and once more when the app closes
or the process exits. A portal search still writes its row in its request: its id goes into the
result links and a click on one may reach any process. SEARCH_LOG_FLUSH_SECONDS=0 writes every
row in its request, as before.

Bounded: while the database refuses the rows they are kept and tried again, at most MAX_ROWS (the
oldest are then dropped, with a warning). A row that waited past the retention period (kb.retention)
is written blanked, as the daily job would have left it.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

import sqlalchemy as sa

from kb.db import relax_durability
from kb.insights import searchlog  # the module, not its names: kb.search and searchlog import each other
from kb.models import SearchLog, utcnow

log = logging.getLogger(__name__)
FLUSH_ROWS = 200  # this many waiting rows are written at once, without waiting for the period
MAX_ROWS = 10_000  # never more rows than this in memory, whatever the database does
_LIVE: "weakref.WeakSet[LogBuffer]" = weakref.WeakSet()


class LogBuffer:
    """Waiting search-log rows of one app, written by ``flush`` (a thread calls it; so do close and exit)."""

    def __init__(self, engine: Callable[[], sa.Engine], seconds: float, retention_days: float):
        self.engine, self.seconds, self.retention = engine, seconds, timedelta(days=retention_days)
        self.rows: list[tuple[str, str, int, datetime]] = []
        self.dropped = 0
        self.lock = threading.Lock()  # guards rows, dropped and thread
        self.flushing = threading.Lock()  # one writer at a time keeps the rows in order
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.closed = False
        _LIVE.add(self)

    def add(self, query: str, lang: str, results: int, now: datetime) -> bool:
        """Keep one search's row for the next flush; False once closed (the caller writes it itself)."""
        with self.lock:
            if self.closed:
                return False
            if len(self.rows) >= MAX_ROWS:
                self.rows.pop(0)
                self.dropped += 1
            self.rows.append((str(query or "")[:searchlog.MAX_QUERY], lang, int(results), now))
            if len(self.rows) >= FLUSH_ROWS:
                self.wake.set()
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="kb-search-log", daemon=True)
                self.thread.start()
        return True

    def _run(self) -> None:
        """Flush every period while rows wait; end when none are left (the next ``add`` starts another)."""
        while True:
            self.wake.wait(self.seconds)
            self.wake.clear()
            self.flush()
            with self.lock:
                if not self.rows or self.closed:
                    self.thread = None
                    return

    def flush(self) -> int:
        """Write every waiting row in one transaction; how many were written (0 if the database refused)."""
        with self.flushing:
            with self.lock:
                rows, self.rows = self.rows, []
                dropped, self.dropped = self.dropped, 0
            if dropped:
                log.warning("the search log dropped %d searches: the database refused them for too long", dropped)
            if not rows:
                return 0
            try:
                self._write(rows)
                return len(rows)
            except Exception:  # noqa: BLE001 - analytics never fail the process: keep the rows, try again
                if self._answers():  # the database is up, so some row is the problem: write the others
                    return self._write_each(rows)
                log.warning("could not write %d search-log rows; trying again later", len(rows), exc_info=True)
                with self.lock:
                    lost = max(0, len(rows) + len(self.rows) - MAX_ROWS)  # the newest rows are kept
                    self.rows[:0], self.dropped = rows[lost:], self.dropped + lost
                return 0

    def _write(self, rows: list[tuple[str, str, int, datetime]]) -> None:
        """Insert ``rows`` in one transaction."""
        with self.engine().begin() as conn:
            relax_durability(conn)  # a log: a power cut may take back the last batch, never a crash
            conn.execute(sa.insert(SearchLog.__table__), [self._values(row) for row in rows])

    def _answers(self) -> bool:
        """Whether the database takes a trivial statement: a refused batch is then the rows' fault, not its."""
        try:
            with self.engine().connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - down, locked or gone: the caller keeps the rows
            return False

    def _write_each(self, rows: list[tuple[str, str, int, datetime]]) -> int:
        """Write the rows one transaction each, dropping (with a warning) any the database refuses on its own."""
        refused = 0
        for row in rows:
            try:
                self._write([row])
            except Exception:  # noqa: BLE001 - one bad row must not hold back every search behind it
                refused += 1
                log.warning("dropped a search-log row (lang %r, %r results) the database refuses", row[1], row[2],
                            exc_info=True)  # never the query: customer text stays out of logs
        return len(rows) - refused

    def _values(self, row: tuple[str, str, int, datetime]) -> dict[str, Any]:
        """The row's columns; a row past the retention period blanked as kb.retention would."""
        query, lang, results, created = row
        values = searchlog.row_values(query, lang, results, "", created)
        if created < utcnow() - self.retention:
            values.update(query="", group_key="")
        return values

    def close(self) -> None:
        """Write what waits and stop the thread (``add`` refuses rows from then on)."""
        with self.lock:
            self.closed, thread = True, self.thread
        self.wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        self.flush()
        _LIVE.discard(self)

    def _after_fork(self) -> None:
        """In a forked child: the parent's rows are the parent's to write, and its thread is not here."""
        self.rows, self.dropped, self.thread = [], 0, None
        self.lock, self.flushing, self.wake = threading.Lock(), threading.Lock(), threading.Event()


def make(settings: Mapping[str, Any], engine: Callable[[], sa.Engine], retention_days: float) -> LogBuffer | None:
    """A buffer for an app with these settings, or None when SEARCH_LOG_FLUSH_SECONDS is 0 (write in the request)."""
    seconds = float(settings.get("SEARCH_LOG_FLUSH_SECONDS") or 0)
    return LogBuffer(engine, seconds, retention_days) if seconds > 0 else None


def _flush_all() -> None:
    """At exit: write what every live buffer holds."""
    for buffer in list(_LIVE):
        buffer.close()


atexit.register(_flush_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: [buffer._after_fork() for buffer in list(_LIVE)])
