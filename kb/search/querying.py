"""From what a customer typed to a Whoosh query, built programmatically (never QueryParser).

Every word becomes a clause: its analysed term in title (x3), tags (x2), body (x1) and example
questions (x0.5) of each
language group searched. Clauses are OR-ed, so no word is required; ``kb.search.ranking`` then
weighs each hit by the share of query words it matched and cuts the weak tail. Stop words are left
out, and generic words ("long", "take": see ``kb.search.generic``) weigh little. Unknown words
also look for their nearest words in the index vocabulary (typo tolerance), which also gives the
"Did you mean" text. A "quoted phrase" adds a bonus for its words in order; a lone quote, like
every other operator, is just text. Synonym sets (``kb.search.synonyms``) add their other terms to
the clauses of the words they cover, at SYNONYM_WEIGHT, a phrase as a phrase query.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field as dc_field
from typing import Iterator

from whoosh.query import And, Or, Query, Term
from whoosh.query.spans import SpanNear2

from kb.search import spelling
from kb.search.analysis import CJK, SPELL_WORD, analyzer, has_cjk, segment, terms
from kb.search.generic import is_generic, is_stop
from kb.search.lexicon import doc_frequency
from kb.search.planning import plan_query
from kb.search.schema import field

# Example questions (other customers' wordings) help without outweighing the article's own text.
KIND_BOOST = {"title": 3.0, "tags": 2.0, "body": 1.0, "examples": 0.5}
OTHER_LANGUAGE_WEIGHT = 0.6
TYPO_WEIGHT = 0.4
# Weight (in the query and in the share of words matched) of a word that only carries the
# question's form ("long", "take", "possible"); chosen on the StackFAQ dev split.
GENERIC_WEIGHT = 0.3
# Weight of a synonym's terms (kb.search.synonyms) against the customer's own word: an article
# using the customer's word ranks first, one using only a synonym still matches the clause. Not
# tuned: the default sets touch 19 of StackFAQ's 608 dev queries, and dev ranks alike with them.
SYNONYM_WEIGHT = 0.5
MAX_WORDS = 24
MAX_TYPO_WORDS = 6
PHRASE_RE = re.compile(r'"([^"]+)"')
MAX_PHRASES = 3
WORD_RE = re.compile(rf"[{CJK}]+|{SPELL_WORD}")
EN_HINTS = frozenset("""the a an how do does did i my me is are was to what when where why can could you your
of and in on for it with not get got have has will would should about from this that order""".split())
NB_HINTS = frozenset("""jeg hvordan hva hvor hvorfor når kan er var det og på til ikke min mitt mine meg du deg
har med av som å få ble blir skal vil jeg en et ei den dette bestilling pakke""".split())


def clean_query(text: str, max_length: int) -> str:
    """Drop control and invisible characters, collapse whitespace, cut to ``max_length``."""
    text = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in str(text or "")[: max_length * 2])
    return " ".join(text.split())[:max_length].strip()


def detect_language(text: str, default: str) -> str:
    """zh if any CJK character; else a stop-word vote between en and nb; else ``default``."""
    if has_cjk(text):
        return "zh"
    words = [w.lower() for w in WORD_RE.findall(text)]
    en = sum(w in EN_HINTS for w in words)
    nb = sum(w in NB_HINTS for w in words) + 2 * sum(ch in "æøå" for ch in text.lower())
    if en > nb:
        return "en"
    if nb > en:
        return "nb"
    return default


def query_words(text: str) -> Iterator[str]:
    """The distinct lowercased words of the query, in order; CJK runs segmented with jieba."""
    seen: set[str] = set()
    for match in WORD_RE.finditer(text):
        chunk = match.group().lower()
        for word in (segment(chunk) if has_cjk(chunk) else [chunk]):
            if word not in seen:
                seen.add(word)
                yield word


def content_words(text: str, primary: str) -> list[str]:
    """The first MAX_WORDS query words worth searching for: stop words of the query's language left out."""
    kept = []
    for word in query_words(text):
        if is_stop(word) or (primary in ("en", "nb") and not has_cjk(word) and not terms(primary, word)):
            continue  # "how", "do", "my", "的": no evidence of what the customer is after
        kept.append(word)
        if len(kept) == MAX_WORDS:
            break
    return kept


@dataclass
class Plan:
    """A built query, the terms to highlight per language group, and the "did you mean" text.

    Each query word is a clause with a weight: 1 for a topical word, GENERIC_WEIGHT for a word that
    only carries the question's form. Only topical words (``carriers``) can make a hit a result.
    """

    query: Query | None
    highlight: dict[str, set[str]] = dc_field(default_factory=dict)
    suggestion: str | None = None
    word_of: dict[tuple[str, bytes], set[int]] = dc_field(default_factory=dict)
    weights: list[float] = dc_field(default_factory=list)
    carriers: set[int] = dc_field(default_factory=set)
    corrections: set[tuple[str, bytes]] = dc_field(default_factory=set)  # terms of the suggested words
    min_matches: int = 0  # at least this many documents match (the most frequent choosing term's count)
    others: list[tuple[str, str]] = dc_field(default_factory=list)  # terms left out of the query (planning)

    def matched(self, matched_terms) -> set[int]:
        """The clauses (query words) a hit matched, from Whoosh's matched (field, term) pairs."""
        found: set[int] = set()
        for key in matched_terms:
            found |= self.word_of.get(key, set())
        return found

    def coverage(self, clauses: set[int]) -> float:
        """The weighted share of the query's words among ``clauses`` (classic "coord", weighted)."""
        total = sum(self.weights)
        return sum(self.weights[c] for c in clauses) / total if total else 1.0


def build(reader, text: str, groups: list[str], primary: str, synonyms=None) -> Plan:
    """Plan the search of ``text`` over ``groups``; ``primary`` is the query's language group.

    ``synonyms`` (a ``kb.search.synonyms.SearchSynonyms``) gives words their alternatives.
    """
    vocabularies = spell_fields(groups, primary)
    # Only the groups some article is in: the others' terms can match nothing.
    groups = [g for g in groups if reader.field_length(field("title", g))] or groups
    plan = Plan(None, {g: set() for g in groups})
    clauses, corrected, typo_budget = [], {}, MAX_TYPO_WORDS
    words = content_words(text, primary)
    alternatives = synonyms.alternatives(text, words, groups) if synonyms else {}
    topical = any(not is_generic(w) for w in words)
    for word in words:
        weight = GENERIC_WEIGHT if topical and is_generic(word) else 1.0
        parts = _parts(word, groups, primary, weight, plan.highlight)
        if not parts:
            continue
        extra = alternatives.get(word, [])
        # A word with synonyms is a word agents know: no "Did you mean" for it.
        if typo_budget and weight == 1.0 and not extra and _needs_correction(reader, word, parts, groups):
            typo_budget -= 1
            fixes = corrections(reader, word, vocabularies)
            if fixes and _confident(word, *fixes[0]):
                corrected[word] = fixes[0][0]
            for rank, (fix, _distance) in enumerate(fixes):
                fixed = _parts(fix, groups, primary, weight * TYPO_WEIGHT / (rank + 1), plan.highlight)
                if corrected.get(word) == fix:
                    plan.corrections |= {(p.fieldname, p.text.encode("utf-8")) for p in fixed}
                parts += fixed
        for alternative in extra:
            parts += _alternative(alternative, groups, primary, weight * SYNONYM_WEIGHT, plan.highlight)
        for part in parts:
            for fieldname, term in part.iter_all_terms():
                key = (fieldname, term.encode("utf-8") if isinstance(term, str) else term)
                plan.word_of.setdefault(key, set()).add(len(clauses))
        if weight == 1.0:
            plan.carriers.add(len(clauses))
        plan.weights.append(weight)
        clauses.append(Or(parts) if len(parts) > 1 else parts[0])
    bonuses = _phrases(text, groups, primary) if clauses else []
    plan.query, plan.min_matches, plan.others = plan_query(clauses, plan.carriers, bonuses, reader)
    if corrected:
        plan.suggestion = _rewrite(text, corrected)
    return plan


def _phrases(text: str, groups: list[str], primary: str) -> list[Query]:
    """A bonus for each "quoted phrase" found with its words in order (a lone quote is ignored)."""
    bonuses: list[Query] = []
    for quoted in PHRASE_RE.findall(text)[:MAX_PHRASES]:
        for group in groups:
            tokens = [(t.text, t.pos) for t in analyzer(group)(quoted, positions=True)][:8]
            if len(tokens) < 2:
                continue
            # Stop words leave gaps in positions (the index has the same gaps): allow exactly those.
            slop = max(b[1] - a[1] for a, b in zip(tokens, tokens[1:]))
            for kind in ("title", "body"):
                bonuses.append(SpanNear2([Term(field(kind, group), word) for word, _pos in tokens],
                                         slop=max(slop, 1), ordered=True))
    return bonuses


def spell_fields(groups: list[str], primary: str) -> list[str]:
    """Vocabularies that typo corrections come from: the query's language (English for CJK)."""
    wanted = [primary] if primary in ("en", "nb") else [primary, "en"]
    return [field("spell", g) for g in wanted if g in groups] or [field("spell", groups[0])]


def _parts(word: str, groups: list[str], primary: str, weight: float, highlight: dict) -> list[Query]:
    """Term queries for one word in title/tags/body of every group searched."""
    parts: list[Query] = []
    cjk = has_cjk(word)
    for group in groups:
        if cjk and group not in ("zh", "other"):
            continue
        group_weight = weight * (1.0 if group == primary else OTHER_LANGUAGE_WEIGHT)
        for term in dict.fromkeys(terms(group, word)):
            highlight[group].add(term)
            for kind, boost in KIND_BOOST.items():
                parts.append(Term(field(kind, group), term, boost=boost * group_weight))
    return parts


def _alternative(term: str, groups: list[str], primary: str, weight: float, highlight: dict) -> list[Query]:
    """A synonym's queries: a word's term queries; a phrase's words in order (all words for CJK)."""
    words = content_words(term, primary)  # a phrase of one content word ("sign in") is that word
    if len(words) <= 1:
        return _parts(words[0], groups, primary, weight, highlight) if words else []
    if has_cjk(term):
        each = [_parts(w, groups, primary, weight, highlight) for w in words]
        return [And([Or(p) if len(p) > 1 else p[0] for p in each if p])] if all(each) else []
    found: list[Query] = []
    for group in groups:
        tokens = [(t.text, t.pos) for t in analyzer(group)(term, positions=True)][:8]
        if len(tokens) < 2:
            continue
        highlight[group].update(word for word, _pos in tokens)
        boost = weight * (1.0 if group == primary else OTHER_LANGUAGE_WEIGHT)
        slop = max(max(b[1] - a[1] for a, b in zip(tokens, tokens[1:])), 1)
        for kind in ("title", "body"):  # tags keep no positions
            found.append(SpanNear2([Term(field(kind, group), word, boost=KIND_BOOST[kind] * boost)
                                    for word, _pos in tokens], slop=slop, ordered=True))
    return found


def _needs_correction(reader, word: str, parts: list[Query], groups: list[str]) -> bool:
    """A Latin word of 4+ letters that the index knows in no form and no language."""
    if len(word) < 4 or has_cjk(word) or any(ch.isdigit() for ch in word):
        return False
    if any(doc_frequency(reader, field("spell", g), word) for g in groups):
        return False
    return not any(doc_frequency(reader, p.fieldname, p.text) for p in parts)


def corrections(reader, word: str, fields: list[str], limit: int = 3) -> list[tuple[str, int]]:
    """(word, distance) of the vocabulary words nearest to ``word``: distance 1, else 2 for 5+ letters."""
    found: dict[str, int] = {}
    for distance in (1, 2) if len(word) >= 5 else (1,):
        near: dict[str, int] = {}
        for name in fields:
            # Distance 2 keeps the first letter: far cheaper, and first letters are rarely mistyped.
            for candidate in terms_within(reader, name, word, distance, distance - 1):
                if candidate != word and candidate not in found:
                    near[candidate] = near.get(candidate, 0) + doc_frequency(reader, name, candidate)
        for candidate in sorted(near, key=lambda w: (-near[w], w)):
            found[candidate] = distance
        if found:  # distance 2 (3x slower) only when no word is one edit away
            break
    return list(found.items())[:limit]


def terms_within(reader, fieldname: str, word: str, distance: int, prefix: int) -> set[str]:
    """The vocabulary words within ``distance`` edits of ``word`` (sharing ``prefix`` letters), segment by segment.

    Distance 1: ``word``'s one-edit variants looked up in each segment's vocabulary set, made once
    per segment (segments never change) and kept in ``spelling``. Distance 2: the segment's word
    list walked with a Levenshtein automaton. Never the MultiReader's own ``terms_within``, which
    scans the whole vocabulary in Python (15 ms became 414 ms at 10,000 articles after 20 publishes).
    """
    found: set[str] = set()
    for leaf, _offset in reader.leaf_readers():
        if fieldname not in leaf.indexed_field_names():
            continue
        if distance == 1:
            vocabulary, alphabet = spelling.vocabulary(leaf, fieldname)
            found.update(c for c in spelling.edits(word, alphabet) if c in vocabulary and c[:prefix] == word[:prefix])
        else:
            found.update(leaf.terms_within(fieldname, word, distance, prefix=prefix))
    return {term for term in found if doc_frequency(reader, fieldname, term)}  # not only in deleted documents


def _confident(word: str, fix: str, distance: int) -> bool:
    """Whether a correction is worth a "Did you mean": a real typo, not another word form."""
    if fix.startswith(word) or word.startswith(fix):
        return False  # "broke"/"broken", "hasnt"/"hasn": inflections and fragments, not typos
    return distance == 1 or len(word) >= 7


def _rewrite(text: str, corrected: dict[str, str]) -> str:
    """The query text with each misspelt word replaced by its best correction."""
    return WORD_RE.sub(lambda m: corrected.get(m.group().lower(), m.group()), text)
