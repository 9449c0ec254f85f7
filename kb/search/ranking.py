"""From Whoosh's hits to the results a customer sees: re-weighted, and the weak tail cut.

Whoosh scores each hit by BM25F over the OR of the query's words. A hit's score is then multiplied
by the weighted share of the query's words it matched (generic words weigh little, see
``kb.search.generic``), and a hit stays a result only if

- it matched at least one topical word: generic and stop words never carry a result alone;
- its share of the query's words is at least MIN_COVERAGE_SHARE of the best hit's share;
- its score is at least MIN_SCORE_SHARE of the best score.

So "how long does a refund take" lists the refund articles, not every article that says "long".
Both shares were chosen on the StackFAQ dev split (``benchmarks/eval_search.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kb.search.querying import Plan

MIN_SCORE_SHARE = 0.2
MIN_COVERAGE_SHARE = 0.4


@dataclass(frozen=True)
class Ranked:
    """One result: its final score, the share of query words it matched, and the Whoosh hit."""

    score: float
    coverage: float
    hit: Any
    corrected: bool  # it matched a word only through the "did you mean" correction


def rank(hits, plan: Plan, terms_of: dict) -> tuple[list[Ranked], float]:
    """The hits that are results, best first (ties keep Whoosh's order), and the lowest score kept.

    ``terms_of`` gives the (field, term) pairs each hit (by docnum) matched. Hits come in Whoosh's
    order, so a hit not among ``hits`` scores at most the last one's score: if that is below the
    floor, no hit left out could have been a result.
    """
    scored: list[Ranked] = []
    for hit in hits:
        matched_terms = set(terms_of.get(hit.docnum, ()))
        clauses = plan.matched(matched_terms)
        if not clauses & plan.carriers:
            continue
        coverage = plan.coverage(clauses)
        scored.append(Ranked(hit.score * coverage, coverage, hit, bool(matched_terms & plan.corrections)))
    if not scored:
        return [], float("inf")
    floor_score = MIN_SCORE_SHARE * max(r.score for r in scored)
    floor_coverage = MIN_COVERAGE_SHARE * max(r.coverage for r in scored)
    kept = [r for r in scored if r.score >= floor_score and r.coverage >= floor_coverage]
    return sorted(kept, key=lambda r: -r.score), floor_score  # stable: Whoosh's order breaks ties
