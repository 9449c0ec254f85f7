"""From what a customer typed to tsqueries: kb.search.querying's plan, for PostgreSQL.

The same words, weights and rules as the Whoosh planner (``kb.search.querying.build``): stop
words left out, generic words only boost, synonyms added at SYNONYM_WEIGHT, unknown words looked
up in the vocabulary (here by trigram similarity, then the same edit distances) for typos and
"Did you mean". Each query word is a clause: tsquery pieces whose match counts as matching it.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dc_field

from kb.search.analysis import analyzer, has_cjk, terms
from kb.search.generic import is_generic
from kb.search.postgres.documents import lexeme, quote
from kb.search.querying import (GENERIC_WEIGHT, MAX_PHRASES, MAX_TYPO_WORDS, PHRASE_RE, _confident, _rewrite,
                                content_words)


@dataclass
class Clause:
    """One query word: its own pieces, its typo fixes' and its synonyms' (tsquery texts), and its weight."""

    weight: float
    own: list[str] = dc_field(default_factory=list)
    typos: list[str] = dc_field(default_factory=list)
    synonyms: list[str] = dc_field(default_factory=list)

    @property
    def pieces(self) -> list[str]:
        """Every piece that counts as matching this word."""
        return self.own + self.typos + self.synonyms


@dataclass
class PgPlan:
    """The clauses, the "quoted phrase" bonuses, the terms to highlight per group and the "Did you mean"."""

    clauses: list[Clause] = dc_field(default_factory=list)
    phrases: list[str] = dc_field(default_factory=list)
    highlight: dict[str, set[str]] = dc_field(default_factory=dict)
    suggestion: str | None = None
    corrections: list[str] = dc_field(default_factory=list)  # pieces of the suggested words

    @property
    def carriers(self) -> list[Clause]:
        """The topical clauses: only they can make an article a result."""
        return [c for c in self.clauses if c.weight == 1.0]


def either(pieces: list[str]) -> str:
    """A tsquery matching any of ``pieces`` ("" for none)."""
    return " | ".join(f"({p})" if " " in p else p for p in dict.fromkeys(pieces))


def build(vocab, text: str, groups: list[str], primary: str, synonyms=None) -> PgPlan:
    """Plan the search of ``text`` over ``groups``; ``vocab`` answers the typo questions (kb.search.postgres.vocabulary)."""
    plan = PgPlan(highlight={g: set() for g in groups})
    corrected: dict[str, str] = {}
    typo_budget = MAX_TYPO_WORDS
    words = content_words(text, primary)
    alternatives = synonyms.alternatives(text, words, groups) if synonyms else {}
    topical = any(not is_generic(w) for w in words)
    clauses = [(w, Clause(GENERIC_WEIGHT if topical and is_generic(w) else 1.0)) for w in words]
    for word, clause in clauses:
        clause.own = _parts(word, groups, plan.highlight)
    clauses = [(w, c) for w, c in clauses if c.own]
    unknown = vocab.unknown([(w, c.own) for w, c in clauses if c.weight == 1.0 and not alternatives.get(w)], groups)
    for word, clause in clauses:
        if typo_budget and word in unknown:
            typo_budget -= 1
            fixes = vocab.corrections(word, spell_groups(groups, primary))
            if fixes and _confident(word, *fixes[0]):
                corrected[word] = fixes[0][0]
            for fix, _distance in fixes:
                fixed = _parts(fix, groups, plan.highlight)
                if corrected.get(word) == fix:
                    plan.corrections += fixed
                clause.typos += fixed
        for alternative in alternatives.get(word, []):
            clause.synonyms += _alternative(alternative, groups, primary, plan.highlight)
        plan.clauses.append(clause)
    if plan.clauses:
        plan.phrases = _phrases(text, groups)
    if corrected:
        plan.suggestion = _rewrite(text, corrected)
    return plan


def spell_groups(groups: list[str], primary: str) -> list[str]:
    """Vocabularies typo corrections come from: the query's language (English too for CJK)."""
    wanted = [primary] if primary in ("en", "nb") else [primary, "en"]
    return [g for g in wanted if g in groups] or groups[:1]


def _parts(word: str, groups: list[str], highlight: dict) -> list[str]:
    """The lexemes of one word in every group searched (CJK words only in zh and other)."""
    found = []
    for group in groups:
        if has_cjk(word) and group not in ("zh", "other"):
            continue
        for term in dict.fromkeys(terms(group, word)):
            highlight[group].add(term)
            found.append(quote(lexeme(group, term)))
    return found


def _alternative(term: str, groups: list[str], primary: str, highlight: dict) -> list[str]:
    """A synonym's pieces: a word's lexemes; a phrase's words in order (all its words for CJK)."""
    words = content_words(term, primary)
    if len(words) <= 1:
        return _parts(words[0], groups, highlight) if words else []
    if has_cjk(term):
        each = [_parts(w, groups, highlight) for w in words]
        return [" & ".join(f"({either(p)})" for p in each)] if all(each) else []
    found = []
    for group in groups:
        phrase = _phrase(term, group)
        if phrase:
            highlight[group].update(t.text for t in analyzer(group)(term))
            found.append(phrase)
    return found


def _phrases(text: str, groups: list[str]) -> list[str]:
    """A bonus piece for each "quoted phrase" (a lone quote is ignored)."""
    found = []
    for quoted in PHRASE_RE.findall(text)[:MAX_PHRASES]:
        found += [p for p in (_phrase(quoted, g) for g in groups) if p]
    return found


def _phrase(text: str, group: str) -> str:
    """A tsquery of ``text``'s terms in order, as far apart as the analyzer puts them ("" if under 2)."""
    tokens = [(t.text, t.pos) for t in analyzer(group)(text, positions=True)][:8]
    if len(tokens) < 2:
        return ""
    out = quote(lexeme(group, tokens[0][0]))
    for (_w, before), (word, pos) in zip(tokens, tokens[1:]):
        out += f" <{max(pos - before, 1)}> {quote(lexeme(group, word))}"
    return out
