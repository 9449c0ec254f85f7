"""Whoosh's BM25F top-k for a plain OR of terms, scored a term at a time in numpy.

Whoosh scores a document at a time through a tree of matchers, some microseconds a posting in
Python (more after publishes: each posting of a segment with deletions goes through one more
wrapper). Our queries are nearly always an OR of boosted terms (kb.search.querying), and for those
the score of a document is the sum over the terms it holds of boost x BM25F(weight, field length),
so here each term's postings are read a block at a time and scored as arrays. The statistics (idf,
average field length, B, K1) come from Whoosh's own scorer, the field lengths from Whoosh's own
length column, and the order is Whoosh's (score, then document number): the same hits in the same
order, with scores equal to Whoosh's up to the last bit of rounding. A segment never changes, so
its decoded postings (up to CACHED_POSTINGS) and field lengths are kept while it is in use.
The other parts of a query (phrases, AND: rare and sparse) are scored through Whoosh's own
matchers, a segment at a time; another weighting or filter returns None: the caller asks Whoosh.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

import numpy as np
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, W3PerDocReader, _lenfield
from whoosh.columns import NumericColumn
from whoosh.util.numeric import byte_to_length
from whoosh.matching.wrappers import FilterMatcher
from whoosh.query import And, Or, Term
from whoosh.scoring import BM25F

from kb.search.lexicon import segment_frequency

CACHED_POSTINGS = 2_000_000  # postings kept decoded, all segments together (8 bytes each: 16 MB)
MAX_LENGTH_ARRAYS = 64  # (segment, field) length arrays kept


class Weighted(NamedTuple):
    """One term of the OR: its field, its text as indexed, and the product of the boosts above it."""

    fieldname: str
    btext: bytes
    boost: float


def split(query, schema, boost: float = 1.0, terms=None, rest=None) -> tuple[list[Weighted], list]:
    """The terms of an OR tree with the product of the boosts above them, and its other parts as (query, boost)."""
    terms = [] if terms is None else terms
    rest = [] if rest is None else rest
    if isinstance(query, Term) and not query.minquality:
        if query.fieldname in schema:  # else Whoosh matches nothing either
            terms.append(Weighted(query.fieldname, schema[query.fieldname].to_bytes(query.text), boost * query.boost))
    elif type(query) is Or and not query.scale and not query.minmatch:
        for sub in query.subqueries:
            split(sub, schema, boost * query.boost, terms, rest)
    else:
        rest.append((query, boost))
    return terms, rest


def filter_terms(query) -> list[tuple[str, str]] | None:
    """The (field, text) terms a filter query requires all of, or None if it is not a term or an AND of terms."""
    if query is None:
        return []
    if isinstance(query, Term):
        return [(query.fieldname, query.text)]
    if type(query) is And and all(isinstance(q, Term) for q in query.subqueries):
        return [(q.fieldname, q.text) for q in query.subqueries]
    return None


class _Cache:
    """An LRU of decoded arrays, bounded by their total length."""

    def __init__(self, budget: int):
        self.budget, self.used = budget, 0
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            found = self.items.get(key)
            if found is not None:
                self.items.move_to_end(key)
            return found

    def put(self, key, value, size: int) -> None:
        with self.lock:
            if key in self.items or size > self.budget:
                return
            self.items[key] = (value, size)
            self.used += size
            while self.used > self.budget:
                _key, (_value, dropped) = self.items.popitem(last=False)
                self.used -= dropped


_postings = _Cache(CACHED_POSTINGS)
_lengths = _Cache(MAX_LENGTH_ARRAYS)
# A stored length byte as the scorer reads it: Whoosh's table, and 1 where there is none (byte 0).
_BYTE_LENGTHS = np.array([byte_to_length(b) or 1 for b in range(256)], dtype=np.float64)


def postings(leaf, fieldname: str, btext: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(document numbers, weights) of one term in one segment, deleted documents included."""
    key = (leaf.segment().segment_id(), fieldname, btext)
    found = _postings.get(key)
    if found is not None:
        return found[0]
    matcher = leaf.postings(fieldname, btext)
    if isinstance(matcher, FilterMatcher):  # the deleted documents' filter: applied by the caller
        matcher = matcher.child
    ids, weights = [], []
    if type(matcher) is W3LeafMatcher:
        # A block at a time (private to whoosh3's codec, pinned exactly in pyproject.toml).
        while matcher.is_active():
            matcher._read_ids()
            matcher._read_weights()
            ids += matcher._ids
            weights += matcher._weights
            matcher._next_block()
    else:
        while matcher.is_active():
            ids.append(matcher.id())
            weights.append(matcher.weight())
            matcher.next()
    value = (np.array(ids, dtype=np.int32), np.array(weights, dtype=np.float32))
    _postings.put(key, value, len(ids))
    return value


def lengths(leaf, fieldname: str) -> np.ndarray:
    """Every document's length of ``fieldname`` in one segment, as Whoosh's scorer reads it."""
    key = (leaf.segment().segment_id(), fieldname)
    found = _lengths.get(key)
    if found is not None:
        return found[0]
    stored = _length_bytes(leaf, fieldname)
    if stored is not None:
        value = _BYTE_LENGTHS[stored]
    else:
        value = np.array([leaf.doc_field_length(d, fieldname, 1) or 1 for d in range(leaf.doc_count_all())],
                         dtype=np.float64)
    _lengths.put(key, value, 1)
    return value


def _length_bytes(leaf, fieldname: str) -> np.ndarray | None:
    """The segment's length bytes of ``fieldname`` (one per document) in one read; None: ask document by document.

    whoosh3 keeps them as a column of one byte a document, written up to the last document that
    has one; the rest read as 0, like a document without the field. A Python call per document
    took 7-30 ms a field at 10,000 documents (66-330 ms at 100,000), at each process's first search
    and after each merge (private to whoosh3's codec, pinned exactly in pyproject.toml; tested
    against it).
    """
    perdoc = getattr(leaf, "_perdoc", None)
    if type(perdoc) is not W3PerDocReader:
        return None
    column = perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
    if column is not None and (type(column) is not NumericColumn.Reader or column._fixedlen != 1):
        return None
    count = leaf.doc_count_all()
    out = np.zeros(count, dtype=np.uint8)
    if column is None:  # no document of the segment has the field
        return out
    stored = min(column._count, count)
    out[:stored] = np.frombuffer(column._dbfile.get(column._basepos, stored), dtype=np.uint8)
    return out


class Scorer(NamedTuple):
    """What Whoosh's BM25F scorer of one term reads (``k1`` None: the field is not scored, a hit weighs its weight)."""

    idf: float
    avgfl: float
    b: float
    k1: float | None


def _scorers(searcher, terms: list[Weighted]) -> list[Scorer] | None:
    """The figures of Whoosh's scorer of each term (whoosh.scoring.BM25F.scorer), or None for another weighting."""
    weighting = searcher.weighting
    if type(weighting) is not BM25F:
        return None
    scorers = []
    for term in terms:
        if not searcher.schema[term.fieldname].scorable:
            scorers.append(Scorer(0.0, 1.0, 0.0, None))
            continue
        # The same calls as BM25FScorer's: the idf is the searcher's (cached there), B may be per field.
        scorers.append(Scorer(searcher.idf(term.fieldname, term.btext), searcher.avg_field_length(term.fieldname) or 1,
                              weighting._field_B.get(term.fieldname, weighting.B), weighting.K1))
    return scorers


def _score(scorer: Scorer, weights: np.ndarray, leaf, fieldname: str, ids: np.ndarray) -> np.ndarray:
    """BM25F (whoosh.scoring.bm25) of one term's postings ``ids``, in the same order of operations."""
    weights = weights.astype(np.float64)  # as Whoosh does it: float32 weights, float64 sums
    if scorer.k1 is None:
        return weights
    k1, b, length = scorer.k1, scorer.b, lengths(leaf, fieldname)[ids]
    return scorer.idf * ((weights * (k1 + 1)) / (weights + k1 * ((1 - b) + b * length / scorer.avgfl)))


def deleted(leaf) -> np.ndarray | None:
    """The segment's deleted document numbers (still in its postings until a merge), or None."""
    gone = getattr(leaf, "deleted_docs_set", None)  # an index without segments reads as Whoosh's EmptyReader: none
    return np.fromiter(gone, dtype=np.int64, count=len(gone)) if gone else None


def allowed(leaf, required: list[tuple[str, str]], excluded: list[tuple[str, str]]) -> np.ndarray | None:
    """A mask of the segment's documents holding every ``required`` term and no ``excluded`` one (None: all)."""
    if not required and not excluded:
        return None
    n = leaf.doc_count_all()
    mask = np.ones(n, dtype=bool)
    for fieldname, text in required:
        keep = np.zeros(n, dtype=bool)
        if segment_frequency(leaf, fieldname, text):
            keep[postings(leaf, fieldname, leaf.schema[fieldname].to_bytes(text))[0]] = True
        mask &= keep
    for fieldname, text in excluded:
        if segment_frequency(leaf, fieldname, text):
            mask[postings(leaf, fieldname, leaf.schema[fieldname].to_bytes(text))[0]] = False
    return mask


def search(searcher, query, limit: int, wanted=None, unwanted=None):
    """([(score, docnum)] of the best ``limit`` hits, best first, {docnum: matched (field, term) pairs}), or None.

    None when a filter is not a term or an AND of terms, or the weighting is not BM25F.
    """
    terms, rest = split(query, searcher.schema)
    required, excluded = filter_terms(wanted), filter_terms(unwanted)
    scorers = _scorers(searcher, terms)
    if scorers is None or required is None or excluded is None:
        return None
    context = searcher.context(needs_current=True)
    found_scores, found_docs, per_leaf = [], [], []
    for sub, offset in searcher.leaf_searchers():
        leaf = sub.reader()
        n = leaf.doc_count_all()
        scores, hit = np.zeros(n), np.zeros(n, dtype=bool)
        held = []
        for term, scorer in zip(terms, scorers):
            if not segment_frequency(leaf, term.fieldname, term.btext):
                continue
            ids, weights = postings(leaf, term.fieldname, term.btext)
            scores[ids] += _score(scorer, weights, leaf, term.fieldname, ids) * term.boost
            hit[ids] = True
            held.append((term, ids))
        extra = _rest(sub, context, rest, scores, hit)
        gone = deleted(leaf)
        if gone is not None:
            hit[gone] = False
        mask = allowed(leaf, required, excluded)
        if mask is not None:
            hit &= mask
        local = np.flatnonzero(hit)
        found_scores.append(scores[local])
        found_docs.append(local + offset)
        per_leaf.append((offset, n, held, extra))
    return _top(found_scores, found_docs, limit, per_leaf)


def _rest(sub, context, rest: list, scores: np.ndarray, hit: np.ndarray) -> dict[int, list]:
    """Add the other parts' (phrases, AND) scores in one segment through Whoosh's matchers; the terms each hit matched.

    They are rare (a quoted phrase, a synonym phrase), and their matchers skip to the documents
    holding all their words, so a document at a time costs little here.
    """
    matched: dict[int, list] = {}
    for query, boost in rest:
        matcher = query.matcher(sub, context)
        while matcher.is_active():
            docnum = matcher.id()
            scores[docnum] += matcher.score() * boost
            hit[docnum] = True
            matched.setdefault(docnum, []).extend(
                m.term() for m in matcher.term_matchers() if m.is_active() and m.id() == docnum)
            matcher.next()
    return matched


def _top(found_scores, found_docs, limit: int, per_leaf) -> tuple[list[tuple[float, int]], dict]:
    """The best ``limit`` of the hits by (score descending, docnum ascending), and the terms each matched."""
    top = best(found_scores, found_docs, limit)
    terms_of: dict[int, list] = {docnum: [] for _score, docnum in top}
    chosen = np.sort(np.array([docnum for _score, docnum in top], dtype=np.int64))
    for offset, n, held, extra in per_leaf:
        local = chosen[(chosen >= offset) & (chosen < offset + n)] - offset
        if not len(local):
            continue
        for docnum, matched in extra.items():
            if docnum + offset in terms_of:
                terms_of[docnum + offset] += matched
        for term, ids in held:
            for docnum in holding(ids, local):
                terms_of[docnum + offset].append((term.fieldname, term.btext))
    return top, terms_of


def best(found_scores: list[np.ndarray], found_docs: list[np.ndarray], limit: int) -> list[tuple[float, int]]:
    """The best ``limit`` (score, docnum) of the segments' hits, by score descending, then docnum ascending."""
    scores = np.concatenate(found_scores) if found_scores else np.zeros(0)
    docs = np.concatenate(found_docs) if found_docs else np.zeros(0, dtype=np.int64)
    if len(scores) > limit:  # everything scoring at least the limit-th best, ties included, then sorted
        cut = np.partition(scores, len(scores) - limit)[len(scores) - limit]
        keep = scores >= cut
        scores, docs = scores[keep], docs[keep]
    order = np.lexsort((docs, -scores))[:limit]
    return [(float(scores[i]), int(docs[i])) for i in order]


def holding(ids: np.ndarray, docnums) -> list[int]:
    """Those of the sorted ``docnums`` that are in the sorted posting ``ids``."""
    docnums = np.asarray(docnums, dtype=np.int64)
    if not len(ids) or not len(docnums):
        return []
    at = np.minimum(np.searchsorted(ids, docnums), len(ids) - 1)
    return [int(d) for d in docnums[ids[at] == docnums]]
