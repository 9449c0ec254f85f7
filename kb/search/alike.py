"""Related articles on Whoosh: kb.search.likeness's pieces, read from the postings as arrays.

As on PostgreSQL (kb.search.postgres.alike), the rarest pieces are read within likeness's budget
and each document scores, for each piece it holds, the piece's worth times its count saturated as
BM25's is. The postings come decoded and kept per segment from kb.search.termwise, the document
counts from kb.search.lexicon, and the language and the article itself are masks of the "lang" and
"id" postings: an article page's walk of about two thousand postings is a few array additions
(it was a Python loop over each posting, two thirds of the page's time).
"""

from __future__ import annotations

import numpy as np

from kb.search import likeness, termwise
from kb.search.analysis import group_for
from kb.search.lexicon import doc_frequency, segment_frequency
from kb.search.schema import field

TF_SATURATION = 1.2  # a word said more often counts more, up to twice (BM25's k1)


def related(reader, source: likeness.Source, limit: int) -> list[int]:
    """Document numbers of up to ``limit`` documents most like ``source``: same language, never itself, best first."""
    group = group_for(source.lang)
    documents = max(reader.doc_count(), 1)
    spell = field("spell", group)
    found = likeness.pieces(source, lambda words: {w: doc_frequency(reader, spell, w) for w in words}, documents)
    priced = [(p, doc_frequency(reader, field(p.kind, group), p.term)) for p in found]
    chosen = [(field(piece.kind, group), piece.term, worth) for piece, _count, worth in likeness.chosen(priced, documents)]
    found_scores, found_docs = [], []
    for leaf, offset in reader.leaf_readers():
        scores = _scores(leaf, chosen)
        mask = termwise.allowed(leaf, [("lang", source.lang)], [("id", str(source.id))])
        scores[~mask] = 0.0
        gone = termwise.deleted(leaf)
        if gone is not None:
            scores[gone] = 0.0
        local = np.flatnonzero(scores)
        found_scores.append(scores[local])
        found_docs.append(local + offset)
    best = termwise.best(found_scores, found_docs, limit)
    return likeness.strong({docnum: score for score, docnum in best}, [docnum for _score, docnum in best])


def _scores(leaf, chosen: list[tuple[str, str, float]]) -> np.ndarray:
    """Each document's likeness in one segment: the sum of the worth of the pieces it holds, saturated by count."""
    scores = np.zeros(leaf.doc_count_all())
    for fieldname, term, worth in chosen:
        if not segment_frequency(leaf, fieldname, term):
            continue
        ids, weights = termwise.postings(leaf, fieldname, leaf.schema[fieldname].to_bytes(term))
        counts = weights.astype(np.float64)  # float32 as stored; the sums in float64, as before
        scores[ids] += worth * counts / (counts + TF_SATURATION)
    return scores
