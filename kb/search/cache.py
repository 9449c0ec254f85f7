"""A per-process LRU whose entries are valid for one search version only (result pages, related lists)."""

from __future__ import annotations

import threading
from collections import OrderedDict


class VersionedCache:
    """An LRU of ``size`` entries, emptied when the search version moves on (size 0 or version None: off)."""

    def __init__(self, size: int):
        self.size, self.version = size, None
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, version, key):
        """The value kept for ``key`` at ``version``, or None (a newer version empties the cache)."""
        if self.size <= 0 or version is None:
            return None
        with self.lock:
            if version != self.version:
                if self.version is None or _newer(version, self.version):
                    self.items.clear()
                    self.version = version
                return None
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, version, key, value) -> None:
        """Keep a value computed at ``version`` (dropped if the cache has moved to another version since)."""
        if self.size <= 0 or version is None:
            return
        with self.lock:
            if version != self.version:
                return
            self.items[key] = value
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
