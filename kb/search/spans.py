"""Where a result's text holds the query's terms, for its snippet: the few hits found without analysing every word.

``analysis.term_spans`` analyses each word of the text in turn, a Python step per word; a snippet
needs only the words whose term the query asked for. Here the text's distinct words come from
one C-level ``findall``, each new word is analysed once per process (into the words ``term_spans``
keeps), and a word learnt for a term is found again by set intersection; only the hits are then
located, with ``str.find`` and a check that the match is a whole token. Same spans as
``term_spans`` (tested against it), several times faster; any tokenizer other than Whoosh's
default (the zh group's jieba) takes ``term_spans``.
"""

from __future__ import annotations

import re
from functools import lru_cache

from whoosh.analysis.tokenizers import default_pattern

from kb.search.analysis import MEMO_WORDS, forget_words, learn_words, plain_chain, term_spans

# Whoosh's default tokens are runs of word characters or "*" joined by single dots. A token
# without a dot is one run, so the runs (a simpler pattern, faster to scan) hold every such token;
# a run inside a dotted token is no hit, which the whole-token check turns away.
RUN = re.compile(r"[\w\*]+")
TOKEN_CHAR = re.compile(r"[\w\*]")
RUN_REST = re.compile(r"[\w\*]*")
NONE: frozenset[str] = frozenset()


def hit_spans(group: str, text: str, wanted: set[str]) -> list[tuple[str, int, int]]:
    """``term_spans(group, text, wanted)``: (term, start, end) of each word of ``text`` whose term is wanted."""
    chain = _quick_chain(group)
    # A dotted token's term keeps its dot (filters lowercase, drop and cut letters, never a dot), so
    # only a wanted term with a dot can be a dotted token: those few queries take the long way.
    if chain is None or any("." in term for term in wanted):
        return term_spans(group, text, wanted)
    _finditer, _filters, memo, by_term = chain  # the words term_spans keeps too
    words = set(RUN.findall(text))
    new = words.difference(memo)  # C-level: only words never seen in this process are analysed
    if new:
        if len(memo) + len(new) > MEMO_WORDS:  # bounded: start again, with all of this text's words
            forget_words(chain)
            new = words
        learn_words(chain, new)
    # Terms from by_term alone (never memo[word]): another thread starting again can cost a
    # highlight, never an error.
    hits = [(term, word) for term in wanted for word in by_term.get(term, NONE) & words]
    spans = [(term, start, start + len(word)) for term, word in hits for start in _whole_tokens(text, word)]
    spans.sort(key=lambda span: span[1])
    return spans


def _whole_tokens(text: str, word: str):
    """Where ``word`` stands in ``text`` as a whole token (not inside a longer one)."""
    at = text.find(word)
    while at != -1:
        end = at + len(word)
        if _starts(text, at) and _ends(text, end):
            yield at
            after = end
        else:  # inside a longer run, where every later start has a token character before it: skip the run
            after = RUN_REST.match(text, at + 1).end()
        at = text.find(word, after)


def _starts(text: str, at: int) -> bool:
    """Whether a token starts at ``at``: no token character before it, nor one and a dot."""
    if at == 0:
        return True
    if TOKEN_CHAR.match(text, at - 1):
        return False
    return not (text[at - 1] == "." and at >= 2 and TOKEN_CHAR.match(text, at - 2))


def _ends(text: str, end: int) -> bool:
    """Whether a token ends at ``end``: no token character after it, nor a dot and one."""
    if end >= len(text):
        return True
    if TOKEN_CHAR.match(text, end):
        return False
    return not (text[end] == "." and TOKEN_CHAR.match(text, end + 1))


@lru_cache(maxsize=None)
def _quick_chain(group: str) -> tuple | None:
    """The group's plain chain (kb.search.analysis) if its tokenizer is Whoosh's default, else None."""
    chain = plain_chain(group)
    if chain is None or chain[0].__self__.pattern != default_pattern.pattern:
        return None
    return chain
