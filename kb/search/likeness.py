"""Related articles by what an article is about, not by a search (both backends).

A page's related articles used to be a full search of its title and tags: every word OR-ed over
every field, typo expansion, snippets, a total, the re-ranking meant for customers' questions; at
10,000 articles 20-30 ms for a list of five, paid by each worker on each article's first view. An
article is not a question: its own words say what it is about. So related articles are the ones
sharing its title and tag words (stop words left out, generic ones light: kb.search.generic) and
its few most distinctive body words (KEYWORDS, by frequency in the article times rarity). Each
shared word scores its inverse document frequency, times where it is found (title above tags
above body), so an article sharing rare words ranks first; words more than COMMON_SHARE of the
articles hold say nothing and are left out, and the rest are read rarest first until POSTINGS
documents were counted: a bounded cost whatever the title. Measured on benchmarks/load.py's
10,000 articles (200 articles; the related articles in the source's category, a proxy for "about
the same topic"): 57 % of them against 47 % for the search, in about 3 ms against 22 ms.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Callable, Iterable

from kb.search.analysis import group_for, spell_analyzer, terms
from kb.search.generic import is_generic, is_stop
from kb.search.querying import GENERIC_WEIGHT, content_words
from kb.search.ranking import MIN_SCORE_SHARE

HEAD_KINDS = {"title": 3.0, "tags": 2.0, "body": 1.0}  # as kb.search.querying.KIND_BOOST
KEYWORD_KINDS = {"title": 3.0, "body": 1.0}
KEYWORD_WEIGHT = 0.5  # a body word counts half a title word: the title says what the article is
KEYWORDS = 8
KEYWORD_SHARE = 0.02  # a keyword is used by at most this share of the articles (and by one other)
COMMON_SHARE = 0.1  # pieces held by more than this share of the articles (and MIN_COMMON) are left out
MIN_COMMON = 50
POSTINGS = 3000  # documents read per related list, rarest pieces first


@dataclass(frozen=True)
class Source:
    """The article whose related articles are wanted: what it says and what to leave out."""

    id: int
    lang: str
    title: str
    tags: tuple[str, ...]
    text: str  # its plain text (kb.render_cache.article_text)


@dataclass(frozen=True)
class Piece:
    """One term to look for in one kind of field (title, tags, body), and what a match is worth."""

    kind: str
    term: str
    weight: float
    word: str  # the word it comes from (lowercased, unstemmed)


def pieces(source: Source, word_frequency: Callable[[list[str]], dict[str, int]], documents: int) -> list[Piece]:
    """The terms ``source`` is about in each kind of field, weighted (before rarity).

    ``word_frequency`` gives how many articles of the source's language group use each lowercased
    word (the "Did you mean" vocabulary of either backend).
    """
    group = group_for(source.lang)
    words: dict[str, tuple[float, dict[str, float]]] = {}
    for word in content_words(" ".join([source.title, *source.tags]), group):
        words.setdefault(word, (GENERIC_WEIGHT if is_generic(word) else 1.0, HEAD_KINDS))
    for word in keywords(source.text, words, word_frequency, documents):
        words[word] = (KEYWORD_WEIGHT, KEYWORD_KINDS)
    found: dict[tuple[str, str], Piece] = {}
    for word, (weight, kinds) in words.items():
        for term in terms(group, word):
            for kind, boost in kinds.items():
                found.setdefault((kind, term), Piece(kind, term, boost * weight, word))
    return list(found.values())


def keywords(text: str, taken, word_frequency, documents: int) -> list[str]:
    """The KEYWORDS body words most frequent in ``text`` for their rarity (at least one other article uses each)."""
    counts: dict[str, int] = {}
    for token in spell_analyzer()(text):
        word = token.text
        if len(word) >= 3 and word.isalpha() and word not in taken and not is_generic(word) and not is_stop(word):
            counts[word] = counts.get(word, 0) + 1
    if not counts:
        return []
    frequency = word_frequency(list(counts))
    most = max(KEYWORD_SHARE * documents, 5)
    scored = [(count * math.log(documents / frequency[word]), word) for word, count in counts.items()
              if 2 <= frequency.get(word, 0) <= most]
    return [word for _score, word in heapq.nlargest(KEYWORDS, scored)]


def chosen(priced: Iterable[tuple[Piece, int]], documents: int) -> list[tuple[Piece, int, float]]:
    """(piece, documents holding it, what a match is worth) of the pieces to read, rarest first, within POSTINGS."""
    most = max(COMMON_SHARE * documents, MIN_COMMON)
    kept = sorted(((p, n) for p, n in priced if 0 < n <= most), key=lambda item: (item[1], item[0].kind, item[0].term))
    out, spent = [], 0
    for piece, n in kept:
        if out and spent + n > POSTINGS:
            break
        spent += n
        out.append((piece, n, piece.weight * math.log(1 + documents / n)))
    return out


def best(scores: dict, limit: int) -> list:
    """The keys of ``scores`` with the highest scores, best first (ties in the order they were scored), at most ``limit``."""
    return heapq.nlargest(limit, scores, key=scores.__getitem__)


def strong(scores: dict, keys: list) -> list:
    """``keys`` (best first) without the weak tail, cut as a search's is (kb.search.ranking).

    An article scoring under MIN_SCORE_SHARE of the best shares a word in passing; the page fills
    its place with one of the same category.
    """
    floor = MIN_SCORE_SHARE * scores[keys[0]] if keys else 0.0
    return [key for key in keys if scores[key] >= floor]
