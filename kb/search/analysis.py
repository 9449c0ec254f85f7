"""Text analysis per language group: English and Norwegian stemming, Chinese segmented by jieba.

An article fills only the fields of its own language group; languages kb has no analyzer for
fall back to the ``other`` group (lowercased words, no stemming).
"""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache

from whoosh.analysis import (LanguageAnalyzer, LowercaseFilter, RegexTokenizer, StemFilter, StemmingAnalyzer,
                             StopFilter, Token, Tokenizer)
from whoosh.formats import Frequency, Positions
from whoosh.system import pack_uint

GROUPS = ("en", "nb", "zh", "other")
# Norwegian stemming lives under 'no'; 'nb'/'nn' silently give no stemming in Whoosh.
GROUP_OF_LANG = {"en": "en", "nb": "nb", "nn": "nb", "no": "nb", "zh": "zh"}
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
CJK_RE = re.compile(f"[{CJK}]")
# Latin-script (and other alphabetic) words, never CJK: the vocabulary for typo suggestions.
SPELL_WORD = rf"(?:(?![{CJK}])[^\W_])+"
WORD_CHAR = re.compile(r"[^\W_]")
SEGMENT_RE = re.compile(rf"([{CJK}]+)|{SPELL_WORD}")
# Whoosh's own English list is short; customers type whole questions ("how do I ... my ..."),
# whose filler words would otherwise outweigh the words that matter in short titles.
EN_STOP = frozenset("""a about above after again against all am an and any are as at be because been before
being below between both but by can could did do does doing don down during each few for from further get
got had has have having he her here hers herself him himself his how i if im in into is it its itself just
me more most my myself no nor not now of off on once only or other our ours ourselves out over own same
she should so some such than that the their theirs them themselves then there these they this those through
to too under until up very was we were what when where which while who whom why will with would you your
yours yourself yourselves us may yet""".split())

MEMO_WORDS = 100_000  # words whose term ``term_spans`` keeps per group, before it starts again

_jieba_lock = threading.Lock()
_jieba_ready = threading.Event()


def group_for(lang: str | None) -> str:
    """The analyzer group ('en', 'nb', 'zh' or 'other') for an article or query language."""
    return GROUP_OF_LANG.get((lang or "").lower(), "other")


def _jieba():
    """The jieba module, quiet and initialised (about 1.6 s, once per process)."""
    if not _jieba_ready.is_set():
        with _jieba_lock:  # one importer: concurrent first imports see a half-made module
            if not _jieba_ready.is_set():
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_ready.set()
    import jieba

    return jieba


def _warm() -> None:
    """Load jieba now; a failure here only means the first Chinese search loads it."""
    try:
        _jieba()
    except Exception:  # noqa: BLE001 - e.g. the interpreter shutting down mid-import
        logging.getLogger(__name__).debug("jieba warm-up failed", exc_info=True)


def warm_jieba_in_background() -> None:
    """Load jieba's dictionary in a daemon thread so the first Chinese query is quick."""
    if not _jieba_ready.is_set():
        threading.Thread(target=_warm, name="kb-jieba-warmup", daemon=True).start()


class JiebaTokenizer(Tokenizer):
    """Segments CJK runs with jieba's search mode (sub-words too); other text splits into words.

    Only CJK runs go through jieba, so Latin words ("PayPal") become the same terms as in
    queries, and text without Chinese never waits for jieba's dictionary.
    """

    def __call__(self, value, positions=False, chars=False, keeporiginal=False, removestops=True,
                 start_pos=0, start_char=0, mode="", **kwargs):
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        pos = start_pos
        for word, start, end in _segments(value):
            token.text = word
            token.boost = 1.0
            token.stopped = False
            if keeporiginal:
                token.original = word
            if positions:
                token.pos = pos
                pos += 1
            if chars:
                token.startchar = start_char + start
                token.endchar = start_char + end
            yield token


def _segments(text: str):
    """(word, start, end) for the words of ``text``: jieba inside CJK runs, \\w+ elsewhere."""
    for match in SEGMENT_RE.finditer(text):
        if match.group(1) is None:
            yield match.group(), match.start(), match.end()
            continue
        offset = match.start()
        for word, start, end in _jieba().tokenize(match.group(), mode="search"):
            if WORD_CHAR.search(word):
                yield word, offset + start, offset + end


@lru_cache(maxsize=None)
def analyzer(group: str):
    """The Whoosh analyzer of a language group."""
    if group == "en":
        return StemmingAnalyzer(stoplist=EN_STOP)
    if group == "nb":
        return LanguageAnalyzer("no")
    if group == "zh":
        return JiebaTokenizer() | LowercaseFilter() | StopFilter(EN_STOP, minsize=1)
    return RegexTokenizer() | LowercaseFilter() | StopFilter(EN_STOP, minsize=1)


@lru_cache(maxsize=None)
def spell_analyzer():
    """Lowercased, unstemmed non-CJK words: the index vocabulary for "did you mean"."""
    return RegexTokenizer(SPELL_WORD) | LowercaseFilter()


def terms(group: str, text: str) -> list[str]:
    """The index terms ``text`` becomes in ``group``'s fields, in order, stop words dropped."""
    return [t.text for t in analyzer(group)(text)]


def term_spans(group: str, text: str, wanted: set[str] | None = None) -> list[tuple[str, int, int]]:
    """(term, start char, end char) of each term ``text`` becomes in ``group`` (only those in ``wanted`` if given).

    The same terms and characters as the analyzer with chars=True gives. For a plain chain (every
    group but zh) the steps run on lists, as ``fast_index`` does: a snippet asks this of every
    result it shows, and Whoosh's token-by-token generators cost most of a snippet's time.
    """
    chain = plain_chain(group)
    if chain is None:
        return [(t.text, t.startchar, t.endchar) for t in analyzer(group)(text, chars=True)
                if wanted is None or t.text in wanted]
    finditer, _filters, memo, _by_term = chain
    if len(memo) > MEMO_WORDS:
        forget_words(chain)
    spans = []
    for match in finditer(text):
        word = match.group(0)
        term = memo.get(word, "")
        if term == "":  # not seen yet (no word analyses to ""): lowercase, stop and stem it once
            term = learn_word(chain, word)
        if term is not None and (wanted is None or term in wanted):
            spans.append((term, match.start(), match.end()))
    return spans


def learn_word(chain: tuple, word: str) -> str | None:
    """Analyse one word through a plain chain's filters and keep it: its term, None for a stop word."""
    learn_words(chain, (word,))
    return chain[2][word]


def learn_words(chain: tuple, words) -> None:
    """Analyse words through a plain chain's filters and keep each one's term (None for a stop word): one pass of each filter over the list."""
    _finditer, filters, memo, by_term = chain
    words = list(words)
    terms, poses = words, list(range(len(words)))
    for item in filters:  # without positions a filter keeps each word's index in ``poses`` (stop words drop out)
        terms, poses = _apply(item, terms, poses, False)
    found = dict(zip(poses, terms))
    for k, word in enumerate(words):
        term = memo[word] = found.get(k)
        if term is not None:
            by_term.setdefault(term, set()).add(word)


def forget_words(chain: tuple) -> None:
    """Start a plain chain's kept words again (they are bounded by MEMO_WORDS)."""
    chain[2].clear()
    chain[3].clear()


@lru_cache(maxsize=None)
def plain_chain(group: str):
    """(the tokenizer's finditer, the filters, {word: term or None}, {term: its words}) for a plain chain, else None.

    Each filter of a plain chain works on one word at a time, so a word's term never depends on
    its neighbours and can be kept; snippets (kb.search.spans) find a term's words again from the last.
    """
    plain = _plain(analyzer(group))
    return None if plain is None else (*plain, {}, {})


def _plain(chain) -> tuple | None:
    """(the tokenizer's finditer, the filters) of a regex tokenizer followed by lowercasing, stop words
    and stemming only, the chains whose steps can run on lists; None for any other analyzer."""
    items = getattr(chain, "items", [chain])
    if type(items[0]) is not RegexTokenizer or items[0].gaps or any(
            type(item) not in (LowercaseFilter, StopFilter, StemFilter) for item in items[1:]):
        return None
    return items[0].expression.finditer, tuple(items[1:])


def segment(text: str) -> list[str]:
    """CJK text cut into whole words (jieba's precise mode): one query word per word meant.

    The index also holds each word's sub-words (search mode), which ``terms`` of a whole word
    yields, so a query word matches the word and its parts as one.
    """
    return [word for word in _jieba().cut(text) if WORD_CHAR.search(word)]


def has_cjk(text: str) -> bool:
    """Whether the text contains any Chinese, Japanese or Korean character."""
    return CJK_RE.search(text) is not None


def fast_index(field):
    """A quicker stand-in for ``field.index`` (rebuilds), or None where the field's analysis is not a plain chain.

    Whoosh runs every word through a generator per filter with a Token object: most of a rebuild's
    analysis time. For a regex tokenizer followed by lowercasing, stop words and stemming (every
    analyzer here but jieba's), the same steps on lists give the same terms, positions, weights and
    encoded values (tests/test_reindex_analysis.py holds them equal).
    """
    fmt = getattr(field, "format", None)
    plain = _plain(getattr(field, "analyzer", None))
    if plain is None or type(fmt) not in (Positions, Frequency):
        return None
    (finditer, filters), positions, boost = plain, type(fmt) is Positions, fmt.field_boost

    def index(value, **kwargs):
        if not isinstance(value, str):  # a list of ready tokens: Whoosh's own path
            yield from field.index(value, **kwargs)
            return
        words = [match.group(0) for match in finditer(value)]
        poses = list(range(len(words)))
        for item in filters:
            words, poses = _apply(item, words, poses, positions)
        found: dict[str, list[int]] = {}
        for word, pos in zip(words, poses):
            found.setdefault(word, []).append(pos)
        for word, where in found.items():
            value = fmt.encode(where) if positions else pack_uint(len(where))
            yield word.encode("utf-8"), len(where), float(len(where)) * boost, value

    return index


def _apply(item, words: list[str], poses: list[int], positions: bool) -> tuple[list[str], list[int]]:
    """One filter of the chain on (words, positions), as Whoosh's filter does it token by token."""
    if type(item) is LowercaseFilter:
        return [word.lower() for word in words], poses
    if type(item) is StemFilter:
        stem, ignore = item._stem, item.ignore
        return [word if word in ignore else stem(word) for word in words], poses
    stops, low, high = item.stops, item.min, item.max
    kept = [k for k, word in enumerate(words)
            if len(word) >= low and (high is None or len(word) <= high) and word not in stops]
    words = [words[k] for k in kept]
    if item.renumber and positions and kept:
        # Whoosh keeps the first kept word's position and numbers the rest on from it.
        first = poses[kept[0]]
        return words, list(range(first, first + len(kept)))
    return words, [poses[k] for k in kept]
