"""Synonyms for the matcher: a query that says "money back" is also vectorised with "refund".

Expansion is query-side only (the articles' model never changes, so no refit): the terms of every
set a query holds are put before it, and ``Matcher.match`` scores each article by the better of
the query as written and the expanded one (``better``), so the added words never dilute the
score of an article that matched the customer's own words. A term is found in the query by its
stemmed words in order, stop words included (so "refunds" finds "refund", and "received" is not
"not received"); a Chinese term by its characters. The worker keeps the sets fresh with
``refresh`` (a cheap version check per cycle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from kb.autoreply import textproc

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
                stems = () if cjk else tuple(_stems(term, lang))
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
        stems = _stems(text, lang)
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

    def expand(self, text: str, subject: str = "", default_lang: str = "en") -> str:
        """The email's subject and text after the terms its sets bring in; "" if it holds none.

        The added terms go first, so cutting a long email to the matcher's limit keeps them.
        """
        if not self.rules:
            return ""
        query = f"{subject}\n{text}".strip()
        added = self.added_terms(query, textproc.detect_language(query, default_lang))
        return f"{' '.join(added)}\n{query}" if added else ""


NONE = Expansion()


def _stems(text: str, lang: str) -> list[str]:
    """The Latin words of ``text`` in order, each stemmed; stop words kept (as words): "log in", "not received"."""
    return [textproc.stem(word.lower(), "en" if lang == "zh" else lang) for word in textproc.WORD_RE.findall(text)]


def better(found: list, expanded: list, top: int) -> list:
    """The ``top`` matches by each article's better score of the two lists (as written first on ties).

    Exact: an article among the best ``top`` by its better score is among the best ``top`` of
    the list that gave it that score.
    """
    best: dict[str, object] = {}
    for match in [*found, *expanded]:
        if match.article_id not in best or match.score > best[match.article_id].score:
            best[match.article_id] = match
    order = {m.article_id: n for n, m in enumerate([*found, *expanded])}
    return sorted(best.values(), key=lambda m: (-m.score, order[m.article_id]))[:top]


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
