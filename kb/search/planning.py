"""Query planning: the Whoosh query a plan runs, lean enough to be fast, with the same results.

Whoosh walks every posting of every term it is asked for, in pure Python, so the cost of a search
is the sum of its terms' posting lists. Two things keep that sum small:

- terms the index does not hold are left out (a word expands to each language group's title,
  tags, body and examples fields; most of them are empty in a one-language help centre). This
  changes no result and no score.
- a long question's common words stop choosing candidates: the rarest topical words (up to
  SEARCH_BUDGET postings, at least MIN_CHOOSERS words) choose and score the hits. The other words
  are looked up in the postings of the best hits only (kb.search.topk), so they still count in the
  share of words matched (kb.search.ranking). A hit that matches none of the rare words and only
  common ones is no longer found: it could only have been a weak one. Measured at 10,000 articles
  after 20 publishes: scoring the common words too (AndMaybe) made sentences 2.5x slower.
"""

from __future__ import annotations

from typing import NamedTuple

from whoosh.query import Or, Query, Term

from kb.search.lexicon import doc_frequency

# Postings the choosing words may walk; and from how many clauses a question counts as long.
SEARCH_BUDGET = 2500
MIN_CHOOSERS = 3
LONG_QUESTION = 4


class Planned(NamedTuple):
    """The query to run, a floor for how many documents match it, and the terms it leaves out."""

    query: Query | None
    min_matches: int  # the document count of its commonest choosing term
    others: list[tuple[str, str]]  # (field, term) of the words that do not choose: checked on the best hits


def lean(query: Query, reader) -> tuple[Query | None, int]:
    """``query`` without the terms no document holds (None if nothing is left), and its postings."""
    if isinstance(query, Term):
        frequency = doc_frequency(reader, query.fieldname, query.text)
        return (query, frequency) if frequency else (None, 0)
    if isinstance(query, Or):
        kept, cost = [], 0
        for sub in query.subqueries:
            sub, sub_cost = lean(sub, reader)
            if sub is not None:
                kept.append(sub)
                cost += sub_cost
        if not kept:
            return None, 0
        return (kept[0] if len(kept) == 1 else Or(kept, boost=query.boost)), cost
    # Phrases and synonym phrases: rare, and dropping one would change scores; priced by their terms.
    return query, sum(doc_frequency(reader, name, text) for name, text in query.iter_all_terms())


def plan_query(clauses: list[Query], carriers: set[int], bonuses: list[Query], reader) -> Planned:
    """The query to run for the word ``clauses`` (``carriers``: topical ones) and phrase ``bonuses``."""
    live = []
    for k, clause in enumerate(clauses):
        clause, cost = lean(clause, reader)
        if clause is not None:
            live.append((k not in carriers, cost, k, clause))
    bonus = [q for q in (lean(b, reader)[0] for b in bonuses) if q is not None]
    if not live:
        return Planned(None, 0, [])
    if len(live) < LONG_QUESTION or sum(cost for _g, cost, _k, _c in live) <= SEARCH_BUDGET:
        clauses = [clause for *_rest, clause in live]
        return Planned(_or(clauses + bonus), max(_largest(c, reader) for c in clauses), [])
    live.sort(key=lambda item: item[:3])  # topical before generic, then rarest first
    choosers, spent = [], 0
    for generic, cost, _k, clause in live:
        if len(choosers) >= MIN_CHOOSERS and (generic or spent + cost > SEARCH_BUDGET):
            break
        choosers.append(clause)
        spent += cost
    others = [(name, text) for *_rest, clause in live[len(choosers):] for name, text in clause.iter_all_terms()]
    return Planned(_or(choosers + bonus), max(_largest(c, reader) for c in choosers), others)


def _or(queries: list[Query]) -> Query:
    """One query for a list of them."""
    return queries[0] if len(queries) == 1 else Or(queries)


def _largest(query: Query, reader) -> int:
    """The document frequency of the query's most frequent term."""
    return max((doc_frequency(reader, name, text) for name, text in query.iter_all_terms()), default=0)
