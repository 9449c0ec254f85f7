"""Synonyms for the matcher: a query that says "money back" is also vectorised with "refund".

Expansion is query-side only (the articles' model never changes, so no refit): the terms of every
set a query holds are appended to it before analysis. A term is found in the query by its
stemmed words in order (so "refunds" finds the set of "refund"); a Chinese term also by its
characters, whatever jieba made of them. ``Matcher.match`` calls ``expand``; the worker keeps the
sets fresh with ``refresh`` (a cheap version check per cycle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from kb.autoreply import textproc

# How many times an added term counts against the customer's own words: once, like the words
# themselves (chosen on the StackFAQ dev split, where more made the figures worse).
REPEAT = 1
MAX_ADDED = 30


@dataclass(frozen=True)
class Rule:
    """One way into a set: the source term's stems (or characters) and the terms it brings in."""

    stems: tuple[str, ...]
    cjk: str
    targets: tuple[str, ...]


@dataclass
class Expansion:
    """Compiled sets per language, with the version of the sets they came from; picklable."""

    version: str = ""
    rules: dict[str, list[Rule]] = field(default_factory=dict)

    @classmethod
    def from_sets(cls, sets: Iterable, version: str = "") -> "Expansion":
        """Compile ``kb.capture.synonyms.Synonyms`` (anything with lang, terms, sources(), targets())."""
        rules: dict[str, list[Rule]] = {}
        for item in sets:
            lang = textproc.normalise_lang(item.lang) or item.lang
            for term in item.sources():
                cjk = term if textproc.has_cjk(term) else ""
                stems = () if cjk else tuple(textproc.words(term, lang))
                if stems or cjk:
                    rules.setdefault(lang, []).append(Rule(stems, cjk, tuple(item.targets(term))))
        return cls(version, rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def added_terms(self, text: str, lang: str) -> list[str]:
        """The terms of every set ``text`` holds a source term of, once each, in set order."""
        rules = self.rules.get(lang, [])
        if not rules or not text:
            return []
        stems = textproc.words(text, lang) if not textproc.has_cjk(text) or lang == "zh" else []
        added: dict[str, None] = {}
        for rule in rules:
            if rule.cjk:
                hit = rule.cjk in text
            else:
                hit = _contains(stems, rule.stems)
            if hit:
                added.update(dict.fromkeys(rule.targets))
            if len(added) >= MAX_ADDED:
                break
        return list(added)[:MAX_ADDED]

    def expand(self, text: str, lang: str) -> str:
        """The query with the terms its sets bring in appended (the text itself if none)."""
        added = self.added_terms(text, lang)
        if not added:
            return text
        return "\n".join([text, *([" ".join(added)] * REPEAT)])


NONE = Expansion()


def _contains(words: list[str], run: tuple[str, ...]) -> bool:
    """Whether ``run`` occurs in ``words`` as consecutive items."""
    size = len(run)
    if not size or size > len(words):
        return False
    first = run[0]
    return any(words[i] == first and tuple(words[i:i + size]) == run for i in range(len(words) - size + 1))


def from_database(session) -> Expansion:
    """The sets in force in the database, compiled."""
    from kb.capture import synonyms

    return Expansion.from_sets(synonyms.active_sets(session), synonyms.version(session))


def defaults(langs: Iterable[str] | None = None) -> Expansion:
    """The shipped default sets (no database: for ``kb match`` and the evaluation)."""
    from kb.capture import synonyms

    wanted = set(langs) if langs is not None else None
    sets = [synonyms.Synonyms(d.lang, d.kind, d.terms) for d in synonyms.all_defaults()
            if wanted is None or d.lang in wanted]
    return Expansion.from_sets(sets, "defaults")


def refresh(holder, session, seen: str | None) -> str | None:
    """Give the worker's model the sets in force when their version changed since ``seen``; the version now."""
    from kb.capture import synonyms

    current = synonyms.version(session)
    if current != seen:
        holder.use_synonyms(Expansion.from_sets(synonyms.active_sets(session), current))
    return current
