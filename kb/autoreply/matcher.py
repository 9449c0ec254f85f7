"""Which articles answer an email: TF-IDF cosine similarity over the published articles.

Three channels, each TF-IDF with sublinear tf (the figures of scikit-learn's TfidfVectorizer,
computed by kb.autoreply.tfidf), blended into one score:

- words (weight 2): stemmed words and word pairs of "title, title, body" (the title counts
  twice), per article language; these give the terms that explain a match;
- title characters (weight 1): character 3-4 grams of the title, which catch what stems miss
  ("strikethrough" vs "striked through", "fb", compounds in Norwegian);
- body characters (weight 0.5): the same over the body.

The score is the weighted mean of the three cosines, so it lies between 0 and 1. Weights, n-gram
ranges and the title count were chosen on the dev split of shared/eval/stackfaq (see
benchmarks/eval_match.py); only articles are seen at fit time, never queries.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from itertools import repeat
from typing import Iterable, Iterator

import numpy as np

from kb.autoreply import synonym_expansion, textproc, tfidf_update
from kb.autoreply.tfidf import Channel, Rows, char_counts, release_free_memory, top_indices, word_ngrams
from kb.autoreply.example_channel import ExampleChannel, blend

log = logging.getLogger("kb.autoreply")

WORD_WEIGHT = 2.0
TITLE_CHAR_WEIGHT = 1.0
BODY_CHAR_WEIGHT = 0.5
TITLE_REPEAT = 2
# Character n-grams in more than half the articles (" th", "the", "ing") tell them apart little and
# were most of an email's scoring work: 53 % of the body channel's postings at 10,000 articles.
# Without them (scikit-learn's max_df) decide() went 452-455 -> 577-591 emails/s
# (benchmarks/autoreply.py), the same best article for 1,000 of 1,000 emails; stackfaq dev P@1
# 0.817 -> 0.816, MRR 0.885 -> 0.884. A small knowledge base keeps them: there "half the articles"
# may be one or two, and scoring costs little.
CHAR_MAX_DF = 0.5
CHAR_MAX_DF_FROM = 50  # articles
# Long bodies add little beyond their start and cost most of the fit time in the char channel.
MAX_BODY_CHARS = 2000
MAX_QUERY_CHARS = 5000
MAX_TERMS = 5
# A refit re-reads only the changed articles' words while at most this share of them changed (and
# empty rows are at most this share of the word channel's). An update was quicker at every share
# measured (10,000 articles: 1 % changed 0.96 s against a whole fit's 1.72 s, 50 % 1.31 s, 100 %
# 1.73 s; ~625 words each: 2.18, 4.18 and 6.19 s against 6.4-6.5 s); past half, a whole fit costs
# about the same and drops the empty rows.
UPDATE_SHARE = 0.5


@dataclass(frozen=True)
class MatchArticle:
    """What the matcher needs from an article; ``lang`` None means "detect it"."""

    id: str
    title: str
    body: str
    lang: str | None = None
    examples: tuple[str, ...] = ()  # questions it answered before (kb.capture.examples)


@dataclass(frozen=True)
class Match:
    """One suggested article: its id, a score in [0, 1], the query terms behind it, and the
    example question that drove the score, with its similarity, when one did."""

    article_id: str
    score: float
    terms: list[str] = field(default_factory=list)
    example: str = ""
    example_score: float = 0.0


def fingerprint(articles: Iterable[MatchArticle]) -> str:
    """A digest of the articles' ids, texts, languages and examples: equal digests give equal models."""
    return _fingerprint(list(articles), None)


def text_digest(article: MatchArticle) -> bytes:
    """A digest of what an article's word channel reads: its title, text and language."""
    digest = hashlib.sha256()
    for part in (article.title, article.body, article.lang or ""):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return digest.digest()[:16]


def _fingerprint(articles: list[MatchArticle], digests: list[bytes] | None) -> str:
    """``fingerprint`` from the articles' text digests (made here when None)."""
    digests = digests if digests is not None else [text_digest(a) for a in articles]
    digest = hashlib.sha256()
    for article, text in sorted(zip(articles, digests), key=lambda pair: str(pair[0].id)):
        for part in (str(article.id), *article.examples):
            digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
        digest.update(text)
    return digest.hexdigest()[:16]


class Matcher:
    """A fitted model over a fixed set of articles; immutable after fit, safe to share by threads."""

    def __init__(self, default_lang: str = "en") -> None:
        self.default_lang = textproc.normalise_lang(default_lang) or "en"
        self.ids: list[str] = []
        self.langs: list[str] = []  # each article's language, as the fit found it
        self._digests: list[bytes] = []  # each article's text_digest, to see which changed
        self.fingerprint = self.fitted = fingerprint([])
        self.main_lang = self.default_lang
        self.synonyms = synonym_expansion.NONE  # query-side only: see with_synonyms
        self._words: Channel | None = None
        self._chars: list[tuple[float, Channel]] = []  # (weight, channel): title, then body
        self._examples: ExampleChannel | None = None

    @classmethod
    def from_articles(cls, articles: Iterable[MatchArticle], default_lang: str = "en") -> "Matcher":
        """A new matcher fitted on ``articles``."""
        return cls(default_lang).fit(articles)

    def fit(self, articles: Iterable[MatchArticle]) -> "Matcher":
        """Learn the vocabulary and weights of ``articles`` (replacing any earlier fit)."""
        return self._fit(list(articles), None)

    def updated(self, articles: Iterable[MatchArticle]) -> "Matcher":
        """A new model of ``articles`` (with these synonyms) whose word channel re-reads only the
        articles that changed since this model's fit; a whole fit when this one cannot be updated
        or more than UPDATE_SHARE of the articles changed (a fit is then as quick)."""
        twin = Matcher(self.default_lang)
        twin.synonyms = self.synonyms
        return twin._fit(list(articles), self)

    def _fit(self, articles: list[MatchArticle], previous: "Matcher | None") -> "Matcher":
        """Fit on ``articles``, reusing ``previous``'s word counts of the unchanged ones when it can."""
        jieba_before = textproc.jieba_loaded()
        digests = [text_digest(a) for a in articles]
        keep = previous._columns(articles, digests) if previous is not None else None
        known = previous.langs if keep is not None else []
        self.langs = [known[column] if column >= 0 else self._language(article)
                      for article, column in zip(articles, keep if keep is not None else repeat(-1))]
        # A query with no clue to its language is most likely in the language most articles use.
        self.main_lang = Counter(self.langs).most_common(1)[0][0] if self.langs else self.default_lang
        self._words = None
        if keep is not None:
            fresh = np.flatnonzero(keep < 0).tolist()
            self._words = tfidf_update.updated(previous._words, keep, list(self._word_docs(articles, fresh)))
        if self._words is None and WORD_WEIGHT > 0:
            # Generators: a channel reads its documents a few hundred at a time (see tfidf._counts).
            self._words = Channel.fit(self._word_docs(articles, range(len(articles))))
        titles = (textproc.char_text(a.title).split() for a in articles)
        bodies = (textproc.char_text(a.body[:MAX_BODY_CHARS]).split() for a in articles)
        # A channel is None without articles, or none with a usable word: it then scores 0.
        max_df = CHAR_MAX_DF if len(articles) >= CHAR_MAX_DF_FROM else 1.0
        self._chars = [(weight, channel) for weight, channel in (
            (TITLE_CHAR_WEIGHT, Channel.fit(titles, word_ngrams, max_df) if TITLE_CHAR_WEIGHT > 0 else None),
            (BODY_CHAR_WEIGHT, Channel.fit(bodies, word_ngrams, max_df) if BODY_CHAR_WEIGHT > 0 else None),
        ) if channel is not None]
        self.ids, self._digests = [str(a.id) for a in articles], digests
        self.fingerprint = self.fitted = _fingerprint(articles, digests)
        self._examples = self._example_channel(articles, self.langs)
        if not jieba_before and "zh" not in self.langs and textproc.jieba_loaded():
            # A few CJK runs in articles that are not Chinese (quoted names, code samples) loaded
            # jieba's 80 MB dictionary for this fit alone: their words are kept (textproc._segment),
            # so the next refit needs no dictionary, and a Chinese email loads it again if one comes.
            textproc.release_jieba()
        release_free_memory()
        return self.with_synonyms(self.synonyms, into=self)

    def _language(self, article: MatchArticle) -> str:
        """The article's language as given, else as its start reads."""
        return textproc.normalise_lang(article.lang) or textproc.detect_language(
            f"{article.title}\n{article.body[:1000]}", self.default_lang)

    def _word_docs(self, articles: list[MatchArticle], which: Iterable[int]) -> Iterator[list[str]]:
        """The word channel's documents of the articles ``which``: "title, title, body" in stems and pairs."""
        for i in which:
            article = articles[i]
            yield textproc.with_bigrams(textproc.words(
                "\n".join([article.title] * TITLE_REPEAT + [article.body]), self.langs[i]))

    def _columns(self, articles: list[MatchArticle], digests: list[bytes]) -> np.ndarray | None:
        """Each article's column in this model if its text is unchanged, else -1; None when this
        model's word channel cannot be updated or a whole fit is due (see ``updated``)."""
        words = self._words
        if words is None or words.scale is None or len({str(a.id) for a in articles}) < len(articles):
            return None
        if tfidf_update.orphans(words) > UPDATE_SHARE * words.postings.shape[0]:
            return None  # features no article has any more: a fit drops their rows
        column = {article_id: j for j, article_id in enumerate(self.ids)}
        keep = np.array([j if j >= 0 and self._digests[j] == digest else -1 for j, digest in
                         zip((column.get(str(a.id), -1) for a in articles), digests)], dtype=np.int32)
        return keep if (keep < 0).sum() <= UPDATE_SHARE * len(articles) else None

    def with_synonyms(self, synonyms: synonym_expansion.Expansion, into: "Matcher | None" = None) -> "Matcher":
        """This fitted model expanding queries with ``synonyms`` (a copy unless ``into``); no refit.

        The fingerprint (what the sandbox child holds) then names the sets too; ``fitted`` stays
        the articles' digest."""
        twin = into if into is not None else copy.copy(self)
        twin.synonyms = synonyms
        tag = hashlib.sha256(synonyms.version.encode()).hexdigest()[:8] if synonyms else ""
        twin.fingerprint = f"{twin.fitted}+{tag}" if tag else twin.fitted
        return twin

    def _example_channel(self, articles: list[MatchArticle], langs: list[str]) -> ExampleChannel | None:
        """The examples' channel; None without examples, so scores are exactly the articles' own."""
        examples = [(index, text, textproc.detect_language(text, lang))
                    for index, (article, lang) in enumerate(zip(articles, langs)) for text in article.examples]
        return ExampleChannel(len(articles), examples) if examples else None

    def __len__(self) -> int:
        return len(self.ids)

    def match(self, text: str, subject: str = "", top: int = 3) -> list[Match]:
        """The ``top`` best articles for an email's subject and text, best first, scores > 0.

        With synonyms, each article scores the better of the query as written and the query with
        its sets' terms added, so a synonym can lift an article but never dilute another's score.
        """
        found = self._match(text, subject, top)
        expanded = self.synonyms.expand(text, subject, self.main_lang)  # the one place synonyms reach the matcher
        return synonym_expansion.better(found, self._match(expanded, "", top), top) if expanded else found

    def _match(self, text: str, subject: str, top: int) -> list[Match]:
        """The ``top`` best articles for the query as given."""
        query = f"{subject}\n{text}".strip()[:MAX_QUERY_CHARS]
        if not self.ids or not query or top < 1:
            return []
        lang = textproc.detect_language(query, self.main_lang)
        analysed = textproc.analyse(query, lang)
        surface = {term: word for term, word in reversed(analysed)}  # first spelling wins
        query_terms = textproc.with_bigrams([term for term, _ in analysed])
        # Each channel's analysis runs once per email: the words serve both character channels.
        word_counts, char_words = Counter(query_terms), textproc.char_text(query).split()
        size = len(self.ids)
        scores = np.zeros(size, dtype=np.float64)
        word_vector = word_rows = None
        if self._words is not None:
            word_vector = self._words.vector(word_counts)
            word_rows = self._words.rows(word_vector[0])  # kept for _why
            scores += WORD_WEIGHT * self._words.scores(*word_vector[:2], size, word_rows)
        for weight, channel in self._chars:
            scores += weight * channel.scores(*channel.word_vector(char_words), size)
        scores /= WORD_WEIGHT + TITLE_CHAR_WEIGHT + BODY_CHAR_WEIGHT
        nearest = None
        if self._examples is not None:
            nearest = self._examples.nearest(word_counts, char_counts(" ".join(char_words)))
            articles_only, scores = scores, blend(scores, nearest)
        best = top_indices(scores, top)
        why = self._why(word_vector, word_rows, best, surface)
        found = [Match(self.ids[i], round(float(scores[i]), 4), terms) for i, terms in zip(best, why)]
        if nearest is None:
            return found
        # An example drove a match when its examples raised the article's score and one is close.
        explained = []
        for match, i in zip(found, best):
            example, close = self._examples.explanation(nearest, i) if scores[i] > articles_only[i] else ("", 0.0)
            explained.append(replace(match, example=example, example_score=close))
        return explained

    def _why(self, word_vector, rows: Rows | None, best: list[int], surface: dict[str, str]) -> list[list[str]]:
        """Per article, the query terms with the largest share of its word-channel similarity
        (``rows``: the word channel's postings of the query's terms, as scored)."""
        if word_vector is None or not len(word_vector[0]) or not best:
            return [[] for _ in best]
        _, values, terms = word_vector
        order = sorted(range(len(terms)), key=terms.__getitem__)  # ties go to the first term alphabetically
        # Rows: the query's terms; columns: the chosen articles; cells: each term's share of the cosine.
        shares = self._term_shares(rows, values, best)[order]
        result = []
        for column in shares.T:
            why: list[str] = []
            for row in np.argsort(-column, kind="stable").tolist():
                if column[row] <= 0 or len(why) >= MAX_TERMS:
                    break
                # Only the few terms shown get their written form (an email has a hundred or more).
                name = " ".join(surface.get(part, part) for part in terms[order[row]].split(" "))
                if name not in why:
                    why.append(name)
            result.append(why)
        return result

    def _term_shares(self, rows: Rows, values: np.ndarray, best: list[int]) -> np.ndarray:
        """Rows: the query's terms; columns: the ``best`` articles; cells: each term's share of
        the cosine. Read from the query's rows alone (selecting columns of the sparse matrix
        scanned all 10,000 articles: a tenth of an email's time)."""
        column_of = np.full(len(self.ids), -1, dtype=np.int64)
        column_of[best] = np.arange(len(best))
        columns = column_of[rows.indices]
        hit = columns >= 0
        shares = np.zeros((len(rows.indptr) - 1, len(best)), dtype=np.float32)
        shares[np.repeat(np.arange(len(rows.indptr) - 1), np.diff(rows.indptr))[hit], columns[hit]] = rows.data[hit]
        return shares * values[:, None]


def published_match_articles(session) -> list[MatchArticle]:
    """The published articles of the database, with their example questions, as matcher input
    (id = the Article's id).

    An article whose text cannot be extracted is left out (and logged): one article must not
    keep the matcher, and so every reply, from being refreshed."""
    from kb.articles import published_articles
    from kb.capture.examples import all_examples
    from kb.render_cache import article_text  # the text kept with each article: no rendering per refit

    examples: dict[int, list[str]] = {}
    for article_id, text, _lang in all_examples(session):
        examples.setdefault(article_id, []).append(text)
    found = []
    for article in published_articles(session):
        try:
            found.append(MatchArticle(str(article.id), article.title, article_text(article), article.lang,
                                      tuple(examples.get(article.id, ()))))
        except Exception as exc:  # a failure on one article must not keep every other from the matcher
            log.warning("article %s (%s) left out of the auto-responder's matcher: %s: %s",
                        article.id, article.slug, type(exc).__name__, str(exc)[:200])
    return found


class ModelHolder:
    """The matcher a running worker uses; a refit swaps it in atomically, no restart needed."""

    def __init__(self, matcher: Matcher | None = None, default_lang: str = "en") -> None:
        self.default_lang = default_lang
        self._matcher = matcher or Matcher(default_lang)
        self._lock = threading.Lock()
        self.synonyms = self._matcher.synonyms

    @property
    def matcher(self) -> Matcher:
        """The current model (one attribute read: callers always see a whole model)."""
        return self._matcher

    @property
    def version(self) -> str:
        """The current model's fingerprint."""
        return self._matcher.fingerprint

    def swap(self, matcher: Matcher) -> None:
        """Make ``matcher`` the current model."""
        self._matcher = matcher

    def refresh(self, articles: Iterable[MatchArticle]) -> bool:
        """Refit on ``articles`` if they differ from the current model's; True if it changed."""
        articles = list(articles)
        with self._lock:  # one refit at a time; matching goes on with the old model meanwhile
            if fingerprint(articles) == self._matcher.fitted:
                return False
            self.swap(self._matcher.updated(articles))
            release_free_memory()  # the old model's memory, now that nothing holds it
            return True

    def use_synonyms(self, synonyms: synonym_expansion.Expansion) -> None:
        """Expand queries with ``synonyms`` from now on (the same fitted model: no refit)."""
        with self._lock:
            self.synonyms = synonyms
            self.swap(self._matcher.with_synonyms(synonyms))
