"""Related articles of the article pages, kept per process so that a page view seldom searches.

An article's related list depends on the article (its title, tags, language and category: any edit
changes ``updated_at``) and on everything searches can find (the backend's ``version()``, which
changes with each change the index applies and each synonym change). So an entry is keyed on
(article id, updated_at, limit) and valid for one version only: after a publish anywhere, each
page searches once more and shows the new article among the related ones if it belongs there.
Entries hold article ids, never ORM objects (those belong to one request's session).
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class RelatedCache:
    """An LRU of related-article ids, emptied when the search version moves on."""

    def __init__(self, size: int):
        self.size, self.version = size, None
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, version, key) -> tuple[int, ...] | None:
        """The ids kept for ``key`` at ``version``, or None (a newer version empties the cache)."""
        if self.size <= 0 or version is None:
            return None
        with self.lock:
            if version != self.version:
                if self.version is None or _newer(version, self.version):
                    self.items.clear()
                    self.version = version
                return None
            ids = self.items.get(key)
            if ids is not None:
                self.items.move_to_end(key)
            return ids

    def put(self, version, key, ids) -> None:
        """Keep the ids found at ``version`` (dropped if the cache has moved to another version since)."""
        if self.size <= 0 or version is None:
            return
        with self.lock:
            if version != self.version:
                return
            self.items[key] = tuple(ids)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


def _newer(version, than) -> bool:
    """Whether ``version`` is later than ``than``; versions sort by age, and one of another shape counts as newer.

    A thread that read the version just before a commit must not empty what threads on the newer one kept.
    """
    try:
        return version > than
    except TypeError:
        return True
