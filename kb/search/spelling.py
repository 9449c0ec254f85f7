"""Each index segment's vocabulary as a set, for one-edit typo candidates without scanning it.

A Whoosh segment never changes after it is written, so its set is made once and kept while the
segment is in use; a publish adds a small segment, whose set is small. The words are cut from the
terms table's bytes with numpy (``_words_in_place``): 8 ms for the 24,000 words of 10,000 articles,
about 50 ms for the 196,000 of 100,000 articles' 8 segments, so a worker's first typo query there
takes 70-105 ms. Candidates are the word's one-edit variants (deletes, transposes, replaces, inserts
over the letters the vocabulary uses), looked up in the set: a few hundred lookups.
"""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict

import numpy as np
from whoosh.codec.whoosh3 import W3TermsReader
from whoosh.filedb.filetables import OrderedHashReader

MAX_SEGMENTS = 32  # sets kept (a segment id and field each); the oldest go first
ALPHABET_SIZE = 40  # the most used letters of a vocabulary: edits with rarer ones are not tried
RECORD = struct.Struct("!ii")  # whoosh.filedb.filetables: each record's key and value lengths, then both
CHUNK = 1 << 18  # bytes of the terms table read at a time
INDEX_TYPES = {"B": ">u1", "H": ">u2", "i": ">i4", "I": ">u4", "q": ">i8"}  # the index array's struct codes, as numpy's

_sets: OrderedDict = OrderedDict()
_lock = threading.Lock()


def vocabulary(leaf, fieldname: str) -> tuple[frozenset, str]:
    """(the words of ``fieldname`` in one segment's reader, the letters they mostly use), cached."""
    key = (leaf.segment().segment_id(), fieldname)
    with _lock:
        found = _sets.get(key)
        if found is not None:
            _sets.move_to_end(key)
            return found
    words = _words_in_place(leaf, fieldname)
    if words is None:
        stored = _stored_terms(leaf, fieldname)
        words = _decoded(leaf.lexicon(fieldname) if stored is None else stored)
    found = (words, _most_used_letters(words))
    with _lock:
        _sets[key] = found
        while len(_sets) > MAX_SEGMENTS:
            _sets.popitem(last=False)
    return found


def _words_in_place(leaf, fieldname: str) -> frozenset | None:
    """The field's words of one segment cut from the terms table's bytes with numpy; None: read them another way.

    The table's index array holds every record's position in key order, so the field's records
    are one slice of it (two binary searches), and each record is its key's length, its value's
    length, then the key: the keys are gathered into one buffer with a separator after each and
    decoded and split in one call each. 196,000 words of 8 segments at 100,000 articles: about
    45 ms, where the chunked walk of ``_stored_terms`` takes 115-125 ms. Only for a table read from
    a buffer (an mmap'd compound file; kb.search.mapped), and words without the separator.
    """
    table = _table(leaf, fieldname)
    if not table:
        return None if table is None else frozenset()
    tindex, prefix = table
    raw = getattr(tindex.dbfile, "_buf", None)
    kind = INDEX_TYPES.get(tindex.extras.get("indextype"))
    if raw is None or kind is None:
        return None
    first, last = _bounds(tindex, prefix)
    if last <= first:
        return frozenset()
    data = np.frombuffer(raw, dtype=np.uint8)
    starts = np.frombuffer(raw, dtype=np.dtype(kind), count=last - first,
                           offset=tindex.indexbase + first * tindex.indexsize).astype(np.int64)
    keylen = np.frombuffer(data[starts[:, None] + np.arange(4)].tobytes(), dtype=">i4").astype(np.int64)
    lengths = keylen - len(prefix) + 1  # each word and the separator after it
    ends = np.cumsum(lengths)
    shift = starts + RECORD.size + len(prefix) - (ends - lengths)  # from a byte's place in the output to the file
    source = np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(shift, lengths)
    joined = data[source]
    joined[ends - 1] = 0  # the separator's place held the next record's first byte
    found = joined[:-1].tobytes()
    if found.count(b"\x00") != last - first - 1:  # a word holds the separator: the way that decodes one by one
        return None
    return frozenset(found.decode("utf-8").split("\x00"))


def _bounds(table, prefix: bytes) -> tuple[int, int]:
    """[first, last) of the records whose key starts with ``prefix``, in the table's sorted index array."""
    key_at, get_pos, base, size = table.key_at, table._get_pos, table.indexbase, table.indexsize

    def first_where(beyond) -> int:
        lo, hi = 0, table.indexlen
        while lo < hi:
            mid = (lo + hi) // 2
            if beyond(key_at(get_pos(base + mid * size))):
                hi = mid
            else:
                lo = mid + 1
        return lo
    cut = len(prefix)
    return first_where(lambda key: key >= prefix), first_where(lambda key: key[:cut] > prefix)


def _table(leaf, fieldname: str):
    """(whoosh3's terms table, the field's key prefix); False when the field has no words; None: not whoosh3's."""
    terms = getattr(leaf, "_terms", None)
    if type(terms) is not W3TermsReader or type(terms._tindex) is not OrderedHashReader:
        return None
    if fieldname not in terms._fieldmap:
        return False
    return terms._tindex, terms._keycoder(fieldname, b"")


def _stored_terms(leaf, fieldname: str) -> list[bytes] | None:
    """``leaf.lexicon(fieldname)`` read straight from whoosh3's terms table; None: ask Whoosh.

    The table's records are ordered by key (the field's number, then the term), so the field's
    terms are one run of records from the first key with its prefix. Whoosh walks them through
    four generators a term (about 200 ms for the 196,000 words of 8 segments at 100,000 articles); here
    the table is read in large chunks and cut with struct. Private to the pinned codec (as
    kb.search.termwise), so anything else takes Whoosh's way; tested against it.
    """
    found = _table(leaf, fieldname)
    if not found:
        return None if found is None else []
    table, prefix = found
    pos, end, cut = table.closest_key_pos(prefix), table.endofdata, len(prefix)
    words: list[bytes] = []
    chunk_size = CHUNK
    while pos is not None and pos < end:
        chunk = table.dbfile.get(pos, min(chunk_size, end - pos))
        at, limit = 0, len(chunk)
        while at + RECORD.size <= limit:
            keylen, datalen = RECORD.unpack_from(chunk, at)
            start = at + RECORD.size
            if start + keylen > limit:  # the key runs past this chunk: read on from its record
                break
            key = chunk[start:start + keylen]
            if key[:cut] != prefix:  # the next field's terms
                return words
            words.append(key[cut:])
            at = start + keylen + datalen  # its value may run past the chunk: the next read starts after it
        if at == 0:  # one record larger than a chunk
            chunk_size *= 2
        pos += at
    return words


def _decoded(terms) -> frozenset:
    """The terms (UTF-8 bytes) as a set of str, decoded in one call when none holds the separator."""
    terms = list(terms)
    joined = b"\x00".join(terms)
    if joined.count(b"\x00") == len(terms) - 1:  # C-level: one decode and one split for them all
        return frozenset(joined.decode("utf-8").split("\x00")) if terms else frozenset()
    return frozenset(btext.decode("utf-8") for btext in terms)


def _most_used_letters(words: frozenset) -> str:
    """The ALPHABET_SIZE letters most used in ``words``, commonest first (ties by code point, the same in every process)."""
    if not words:
        return ""
    counts = np.bincount(np.frombuffer("".join(words).encode("utf-32-le"), dtype=np.uint32))
    used = np.flatnonzero(counts)
    return "".join(map(chr, used[np.lexsort((used, -counts[used]))][:ALPHABET_SIZE].tolist()))


def edits(word: str, alphabet: str) -> set[str]:
    """Every string one edit (Damerau-Levenshtein) away from ``word``, over ``alphabet`` and its own letters."""
    letters = set(alphabet) | set(word)
    splits = [(word[:k], word[k:]) for k in range(len(word) + 1)]
    found = {a + b[1:] for a, b in splits if b}
    found |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    found |= {a + ch + b[1:] for a, b in splits if b for ch in letters}
    found |= {a + ch + b for a, b in splits for ch in letters}
    found.discard(word)
    return found
