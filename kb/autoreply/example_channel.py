"""The matcher's example channel: past questions an article answered ("also asked as").

An email much like questions someone already asked is most likely answered by the same article.
Each article's example questions, together, form one more document of that article, kept as
TF-IDF vectors analysed exactly like an incoming email (stemmed words and word pairs, half the
similarity; character 3-4-grams, the other half). ``blend`` adds ``EXAMPLE_WEIGHT`` times that
cosine to the article's own score (capped at 1): with no examples every score is exactly what it
was, and an article can only gain from its examples. The single nearest example is kept too, to
explain a match ("like the example ...").

Chosen on the StackFAQ dev split only, its queries split in two halves by a fixed seed, examples
from one half scored on the other (``benchmarks/eval_match.py stackfaq dev --examples dev``):
examples as one document per article beat the nearest single example (MRR 0.915 against 0.909),
and adding 0.3 of it beat taking the larger of the two scores or a weighted mean, at the
unchanged reply threshold and margin (86.5 % replies, 98.5 % right).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from kb.autoreply import textproc
from kb.autoreply.tfidf import Channel, word_ngrams

EXAMPLE_WEIGHT = 0.3  # added to the article's score per unit of its examples' cosine
WORD_SHARE = 0.5  # the words' share of an example's similarity; the character n-grams have the rest
MAX_EXAMPLE_CHARS = 2000
EXPLAIN_FLOOR = 0.25  # a nearer example than this is named as the reason for a match


@dataclass(frozen=True)
class Nearest:
    """Per article: its examples' similarity to a query (0 for none), and the nearest single
    example's index (-1 for none) and similarity."""

    similarity: np.ndarray
    example: np.ndarray
    example_similarity: np.ndarray


def query_terms(text: str, lang: str) -> list[str]:
    """The word-channel terms of a question (an example or an email), pairs included."""
    return textproc.with_bigrams(textproc.words(text, lang))


class ExampleChannel:
    """Example questions of a fixed set of articles as vectors; immutable after construction."""

    def __init__(self, size: int, examples: list[tuple[int, str, str]]) -> None:
        """``examples``: (index of the article among ``size`` articles, text, language) of each."""
        self.size = size
        self.articles = np.array([index for index, _, _ in examples], dtype=np.int64)
        self.texts = [text for _, text, _ in examples]
        word_docs = [query_terms(text[:MAX_EXAMPLE_CHARS], lang) for _, text, lang in examples]
        char_docs = [textproc.char_text(text[:MAX_EXAMPLE_CHARS]).split() for _, text, _ in examples]
        self.owners = sorted(set(self.articles.tolist()))  # the articles that have examples
        self._parts = []  # (share, the articles' examples as one document each, each example alone, is_words)
        for share, docs, expand in ((WORD_SHARE, word_docs, None), (1 - WORD_SHARE, char_docs, word_ngrams)):
            grouped: dict[int, list] = {}
            for doc, owner in zip(docs, self.articles.tolist()):
                grouped.setdefault(owner, []).extend(doc)
            per_article = Channel.fit([grouped[a] for a in self.owners], expand)
            if per_article is None:  # no example with a usable word: this part scores 0
                continue
            single = Channel(per_article.vocabulary, per_article.idf, per_article.matrix(docs, expand))
            self._parts.append((share, per_article, single, expand is None))

    def __len__(self) -> int:
        return len(self.texts)

    def nearest(self, word_counts: Counter, gram_counts: Counter) -> Nearest:
        """How close a query (counts of its word terms and character n-grams) is to each article's examples."""
        per_article = np.zeros(len(self.owners), dtype=np.float64)
        single = np.zeros(len(self.texts), dtype=np.float64)
        for share, channel, examples, is_words in self._parts:
            index, values, _ = channel.vector(word_counts if is_words else gram_counts)
            per_article += share * channel.scores(index, values, len(self.owners))
            single += share * examples.scores(index, values, len(self.texts))
        similarity = np.zeros(self.size, dtype=np.float64)
        similarity[self.owners] = per_article
        best = np.zeros(self.size, dtype=np.float64)
        which = np.full(self.size, -1, dtype=np.int64)
        # Examples in ascending similarity: for each article the last write is its nearest.
        order = np.flatnonzero(single > 0)
        order = order[np.argsort(single[order], kind="stable")]
        best[self.articles[order]] = single[order]
        which[self.articles[order]] = order
        return Nearest(similarity, which, best)

    def explanation(self, nearest: Nearest, index: int) -> tuple[str, float]:
        """(text, similarity) of the article's nearest example if close enough to name, else ("", 0)."""
        found = int(nearest.example[index])
        close = float(nearest.example_similarity[index])
        return (self.texts[found], round(close, 4)) if found >= 0 and close >= EXPLAIN_FLOOR else ("", 0.0)


def blend(scores: np.ndarray, nearest: Nearest) -> np.ndarray:
    """Today's scores plus EXAMPLE_WEIGHT times the examples' similarity, capped at 1."""
    return np.minimum(1.0, scores + EXAMPLE_WEIGHT * nearest.similarity)
