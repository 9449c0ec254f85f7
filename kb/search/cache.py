"""A per-process LRU whose entries are valid for one search version only (result pages, related lists)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable


class VersionedCache:
    """An LRU of ``size`` entries, emptied when the search version moves on (size 0 or version None: off).

    With ``max_bytes`` and ``weigh`` (a value's size in bytes) it also holds at most that many bytes,
    and never a value larger than a quarter of them: entries of very different sizes (a page of a
    500,000-character article beside a short one) must not let a count bound hold gigabytes.
    """

    def __init__(self, size: int, max_bytes: int = 0, weigh: Callable[[Any], int] | None = None):
        self.size, self.version = size, None
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()
        self.max_bytes, self.weigh = (max_bytes, weigh) if max_bytes > 0 and weigh is not None else (0, None)
        self.weights: dict = {}  # key -> its value's bytes (when weighed)
        self.bytes = 0

    def get(self, version, key):
        """The value kept for ``key`` at ``version``, or None (a newer version empties the cache)."""
        if self.size <= 0 or version is None:
            return None
        with self.lock:
            if version != self.version:
                if self.version is None or _newer(version, self.version):
                    self._clear()
                    self.version = version
                return None
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def fits(self, value) -> bool:
        """Whether ``value`` is small enough to keep (always, unless the cache weighs its values)."""
        return self.weigh is None or self.weigh(value) <= self.max_bytes // 4

    def put(self, version, key, value) -> None:
        """Keep a value computed at ``version`` (dropped if the cache has moved to another version since, or too large)."""
        if self.size <= 0 or version is None:
            return
        weight = self.weigh(value) if self.weigh is not None else 0
        if weight > self.max_bytes // 4:
            return
        with self.lock:
            if version != self.version:
                return
            self.bytes += weight - self.weights.pop(key, 0)
            self.items[key] = value
            if self.weigh is not None:
                self.weights[key] = weight
            while len(self.items) > self.size or self.bytes > self.max_bytes:
                old, _value = self.items.popitem(last=False)
                self.bytes -= self.weights.pop(old, 0)

    def _clear(self) -> None:
        """Forget every entry (the lock is held)."""
        self.items.clear()
        self.weights.clear()
        self.bytes = 0


def _newer(version, than) -> bool:
    """Whether ``version`` is later than ``than``; versions sort by age, and one of another shape counts as newer.

    A thread that read the version just before a commit must not empty what threads on the newer one kept.
    """
    try:
        return version > than
    except TypeError:
        return True
