"""The content version as kept pages read it: asked of the database at most every few seconds per process.

Reading the version (the search backend's version and the change feed's head, one query) was a
third of the work of serving a kept page, and the only database work of a kept article page or API
answer. So a process reuses the value it read for up to PAGE_CACHE_CHECK_SECONDS, as the synonym
sets are re-read at most every second (kb.search.synonyms): a change made in another process
shows on public pages within that time. A change this process commits itself (a session that
queued an index change, ``kb.articles.enqueue_index``) makes the next read fresh, so an agent who
saves and opens the page sees it at once; so does an index commit of this process (the
backend calls ``touch``).
"""

from __future__ import annotations

import time
from typing import Callable

import sqlalchemy.orm as so

from kb.search import feed


class ContentClock:
    """One app's last read of the content version, with when it was read and how many local changes it saw."""

    def __init__(self, read: Callable[[so.Session], object]):
        self.read = read
        self.changes = 0  # content changes committed by this process
        self.last: tuple[object, float, int] | None = None  # (version, monotonic time read, changes then)
        self._listeners: list[tuple] = []

    def version(self, session: Callable[[], so.Session], max_age: float):
        """The content version read on ``session()``, or the one read less than ``max_age`` seconds ago if nothing changed here since."""
        last, now, changes = self.last, time.monotonic(), self.changes
        if last is not None and now - last[1] < max_age and last[2] == changes:
            return last[0]
        value = self.read(session())
        # None (the index is being built) is asked again next time: pages are kept as soon as it is there
        self.last = None if value is None else (value, now, changes)
        return value

    def touch(self) -> None:
        """This process changed what searches find (it committed to its index): read the version afresh next time."""
        self.changes += 1

    def listen(self, sessionmaker: so.sessionmaker) -> None:
        """Count the commits of ``sessionmaker``'s sessions that queued an index change (every article change does)."""
        self._listeners += feed.on_commit_of_changes(sessionmaker, self.touch)

    def close(self) -> None:
        """Unhook the session events (SQLAlchemy keeps them, and through them this clock's app, alive until then)."""
        feed.remove_listeners(self._listeners)
        self._listeners = []
