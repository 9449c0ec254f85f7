"""Synonyms in portal search: query-time expansion, so no article is re-indexed when a set changes.

A set's source term is found among the query's words by their analysed forms, in order (English
and Norwegian stems, so "refunds" finds "refund"; jieba's words for Chinese, or the term's
characters across words jieba cut differently). Each query word inside the found term then also
looks for the set's other terms (``kb.search.querying`` adds them, a phrase as a phrase query), at
SYNONYM_WEIGHT. ``SynonymCache`` re-reads the sets when ``kb.capture.synonyms.version`` changes,
at most every CHECK_SECONDS, so an agent's change is live within seconds without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from kb.search.analysis import GROUP_OF_LANG, has_cjk, segment, terms
from kb.search.querying import WORD_RE

log = logging.getLogger(__name__)
CHECK_SECONDS = 1.0
MAX_ALTERNATIVES = 8  # per query word: a bound on the query's size, whatever the sets hold


@dataclass(frozen=True)
class Rule:
    """A source term as query words' keys (or CJK characters) and the terms it brings in."""

    keys: tuple[str, ...]
    cjk: str
    targets: tuple[str, ...]


def word_key(group: str, word: str) -> str:
    """How a query word is compared with the sets' terms: its analysed form (the word for CJK)."""
    if has_cjk(word):
        return word
    found = terms(group, word)
    return found[0] if found else word


@dataclass
class SearchSynonyms:
    """The sets in force, compiled per analyzer group."""

    rules: dict[str, list[Rule]] = field(default_factory=dict)

    @classmethod
    def from_sets(cls, sets) -> "SearchSynonyms":
        """Compile ``kb.capture.synonyms.Synonyms`` for the groups their languages search in."""
        rules: dict[str, list[Rule]] = {}
        for item in sets:
            group = GROUP_OF_LANG.get(item.lang, "other")
            for term in item.sources():
                cjk = "".join(term.split()) if has_cjk(term) else ""
                keys = () if cjk else tuple(word_key(group, w) for w in sequence(term))
                if keys or cjk:
                    rules.setdefault(group, []).append(Rule(keys, cjk, item.targets(term)))
        return cls(rules)

    def alternatives(self, text: str, words: list[str], groups: list[str]) -> dict[str, list[str]]:
        """For each of the query's searched ``words`` inside a source term in ``text``, the terms it also looks for.

        Terms are found in the query's whole word sequence (stop words too: "log in" is not "log"),
        and only the searched words they cover take the alternatives.
        """
        if not self.rules:
            return {}
        seq = sequence(text)
        wanted = set(words)
        found: dict[str, dict[str, None]] = {}
        for group in groups:
            rules = self.rules.get(group)
            if not rules:
                continue
            keys = [word_key(group, w) for w in seq]
            for rule in rules:
                for span in _spans(rule, seq, keys):
                    for index in span:
                        if seq[index] in wanted:
                            found.setdefault(seq[index], {}).update(dict.fromkeys(rule.targets))
        return {w: [t for t in alts if t.lower() != w][:MAX_ALTERNATIVES] for w, alts in found.items()}


def sequence(text: str) -> list[str]:
    """The lowercased words of ``text`` in order, repeats and stop words kept, CJK runs segmented."""
    found: list[str] = []
    for match in WORD_RE.finditer(text or ""):
        chunk = match.group().lower()
        found.extend(segment(chunk) if has_cjk(chunk) else [chunk])
    return found


def _spans(rule: Rule, words: list[str], keys: list[str]):
    """The runs of query word positions where the rule's term occurs."""
    if rule.cjk:
        for start in range(len(words)):
            joined = ""
            for end in range(start, len(words)):
                joined += words[end]
                if joined == rule.cjk:
                    yield range(start, end + 1)
                if not rule.cjk.startswith(joined):
                    break
        return
    size = len(rule.keys)
    for start in range(len(keys) - size + 1):
        if tuple(keys[start:start + size]) == rule.keys:
            yield range(start, start + size)


EMPTY = SearchSynonyms()


class SynonymCache:
    """The compiled sets of one app and an epoch that grows whenever they change (for the result cache)."""

    def __init__(self, app, check_seconds: float = CHECK_SECONDS):
        self.app = app
        self.check_seconds = check_seconds
        self.epoch, self.compiled, self.version = 0, EMPTY, None
        self._checked = float("-inf")
        self._lock = threading.Lock()
        self._warned = False

    def current(self) -> tuple[int, SearchSynonyms]:
        """(epoch, sets), re-read if their version changed; a failure keeps the sets it had."""
        if time.monotonic() - self._checked >= self.check_seconds and self._lock.acquire(blocking=False):
            try:  # one thread checks; the others go on with the sets they have
                self._checked = time.monotonic()
                self._reload()
            except Exception:  # noqa: BLE001 - a search must never fail because of synonyms
                if not self._warned:
                    log.warning("could not read the synonym sets; search goes on with the ones it had", exc_info=True)
                    self._warned = True
            finally:
                self._lock.release()
        return self.epoch, self.compiled

    def versioned(self) -> str | None:
        """The sets' own version, re-read when due: alike in every process (kb.web.pagestore shares pages by it).

        Not the epoch: a process started later counts fewer changes, and its pages would not be shared.
        """
        self.current()
        return self.version

    def _reload(self) -> None:
        """Compile the sets afresh if their version changed."""
        from kb.capture import synonyms
        from kb.db import session_scope

        with session_scope(self.app) as session:
            version = synonyms.version(session)
            if version == self.version:
                return
            compiled = SearchSynonyms.from_sets(synonyms.active_sets(session))
        self.compiled, self.version, self.epoch = compiled, version, self.epoch + 1
        self._warned = False

    def expire(self) -> None:
        """Check the version at the next search (after a change this process made itself)."""
        self._checked = float("-inf")
