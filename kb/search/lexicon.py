"""How many documents hold a term, segment by segment, remembered: a segment never changes.

Whoosh looks a term up in each segment's on-disk hash table (an md5 of the key and a few reads,
some microseconds); planning one query asks about the same few dozen terms several times over
(typo checks, pricing the clauses, scoring), in every segment, so a few hundred lookups a query
after some publishes. Each segment's answer is kept here, up to MAX_TERMS answers in all.
"""

from __future__ import annotations

MAX_TERMS = 200_000  # (segment, field, term) answers kept; all are dropped at once past that

_frequencies: dict = {}


def segment_frequency(leaf, fieldname: str, text) -> int:
    """Whoosh's ``doc_frequency`` of one segment's reader (0: the segment does not hold the term)."""
    segment = leaf.segment()
    if segment is None:  # an empty reader: nothing to remember
        return leaf.doc_frequency(fieldname, text)
    key = (segment.segment_id(), fieldname, text)
    found = _frequencies.get(key)
    if found is None:
        found = leaf.doc_frequency(fieldname, text)
        if len(_frequencies) >= MAX_TERMS:
            _frequencies.clear()  # rare: a cheap bound, refilled by the next queries
        _frequencies[key] = found
    return found


def doc_frequency(reader, fieldname: str, text) -> int:
    """Whoosh's ``reader.doc_frequency`` (the sum over the reader's segments), from the remembered answers."""
    return sum(segment_frequency(leaf, fieldname, text) for leaf, _offset in reader.leaf_readers())
