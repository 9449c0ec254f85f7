"""A Whoosh generation's cursor in the change feed, kept in a small JSON file inside the generation.

Living inside the generation folder, a rebuilt generation carries its own cursor, and switching
CURRENT switches index and cursor at once. The file is replaced atomically (os.replace) after each
commit, and only by the process holding the index folder's feed lock (kb.search.follower). It also
holds this host's retry state of articles that failed: retries are per host, not per change row.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from kb.search.feed import Position

FILE = "FEED.json"
VERSION = 1  # another version (or no file) means the generation cannot follow the feed: rebuild it


@dataclass
class Retry:
    """An article this host could not index: tried ``attempts`` times, next at ``due`` (None: gave up).

    ``seen`` is the newest change of the article the attempts answer; a change past it starts the count over.
    """

    attempts: int
    due: datetime | None
    seen: Position
    error: str = ""


@dataclass
class Cursor:
    """Everything up to ``position`` is in the index, except the articles in ``retries``."""

    position: Position
    retries: dict[int, Retry] = field(default_factory=dict)


def load(folder: Path) -> Cursor | None:
    """The cursor of a generation folder, or None if it has none (or one kb cannot read)."""
    try:
        data = json.loads((folder / FILE).read_text(encoding="utf-8"))
        if data.get("version") != VERSION:
            return None
        retries = {int(article_id): Retry(int(r["attempts"]), datetime.fromisoformat(r["due"]) if r["due"] else None,
                                          _position(r["seen"]), str(r.get("error", "")))
                   for article_id, r in data.get("retries", {}).items()}
        return Cursor(_position(data["position"]), retries)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _position(value) -> Position:
    """A position from its JSON form [txid, id]."""
    txid, change_id = value
    return (int(txid), int(change_id))


def save(folder: Path, cursor: Cursor) -> None:
    """Write the cursor atomically: readers see the old file or the new one, never half of one."""
    data = {"version": VERSION, "position": list(cursor.position),
            "retries": {str(article_id): {"attempts": r.attempts, "due": r.due.isoformat() if r.due else None,
                                          "seen": list(r.seen), "error": r.error}
                        for article_id, r in sorted(cursor.retries.items())}}
    tmp = folder / f".{FILE}.{secrets.token_hex(4)}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / FILE)
