"""The matcher's TF-IDF channels (kb/autoreply/tfidf.py): scikit-learn's figures, by faster paths."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from kb.autoreply import tfidf
from kb.autoreply.tfidf import Channel, char_counts, word_ngrams

DOCS = [
    "reset your password from the sign in page",
    "request a refund of your order refund refund",
    "parcels leave the warehouse in two days tracking number",
    "invoices are pdf files under account billing",
    "a b password passwords passwordless",
]
QUERIES = ["I forgot my password, how to reset it", "refund for order 1234 please", "zzz qqq", "a a a b"]


@pytest.mark.parametrize("max_df", [1.0, 0.5, 0.3])  # 0.5 and 0.3 drop the n-grams of "the", "pass", "word"
def test_channels_give_scikit_learns_cosines(max_df):
    for analyzer, expand in (("char_wb", word_ngrams), (lambda doc: doc, None)):
        options = {"ngram_range": (3, 4)} if expand else {}
        vectorizer = TfidfVectorizer(analyzer=analyzer, sublinear_tf=True, dtype=np.float32, max_df=max_df, **options)
        docs = [doc.split() for doc in DOCS]
        matrix = vectorizer.fit_transform(DOCS if expand else docs)
        channel = Channel.fit(docs, expand, max_df)
        assert set(channel.vocabulary) == set(vectorizer.vocabulary_)
        assert sorted(channel.vocabulary.values()) == list(range(len(channel.vocabulary)))
        for query in QUERIES:
            expected = (vectorizer.transform([query if expand else query.split()]) @ matrix.T).toarray().ravel()
            counts = char_counts(query.lower()) if expand else Counter(query.split())
            index, values, _ = channel.vector(counts)
            assert np.allclose(channel.scores(index, values, len(DOCS)), expected, atol=1e-6)


def test_word_vector_is_the_vector_of_the_words_ngram_counts(monkeypatch):
    monkeypatch.setattr(tfidf, "MAX_CACHED_WORDS", 3)  # the cache empties itself on the way
    channel = Channel.fit([doc.split() for doc in DOCS], word_ngrams)
    for query in [*QUERIES, "password password reset password", ""]:
        words = query.lower().split()
        index, values, _ = channel.vector(char_counts(" ".join(words)))
        got_index, got_values = channel.word_vector(words)
        assert got_index.tolist() == index.tolist()  # the same features in the same order
        assert got_values.tobytes() == values.tobytes()  # to the bit
        assert len(channel._word_ids) <= 3
    assert pickle.loads(pickle.dumps(channel))._word_ids == {}  # a sandbox child starts its own


@pytest.mark.parametrize("routines", [tfidf._sparsetools, None])
def test_rows_and_scores_are_scipys_own(monkeypatch, routines):
    monkeypatch.setattr(tfidf, "_sparsetools", routines)  # scipy's C routines, or its public API
    channel = Channel.fit([doc.split() for doc in DOCS], word_ngrams)
    index, values = channel.word_vector("password refund billing".split())
    rows = channel.rows(index)
    public = channel.postings[index]
    assert [part.tolist() for part in rows] == [public.indptr.tolist(), public.indices.tolist(), public.data.tolist()]
    scores = channel.scores(index, values, len(DOCS))
    assert scores.dtype == np.float32 and scores.tobytes() == (public.T @ values).tobytes()
    assert channel.scores(index, values, len(DOCS), rows).tobytes() == scores.tobytes()
    assert channel.scores(index[:0], values[:0], len(DOCS)).tolist() == [0.0] * len(DOCS)
