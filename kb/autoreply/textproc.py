"""Language-aware text analysis for the matcher: words, stems, stop words, Chinese through jieba.

Everything here is deterministic and cheap: language detection is a stop-word vote (CJK
characters mean Chinese), stemming is Snowball (the pure-Python ``snowballstemmer`` package,
which uses PyStemmer's C code when that is installed), and each word is stemmed once per process.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import unicodedata
from collections import Counter
from functools import lru_cache

import snowballstemmer

CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
CJK_RE = re.compile(f"[{CJK}]")
KANA_RE = re.compile("[\u3040-\u30ff]")
HANGUL_RE = re.compile("[\uac00-\ud7af]")
# A CJK run, or a run of letters and digits (never CJK); apostrophes split "don't" into "don", "t".
TOKEN_RE = re.compile(rf"([{CJK}]+)|((?:(?![{CJK}])[^\W_])+)")
WORD_RE = re.compile(rf"(?:(?![{CJK}])[^\W_])+")
ANY_WORD_RE = re.compile(r"[^\W_]+")
LETTER_RE = re.compile(r"[^\W\d_]")
COMBINING_RE = re.compile("[\u0300-\u036f]")

# Snowball algorithm per language code; Norwegian is written nb, nn or no.
STEMMER_NAMES = {
    "en": "english", "nb": "norwegian", "nn": "norwegian", "no": "norwegian", "da": "danish",
    "sv": "swedish", "de": "german", "fr": "french", "es": "spanish", "pt": "portuguese",
    "it": "italian", "nl": "dutch",
}
# Function words per language: they decide the language of a text, and they are left out of
# the model, where filler like "how do I" would otherwise outweigh the words of short titles.
_STOP_TEXT = {
    "en": """a about after all also am an and any are as at be been being both but by can could did do
        does doing done for from get got had has have having he her here him his how i i'd i'm if in into
        is it it's its just me my myself no not of off on once only or other our out own she should so some
        such than that the their them then there these they this those through to too up very was way we
        were what when where which while who whom why will with would you your yours d s t ll ve m re""",
    "nb": """jeg meg min mitt mine du deg din ditt dine han hun hen vi oss vår våre dere de dem seg sin
        sitt sine og i på til av for med som er var har hadde kan kunne skal skulle vil ville må
        det den dette disse en et ei ikke om hvordan hva hvor hvorfor når hvem at fra også så men
        eller bare etter før ut inn opp noe noen nå da blir ble får fikk være vært""",
    "pt": """a o as os um uma uns umas de do da dos das no na nos nas em ao aos à às por para pelo pela
        com sem que se e é ou mas como qual quais quando onde porque não sim mais menos muito já
        ser estar ter há foi são está sua seu suas seus meu minha me eu ele ela eles elas nós isso
        este esta esse essa pode posso devo""",
    "de": """der die das den dem des ein eine einen einem einer und oder aber ist sind war hat haben
        ich du er sie es wir ihr mein meine nicht kein keine wie was wo warum wann mit von zu im auf
        für bei nach aus auch noch kann können""",
    "fr": """le la les un une des du de et ou mais est sont était a ont je tu il elle nous vous ils
        mon ma mes ne pas comment quoi où pourquoi quand avec pour dans sur par en au aux ce cette qui que""",
    "es": """el la los las un una unos unas de del y o pero es son era ha han yo tú él ella nosotros
        mi mis no cómo qué dónde por qué cuándo con para en sobre al este esta que se lo""",
    "sv": """jag mig min mitt mina du dig din han hon vi oss vår ni de dem sig och i på till av för
        med som är var har hade kan kunde ska skulle vill inte hur vad var varför när det den en ett att""",
    "da": """jeg mig min mit mine du dig din han hun vi os vores i de dem sig og på til af for med som
        er var har havde kan kunne skal skulle vil ikke hvordan hvad hvor hvorfor når det den en et at""",
}
STOP_WORDS = {lang: frozenset(words.split()) for lang, words in _STOP_TEXT.items()}
# The languages each stop word votes for: a text's words are looked up once each, not every
# language's stop words in the text (800 lookups, a third of detect_language's time).
_VOTERS: dict[str, tuple[str, ...]] = {}
for _lang, _stops in STOP_WORDS.items():
    for _word in _stops:
        _VOTERS[_word] = (*_VOTERS.get(_word, ()), _lang)
# The courtesy of support email (greetings, thanks, sign-offs): in every email, so it says
# nothing about which article answers; left out of queries and articles alike.
MAIL_FILLER = frozenset("""hi hello hey dear thanks thank thx regards cheers best kind please pls help
    appreciated appreciate advance sir madam team support hope wondering greetings sincerely
    hei hallo takk tusen hilsen hilsener vennlig mvh god dag hjelp
    olá ola obrigado obrigada cumprimentos atenciosamente ajuda favor bom dia""".split())
# Chinese particles and question words (jieba tokens); never part of the language vote.
ZH_STOP_WORDS = frozenset("的 了 是 我 你 他 她 我们 你们 在 吗 呢 吧 啊 和 与 或 也 都 就 要 会 能 可以 怎么 怎样 "
                          "如何 什么 为什么 哪里 请 请问 一个 这个 那个 有 没有 不".split())
# Letters that are strong evidence of one language when stop words tie.
LETTER_HINTS = {"nb": "æøå", "pt": "ãõç", "de": "äöüß", "sv": "äöå", "da": "æøå"}

MAX_CACHED_TERMS = 500_000
# CJK runs whose segmentation is kept (in characters): enough for the few runs of a KB that is not
# Chinese (quoted names, code samples), so that its refits need no dictionary (see release_jieba).
MAX_SEGMENTED_CHARS = 200_000
_jieba_lock = threading.Lock()
_jieba_module = None
_segmented: dict[str, tuple[str, ...]] = {}
_segmented_chars = 0


def has_cjk(text: str) -> bool:
    """True when the text holds a Chinese, Japanese or Korean character."""
    return bool(CJK_RE.search(text or ""))


def normalise_lang(lang: str | None) -> str | None:
    """A language code kb knows ("nb", "pt", ...) from "nb-NO", "no", "PT"; None if unknown."""
    code = (lang or "").strip().lower().replace("_", "-").split("-")[0]
    if code in {"no", "nn"}:
        return "nb"
    if code == "zh" or code in STEMMER_NAMES:
        return code
    return None


def detect_language(text: str, default: str = "en") -> str:
    """zh if a third of the letters are CJK; else the language whose stop words occur most."""
    text = (text or "")[:2000].lower()
    letters = len(LETTER_RE.findall(text)) if has_cjk(text) else 0
    if letters and len(CJK_RE.findall(text)) * 3 >= letters:
        return "zh"
    counts = Counter(WORD_RE.findall(text) if letters else ANY_WORD_RE.findall(text))
    votes = dict.fromkeys(STOP_WORDS, 0)
    for word in counts.keys() & _VOTERS.keys():
        for lang in _VOTERS[word]:
            votes[lang] += counts[word]
    for lang, letters_of_lang in LETTER_HINTS.items():
        votes[lang] += 0.5 * min(4, sum(text.count(ch) for ch in letters_of_lang))
    best = max(votes.values(), default=0)
    # Ties go to the default, then to kb's own languages first (the order of _STOP_TEXT): Danish
    # and Norwegian share most function words, and kb's customers write Norwegian.
    winners = [lang for lang, vote in votes.items() if vote == best]
    if best < 1:
        return default
    return default if default in winners else winners[0]


def written_language(text: str, default: str = "en") -> str:
    """The language to answer ``text`` in: detect_language's, except that Japanese kana or Korean
    Hangul make it ja or ko, where the matcher (which tokenises all CJK alike) says zh."""
    lang = detect_language(text, default)
    if lang == "zh":
        head = (text or "")[:2000]
        return "ja" if KANA_RE.search(head) else "ko" if HANGUL_RE.search(head) else lang
    return lang


def fold(word: str) -> str:
    """Lowercase without accents: customers type "possivel" for "possível", "cafe" for "café"."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_stemmers = threading.local()


def _stemmer(lang: str):
    """This thread's Snowball stemmer for a language, or None.

    A stemmer keeps the word it works on in itself: shared by two threads (two auto-responders in
    one process, a web worker's threads), one thread's word cut short the other's (IndexError).
    """
    made = _stemmers.__dict__.setdefault("by_lang", {})
    if lang not in made:
        name = STEMMER_NAMES.get(lang)
        made[lang] = snowballstemmer.stemmer(name) if name else None
    return made[lang]


@lru_cache(maxsize=200_000)
def stem(word: str, lang: str) -> str:
    """The accent-folded Snowball stem of a lowercased word (the word itself without a stemmer)."""
    stemmer = _stemmer(lang)
    return fold(stemmer.stemWord(word) if stemmer else word)


def _jieba():
    """jieba, initialised once per process, quietly (its dictionary takes about a second)."""
    global _jieba_module
    if _jieba_module is None:
        with _jieba_lock:
            if _jieba_module is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_module = jieba
    return _jieba_module


def load_jieba() -> None:
    """Load jieba's dictionary now rather than at the first Chinese text (see sandbox_preload.py)."""
    _jieba()


def jieba_loaded() -> bool:
    """True when jieba's dictionary is in memory (loaded by the matcher or by kb.search)."""
    jieba = sys.modules.get("jieba")
    return bool(jieba is not None and jieba.dt.initialized)


def release_jieba() -> None:
    """Drop jieba's dictionary (about 80 MB resident); the next text that needs it loads it again.

    jieba keeps it in its default tokenizer, which kb.search shares: emptied, that tokenizer
    loads it again by itself at its next use."""
    global _jieba_module
    with _jieba_lock:
        jieba = sys.modules.get("jieba")
        if jieba is not None:
            with jieba.dt.lock:
                jieba.dt.FREQ, jieba.dt.total, jieba.dt.initialized = {}, 0, False
        _jieba_module = None


def _segment(run: str) -> tuple[str, ...]:
    """jieba's words of a CJK run, stop words dropped; a run seen before comes from memory,
    without the dictionary, while the runs kept stay under MAX_SEGMENTED_CHARS."""
    global _segmented_chars
    found = _segmented.get(run)
    if found is None:
        found = tuple(word for word in _jieba().cut_for_search(run) if word not in ZH_STOP_WORDS)
        if _segmented_chars + len(run) <= MAX_SEGMENTED_CHARS:
            _segmented[run] = found
            _segmented_chars += len(run)
    return found


def analyse(text: str, lang: str) -> list[tuple[str, str]]:
    """(term, word as written) pairs in order: stemmed, stop words dropped, CJK runs segmented."""
    text = text or ""
    terms = _terms_of(lang)
    if len(terms) > MAX_CACHED_TERMS:  # typos and codes in years of email: keep memory bounded
        terms.clear()
    # The CJK-aware pattern is three times slower, so it only runs on text that needs it.
    pieces = (match.groups() for match in TOKEN_RE.finditer(text)) if has_cjk(text) else (
        (None, word) for word in ANY_WORD_RE.findall(text))
    found: list[tuple[str, str]] = []
    for cjk, word in pieces:
        if cjk:
            found.extend((w, w) for w in _segment(cjk))
            continue
        term = terms.get(word)
        if term is None:
            term = terms[word] = _term(word, lang)
        if term:
            found.append((term, word))
    return found


def _term(word: str, lang: str) -> str:
    """A word's term: "" for a stop word, else its stem (Latin words in Chinese text as English)."""
    lowered = word.lower()
    if lowered in STOP_WORDS["en"] or lowered in STOP_WORDS.get(lang, ()) or lowered in MAIL_FILLER:
        return ""
    return stem(lowered, "en" if lang == "zh" else lang)


@lru_cache(maxsize=None)
def _terms_of(lang: str) -> dict[str, str]:
    """The per-language cache of word -> term: the analysis of a word never changes."""
    return {}


def words(text: str, lang: str) -> list[str]:
    """The terms of a text in order (see analyse)."""
    text = text or ""
    if has_cjk(text):
        return [term for term, _ in analyse(text, lang)]
    # analyse's terms without its pairs, looked up in C: a fit reads a million words or more.
    terms = _terms_of(lang)
    if len(terms) > MAX_CACHED_TERMS:
        terms.clear()
    pieces = ANY_WORD_RE.findall(text)
    found = list(map(terms.get, pieces))
    if None in found:
        for i, term in enumerate(found):
            if term is None:
                found[i] = terms[pieces[i]] = _term(pieces[i], lang)
    return list(filter(None, found))


def with_bigrams(tokens: list[str]) -> list[str]:
    """Unigrams followed by adjacent pairs ("reset password"), which reward word order."""
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]


def char_text(text: str) -> str:
    """Accent-folded, lowercased words joined by spaces: the input of the character n-grams."""
    text = (text or "").lower()
    # ASCII has nothing to decompose or fold (and most articles are ASCII).
    folded = text if text.isascii() else COMBINING_RE.sub("", unicodedata.normalize("NFKD", text))
    return " ".join(ANY_WORD_RE.findall(folded))
