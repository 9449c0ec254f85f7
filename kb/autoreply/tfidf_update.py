"""A fitted TF-IDF channel brought up to a changed set of documents, reading only the new ones.

A refit reads every article again: at 10,000 articles of ~600 words the word channel's tokens
and counts took ~4 s of a 7 s refit, for one edited article. Yet that channel's postings hold
everything the refit counts: with every feature kept (no max_df) and each document's l2 factor
(``Channel.scale``), an entry's count is exp(posting / factor / idf - 1). So an update reads the
counts back from the postings, drops the columns of removed and changed documents, counts the
new documents, and weighs the whole with the new document frequencies: the figures of a fit of
the new set (to float rounding), in time that grows with the entries, not with the words.

A feature left in no document is taken out of the vocabulary, as a fit would leave it out; its
row stays, empty, until the next full fit (``orphans``).
"""

from __future__ import annotations

from itertools import chain

import numpy as np
import scipy.sparse as sp

from kb.autoreply.tfidf import Channel, _fixed, _ids, _numbering, _weigh, smooth_idf

MAX_COUNT_ERROR = 0.25  # a read-back count this far from a whole number means the postings are not a fit's


def updated(channel: Channel, keep: np.ndarray, docs: list[list[str]]) -> Channel | None:
    """``channel`` over a new list of documents: document j is the old column ``keep[j]``, or, where
    ``keep[j]`` is -1, the next of ``docs`` (its features). None when it cannot be updated exactly."""
    if channel.scale is None or len(docs) != int((keep < 0).sum()):
        return None
    postings = channel.postings
    rows = np.repeat(np.arange(postings.shape[0], dtype=np.int32), np.diff(postings.indptr))
    counts = _read_counts(channel, rows)
    if counts is None:
        return None
    column = np.full(postings.shape[1], -1, np.int32)  # old column -> new
    staying = np.flatnonzero(keep >= 0).astype(np.int32)
    column[keep[staying]] = staying
    moved = column[postings.indices]
    stay = moved >= 0
    vocabulary = _numbering(channel.vocabulary, postings.shape[0])
    lengths = np.fromiter(map(len, docs), np.int64, len(docs))
    new_ids = _ids(list(chain.from_iterable(docs)), vocabulary, True)
    size = postings.shape[0] + len(vocabulary) - len(channel.vocabulary)
    merged = sp.csr_matrix((np.concatenate([counts[stay], np.ones(len(new_ids), np.float32)]),
                            (np.concatenate([rows[stay], new_ids]),
                             np.concatenate([moved[stay], np.repeat(np.flatnonzero(keep < 0).astype(np.int32), lengths)]))),
                           shape=(size, len(keep)))
    del rows, counts, moved, stay  # the read-back arrays: tens of MB for long articles
    df = np.diff(merged.indptr).astype(np.float32)
    vocabulary = _without_empty(_fixed(vocabulary), df)
    if not vocabulary:
        return None
    idf = smooth_idf(df, len(keep))
    postings, scale = _weigh(merged, idf)
    return Channel(vocabulary, idf, postings, scale)


def orphans(channel: Channel) -> int:
    """Rows of ``channel`` no vocabulary entry names (features left in no document by updates)."""
    return channel.postings.shape[0] - len(channel.vocabulary)


def _read_counts(channel: Channel, rows: np.ndarray) -> np.ndarray | None:
    """Each posting's raw count (float32), read back from its weight; None if one is not whole."""
    postings = channel.postings
    found = postings.data.astype(np.float64)
    found /= channel.scale[postings.indices]
    found /= channel.idf[rows]
    found -= 1.0
    np.exp(found, out=found)
    whole = np.rint(found)
    if len(found) and float(np.abs(found - whole).max()) > MAX_COUNT_ERROR:
        return None
    return whole.astype(np.float32)


def _without_empty(vocabulary: dict[str, int], df: np.ndarray) -> dict[str, int]:
    """``vocabulary`` without the features of no document (a fit never has them: a query must not either)."""
    if df.all():
        return vocabulary
    ids = np.fromiter(vocabulary.values(), np.int64, len(vocabulary))
    names = list(vocabulary)
    for i in np.flatnonzero(df[ids] == 0).tolist():
        del vocabulary[names[i]]
    return vocabulary
