"""Text that every database kb supports will store: the ledger's one sanitiser.

An email is whatever an outsider sent, and the parser hands its oddities on: lone surrogates for
8-bit bytes in headers (an internationalised address sent raw, a stray 0xFF), NUL characters,
values longer than their column. SQLite's driver refuses surrogates, PostgreSQL refuses NUL and
over-long values, and a refused first write used to block the mailbox for good. The column types
below run every value the ledger writes (inserts, updates, and the values it compares with)
through ``storable_text``, so no write can fail on what the email contained. Keys are different:
cutting two long keys to the same prefix would make two emails one, so ``storable_key`` replaces a
key that needs any change by a hash of the whole key.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import sqlalchemy as sa

REPLACEMENT = "\ufffd"
_NUL = "\x00"
# Surrogates outside surrogateescape's range (U+DC80-U+DCFF) cannot stand for a byte.
_OTHER_SURROGATES = re.compile("[\ud800-\udc7f\udd00-\udfff]")
_ANY_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(value: Any, max_chars: int | None = None) -> str:
    """``value`` as text both databases store: no NUL, no lone surrogate, at most ``max_chars``.

    Bytes the email package kept as surrogates (surrogateescape) are read again as UTF-8, so a raw
    ``用户@例子.广告`` is stored as itself and a stray 0xFF as U+FFFD.
    """
    text = value if isinstance(value, str) else str(value)
    if _ANY_SURROGATE.search(text):
        text = _OTHER_SURROGATES.sub(REPLACEMENT, text)
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if _NUL in text:
        text = text.replace(_NUL, REPLACEMENT)
    return text if max_chars is None else text[:max_chars]


def storable_key(key: str, max_chars: int, *, keep_prefix: str = "") -> str:
    """A unique key that fits: ``key`` itself if it is clean and short, else a hash of all of it.

    ``keep_prefix`` (e.g. shadow mode's "dry-run:") stays readable in front of the hash, so
    queries on the prefix still find the key.
    """
    if len(key) <= max_chars and storable_text(key) == key:
        return key
    prefix = keep_prefix if keep_prefix and key.startswith(keep_prefix) else ""
    digest = hashlib.sha256(key[len(prefix):].encode("utf-8", "surrogatepass")).hexdigest()
    return f"{prefix}key-sha256:{digest}"


def storable_json(value: Any) -> Any:
    """A JSON value whose strings (keys included) are all storable."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(k): storable_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable_json(v) for v in value]
    return value


class StoredString(sa.TypeDecorator):
    """VARCHAR(length) whose values are made storable (and cut to ``length``) on every write."""

    impl = sa.String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def process_bind_param(self, value: Any, dialect) -> str | None:
        """Sanitise a value on its way to the database."""
        return None if value is None else storable_text(value, self.length)


class StoredText(sa.TypeDecorator):
    """TEXT whose values are made storable on every write (and cut to ``max_chars`` if given)."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, max_chars: int | None = None) -> None:
        super().__init__()
        self.max_chars = max_chars

    def process_bind_param(self, value: Any, dialect) -> str | None:
        """Sanitise a value on its way to the database."""
        return None if value is None else storable_text(value, self.max_chars)


class StoredJSON(sa.TypeDecorator):
    """JSON whose strings are made storable on every write."""

    impl = sa.JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect) -> Any:
        """Sanitise a value on its way to the database."""
        return storable_json(value)
