"""TF-IDF channels for the matcher: scikit-learn's figures without its per-call cost.

A channel gives the numbers of ``TfidfVectorizer(sublinear_tf=True, dtype=float32)`` (smooth idf,
l2 norm) with analyzer either "terms already made" (the word channel) or ``char_wb`` 3-4-grams.
Why not the vectorizer itself: per email it validates its input and builds a sparse matrix three
times over (a third of decide()), and at fit time it cuts every word of every article into
n-grams in Python (70 % of a refit). Here a text is first counted in words; the n-grams of each
distinct word are made once (a corpus of 10,000 articles repeats a few tens of thousands of
words millions of times), and document x word times word x n-gram counts, a sparse product in
C, gives the document x n-gram counts. Scoring gathers the postings of the query's features
and adds them up with ``np.bincount``: no sparse matrix per email.

Everything a channel keeps is float32 / int32 arrays and the vocabulary dict (picklable, for the
sandbox child).
"""

from __future__ import annotations

import ctypes
from collections import Counter, defaultdict
from functools import lru_cache
from itertools import chain, count, islice, repeat
from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np
import scipy.sparse as sp

try:  # the C routines behind scipy's sparse indexing and products; private, hence the fallback
    from scipy.sparse import _sparsetools
except ImportError:  # pragma: no cover - a scipy that moved them: its public API, a little slower
    _sparsetools = None

CHAR_NGRAMS = (3, 4)
CHUNK = 500  # documents analysed at a time during a fit
MAX_CACHED_WORDS = 20_000  # query words whose n-gram ids a channel keeps (a few MB)


def word_ngrams(word: str) -> tuple[str, ...]:
    """The character 3-4-grams of one word padded with spaces, exactly as scikit-learn's char_wb
    makes them (a word shorter than an n-gram counts once, as itself).

    Not cached: a fit calls it once per distinct word, and a cache of every article word's
    n-grams held 19 MB at 10,000 articles (query words have their own, small cache)."""
    padded = f" {word} "
    found = []
    for n in range(CHAR_NGRAMS[0], CHAR_NGRAMS[1] + 1):
        found.extend(padded[i:i + n] for i in range(max(1, len(padded) - n + 1)))
        if len(padded) <= n:
            break
    return tuple(found)


_query_ngrams = lru_cache(maxsize=10_000)(word_ngrams)  # the words of emails repeat


def char_counts(text: str) -> Counter:
    """The char_wb 3-4-gram counts of a query's text (words split on white space)."""
    return Counter(chain.from_iterable(map(_query_ngrams, text.split())))


class Channel:
    """One fitted TF-IDF channel: vocabulary, idf, and the feature x article postings."""

    def __init__(self, vocabulary: dict[str, int], idf: np.ndarray, postings: sp.csr_matrix,
                 scale: np.ndarray | None = None) -> None:
        self.vocabulary = vocabulary
        self.idf = idf
        self.postings = postings  # rows: features; columns: articles; cells: l2-normalised tf-idf
        # Each article's l2 factor, kept where every feature is kept (no max_df): the counts can
        # then be read back from the postings, and an update re-reads only the changed articles.
        self.scale = scale
        self._word_ids: dict[str, np.ndarray] = {}  # query word -> its n-grams' ids (see word_vector)

    def __getstate__(self) -> dict:
        """The fitted model without the query words' cache (each process grows its own)."""
        return {**self.__dict__, "_word_ids": {}}

    @classmethod
    def fit(cls, docs: Iterable[list[str]], expand: Callable[[str], Iterable[str]] | None = None,
            max_df: float = 1.0) -> "Channel | None":
        """A channel over ``docs`` (each a list of units: terms, or words that ``expand`` turns into
        n-grams), without the features in more than ``max_df`` of them (scikit-learn's max_df);
        None when no document has a feature (scikit-learn's "empty vocabulary")."""
        counts, vocabulary = _counts(docs, expand, None)
        df = np.diff(counts.indptr).astype(np.float32)  # rows are features: a row's entries, its articles
        if max_df < 1.0 and vocabulary:
            counts, vocabulary, df = _without_common(counts, vocabulary, df, max_df)
        if not vocabulary:
            return None
        idf = smooth_idf(df, counts.shape[1])
        postings, scale = _weigh(counts, idf)
        return cls(vocabulary, idf, postings, scale if expand is None and max_df >= 1.0 else None)

    def matrix(self, docs: list[list[str]], expand: Callable[[str], Iterable[str]] | None = None) -> sp.csr_matrix:
        """``docs`` as columns of l2-normalised tf-idf over this vocabulary (unknown features dropped)."""
        counts, _ = _counts(docs, expand, self.vocabulary)
        return _weigh(counts, self.idf)[0]

    def vector(self, counts: Counter) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """One query's (feature indices, weights, features) from its feature counts."""
        features = list(counts)
        ids = np.fromiter(map(self.vocabulary.get, features, repeat(-1)), np.int64, len(features))
        known = np.flatnonzero(ids >= 0)
        if not len(known):
            return np.zeros(0, np.int32), np.zeros(0, np.float32), []
        index = ids[known].astype(np.int32)
        values = np.fromiter(counts.values(), np.float32, len(features))[known]
        return index, self._weights(index, values), [features[i] for i in known.tolist()]

    def word_vector(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``vector(char_counts(" ".join(words)))[:2]`` (the same figures, in the same order), from
        each word's n-gram ids kept across queries: looking every n-gram of every email up in a
        vocabulary of 50,000 took a tenth of an email's time."""
        cache = self._word_ids
        parts = []
        for word in words:
            ids = cache.get(word)
            if ids is None:
                if len(cache) >= MAX_CACHED_WORDS:  # typos and codes: keep memory bounded
                    cache.clear()
                ids = cache[word] = self._gram_ids(word)
            parts.append(ids)
        ids = np.concatenate(parts) if parts else np.zeros(0, np.int32)
        if not len(ids):
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        found, first, counts = np.unique(ids, return_index=True, return_counts=True)
        order = np.argsort(first)  # first-seen order, as a Counter keeps them
        index = found[order]
        return index, self._weights(index, counts[order].astype(np.float32))

    def _gram_ids(self, word: str) -> np.ndarray:
        """The ids of a word's n-grams in this vocabulary, repeats kept, unknown ones left out."""
        ids = np.fromiter(map(self.vocabulary.get, _query_ngrams(word), repeat(-1)), np.int32)
        return ids[ids >= 0]

    def _weights(self, index: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Sublinear tf times idf, l2-normalised, in place of the float32 ``counts``."""
        np.log(counts, out=counts)
        counts += 1.0
        counts *= self.idf[index]
        counts /= np.sqrt(np.dot(counts, counts))
        return counts

    def rows(self, index: np.ndarray) -> Rows:
        """The postings of the features ``index`` (int32), in that order: ``postings[index]``."""
        postings = self.postings
        index = index.astype(postings.indptr.dtype, copy=False)  # the C routine takes one index type
        if _sparsetools is None:
            found = postings[index]
            return Rows(found.indptr, found.indices, found.data)
        # scipy's own C routine, without the checks and dtype look-ups of its indexing (a tenth
        # of an email's matching time went to them).
        indptr = np.zeros(len(index) + 1, postings.indptr.dtype)
        np.cumsum(postings.indptr[index + 1] - postings.indptr[index], out=indptr[1:])
        indices = np.empty(int(indptr[-1]), postings.indices.dtype)
        data = np.empty(len(indices), postings.data.dtype)
        _sparsetools.csr_row_index(len(index), index, postings.indptr, postings.indices, postings.data, indices, data)
        return Rows(indptr, indices, data)

    def scores(self, index: np.ndarray, values: np.ndarray, size: int, rows: Rows | None = None) -> np.ndarray:
        """Cosine of a query vector with every article (``size`` long); ``rows``: its postings
        (``self.rows(index)``) when the caller has them already."""
        if not len(index):
            return np.zeros(size, np.float32)
        # The query's rows, copied in C, then one pass over them: an article's score is the sum
        # of its postings times the query's weights (a 10,000-article body channel: ~0.7 ms;
        # numpy's gather and bincount took 2.5-3 ms).
        rows = self.rows(index) if rows is None else rows
        if _sparsetools is None:
            return sp.csc_matrix((rows.data, rows.indices, rows.indptr), shape=(size, len(index))) @ values
        found = np.zeros(size, np.result_type(rows.data, values))
        _sparsetools.csc_matvec(size, len(index), rows.indptr, rows.indices, rows.data, values, found)
        return found


class Rows(NamedTuple):
    """Rows of a channel's postings in CSR form: row i's articles are indices[indptr[i]:indptr[i + 1]]."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray


def smooth_idf(df: np.ndarray, documents: int) -> np.ndarray:
    """scikit-learn's smooth idf, ln((1 + n) / (1 + df)) + 1, as float32."""
    idf = np.full(len(df), documents + 1.0, np.float32)
    idf /= df.astype(np.float32) + 1.0
    np.log(idf, out=idf)
    idf += 1.0
    return idf


def _numbering(start: dict[str, int] | None = None, first: int = 0) -> defaultdict:
    """A vocabulary for _ids to grow (a copy of ``start``): a missing item gets the next id from
    ``first``, all in C."""
    index: defaultdict = defaultdict(None, start or {})
    index.default_factory = count(first).__next__
    return index


def _without_common(counts: sp.csr_matrix, vocabulary: dict[str, int], df: np.ndarray, max_df: float):
    """(counts, vocabulary, df) without the features in more than ``max_df`` of the documents, renumbered."""
    keep = df <= max_df * counts.shape[1]
    if keep.all():
        return counts, vocabulary, df
    number = np.cumsum(keep) - 1
    kept = {feature: int(number[i]) for feature, i in vocabulary.items() if keep[i]}
    return counts[np.flatnonzero(keep)], kept, df[keep]


def _fixed(index: dict[str, int]) -> dict[str, int]:
    """``index`` grown no more: a missing key is a KeyError again (and it pickles)."""
    if isinstance(index, defaultdict):
        index.default_factory = None
    return index


def _ids(items: list[str], index: dict[str, int], grow: bool) -> np.ndarray:
    """The ids of ``items`` in ``index`` (a _numbering() grown with new ones, in first-seen order,
    when ``grow``; -1 for unknown)."""
    if grow:  # one pass in C: a Python loop over the new items took a third of a refit
        return np.fromiter(map(index.__getitem__, items), np.int32, len(items))
    return np.fromiter(map(index.get, items, repeat(-1)), np.int32, len(items))


def _sparse(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Counts of (row, col) pairs as CSR (pairs with col -1 are dropped; repeats add up)."""
    keep = cols >= 0
    ones = np.ones(int(keep.sum()), np.float32)
    return sp.csr_matrix((ones, (rows[keep], cols[keep])), shape=shape)


def _chunks(docs: Iterable[list[str]], size: int = CHUNK) -> Iterator[list[list[str]]]:
    """``docs`` in lists of ``size``."""
    docs = iter(docs)
    while chunk := list(islice(docs, size)):
        yield chunk


def _counts(docs: Iterable[list[str]], expand, vocabulary: dict[str, int] | None):
    """(feature x document counts, vocabulary): the given vocabulary, or a new one from ``docs``.

    Built the way round the postings are kept, so no transposed copy is ever made. Documents are
    read CHUNK at a time and only their ids kept: holding every token of 10,000 articles at once
    took 250 MB more at the peak, which the process then kept."""
    grow = vocabulary is None
    features: dict[str, int] = _numbering() if grow else vocabulary
    units: dict[str, int] = _numbering()  # the words ``expand`` cuts into n-grams
    docs_of, ids, count = [], [], 0
    for chunk in _chunks(docs):
        lengths = np.fromiter(map(len, chunk), np.int64, len(chunk))
        docs_of.append(np.repeat(np.arange(count, count + len(chunk), dtype=np.int32), lengths))
        flat = list(chain.from_iterable(chunk))
        ids.append(_ids(flat, features, grow) if expand is None else _ids(flat, units, True))
        count += len(chunk)
    docs_of = np.concatenate(docs_of) if docs_of else np.zeros(0, np.int32)
    ids = np.concatenate(ids) if ids else np.zeros(0, np.int32)
    if expand is None:
        return _sparse(ids, docs_of, (len(features), count)), _fixed(features)
    unit_docs = _sparse(ids, docs_of, (len(units), count))
    grams = [expand(unit) for unit in units]
    gram_units = np.repeat(np.arange(len(units), dtype=np.int32), np.fromiter(map(len, grams), np.int64, len(grams)))
    gram_ids = _ids(list(chain.from_iterable(grams)), features, grow)
    gram_of_unit = _sparse(gram_ids, gram_units, (len(features), len(units)))
    return (gram_of_unit @ unit_docs).tocsr(), _fixed(features)


def _row_blocks(matrix: sp.csr_matrix, rows: int = 4096) -> Iterator[tuple[int, int, int, int]]:
    """(first row, end row, first entry, end entry) of blocks of rows: temporaries stay small."""
    for start in range(0, matrix.shape[0], rows):
        end = min(start + rows, matrix.shape[0])
        yield start, end, int(matrix.indptr[start]), int(matrix.indptr[end])


def _weigh(counts: sp.csr_matrix, idf: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """Feature x document counts to sublinear tf times idf, each document (column) l2-normalised,
    and each document's factor; in place, float32, a block of rows at a time (whole-matrix
    temporaries took 1.7 GB at 50,000)."""
    counts.sum_duplicates()
    data, indices = counts.data, counts.indices
    np.log(data, out=data)
    data += 1.0
    squares = np.zeros(counts.shape[1])
    for start, end, first, last in _row_blocks(counts):
        block = data[first:last]
        block *= np.repeat(idf[start:end], np.diff(counts.indptr[start:end + 1]))
        squares += np.bincount(indices[first:last], block.astype(np.float64) ** 2, minlength=counts.shape[1])
    norms = np.sqrt(squares)
    norms[norms == 0] = 1.0
    scale = (1.0 / norms).astype(np.float32)
    for _, _, first, last in _row_blocks(counts):
        data[first:last] *= scale[indices[first:last]]
    # Summing duplicates leaves views of the larger unsummed arrays: keep only what is used
    # (the word channel's arrays held a third more than their entries at 10,000 articles).
    counts.indices, counts.data = _owned(counts.indices), _owned(counts.data)
    return counts, scale


def _owned(array: np.ndarray) -> np.ndarray:
    """``array`` itself, or a compact copy when it is a view of a larger buffer."""
    return array.copy() if getattr(array.base, "nbytes", 0) > array.nbytes else array


def release_free_memory() -> None:
    """Hand the heap memory a fit freed back to the operating system (glibc only; else nothing).

    glibc keeps freed blocks for reuse, and a fit's temporaries (numpy arrays of up to tens of
    MB, millions of small strings) left 50-90 MB of free but resident memory after each fit at
    10,000 articles. ``malloc_trim`` returns it in a few milliseconds."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):  # not glibc (musl, macOS): its allocator does its own thing
        pass


def top_indices(scores: np.ndarray, top: int) -> list[int]:
    """The indices of the ``top`` largest positive scores, best first, ties to the lower index
    (what a stable full sort gives), without sorting them all."""
    if top < 1:
        return []
    if top < len(scores):
        kth = np.partition(scores, len(scores) - top)[len(scores) - top]
        candidates = np.flatnonzero(scores >= kth) if kth > 0 else np.flatnonzero(scores > 0)
    else:
        candidates = np.flatnonzero(scores > 0)
    return candidates[np.argsort(-scores[candidates], kind="stable")][:top].tolist()
