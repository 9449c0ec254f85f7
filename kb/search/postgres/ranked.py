"""Running a plan (kb.search.postgres.planner) on ``search_documents``: candidates, ranking, the cut.

As on Whoosh (kb.search.service and kb.search.ranking): SQL ranks the candidates (ts_rank, title
above tags above body, other languages lower) and fetches the best RERANK; those get the weighted
share of the query's words they matched, the score is multiplied by it, and the weak tail is cut.

A word that half the articles contain must not make every article a candidate: ts_rank reads each
candidate's whole tsvector, which at 100,000 articles took seconds. So the candidates are bounded,
each part found through a GIN index and cut at CANDIDATES: the articles whose title or tags hold a
query word (best title match first, from the narrow ``search_heads`` table), those holding every
topical word, and then any that hold one. Below CANDIDATES matches that is every match, exactly as
before; above it the rest are the least likely to rank (a word only in the body, of a query that
has better matches), and ``total`` becomes an estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from kb.search.backend import Asked
from kb.search.postgres.models import DOCUMENTS, HEADS
from kb.search.postgres.planner import PgPlan, either
from kb.search.querying import GENERIC_WEIGHT, OTHER_LANGUAGE_WEIGHT, SYNONYM_WEIGHT, TYPO_WEIGHT
from kb.search.ranking import MIN_COVERAGE_SHARE, MIN_SCORE_SHARE

RERANK = 100  # as kb.search.service (not imported: that would load the Whoosh backend)
CANDIDATES = 1000  # per part (title and tags, every word, any word): at most three times this are ranked

# ts_rank's weights for D, C, B, A: example questions, body, tags, title. Lower for the body than
# kb.search.querying.KIND_BOOST's ratios: ts_rank has no per-field length normalisation, which in
# Whoosh's BM25F makes a word in a short title worth far more than one in a long body.
WEIGHTS = "{0.1,0.25,0.5,1}"
NORMALIZATION = 1  # divide by 1 + log(document length): long articles mentioning a word once weigh less


@dataclass(frozen=True)
class Ranked:
    """One result: its article, group, final score, share of words matched, and if only a correction matched."""

    article_id: int
    grp: str
    score: float
    coverage: float
    corrected: bool


def ranked(connection: sa.Connection, plan: PgPlan, asked: Asked, primary: str) -> tuple[list[Ranked], int]:
    """The results of a page's reach, best first (ties by article id), and how many there are (estimated if many)."""
    sql, params = _statement(plan, asked, primary)
    limit = max(RERANK, asked.page * asked.per_page)
    rows = connection.execute(sql, dict(params, limit=limit, candidates=CANDIDATES)).all()
    results, floor = _rank(rows, plan)
    if len(rows) < limit or rows[-1].base < floor:
        return results, len(results)  # every candidate left out scores below the cut: the count is exact
    # The rest of the candidates were not checked: assume they are kept as often as the ones fetched.
    return results, max(len(results), round(len(results) / len(rows) * rows[0].candidates))


def _statement(plan: PgPlan, asked: Asked, primary: str):
    """The ranking query: the best ``:limit`` of the bounded candidates by base score, with the clauses each matched."""
    params = {"weights": WEIGHTS, "primary": primary, "other": OTHER_LANGUAGE_WEIGHT,
              "carriers": either([p for c in plan.carriers for p in c.pieces])}
    parts = []
    for name, weight, pieces in (
            ("own", 1.0, [p for c in plan.clauses if c.weight == 1.0 for p in c.own]),
            ("generic", GENERIC_WEIGHT, [p for c in plan.clauses if c.weight != 1.0 for p in c.own]),
            ("typos", TYPO_WEIGHT, [p for c in plan.clauses for p in c.typos]),
            ("synonyms", SYNONYM_WEIGHT, [p for c in plan.clauses for p in c.synonyms]),
            ("phrases", 1.0, plan.phrases)):
        if pieces:
            params[f"q_{name}"] = either(pieces)
            rank = f"ts_rank(CAST(:weights AS real[]), d.terms, CAST(:q_{name} AS tsquery), {NORMALIZATION})"
            if name == "phrases":  # ts_rank scores a phrase's words wherever they are: only where @@ finds it
                rank = f"CASE WHEN d.terms @@ CAST(:q_{name} AS tsquery) THEN {rank} ELSE 0 END"
            parts.append(f"{weight} * {rank}")
    matched = []
    for i, clause in enumerate(plan.clauses):
        params[f"c{i}"] = either(clause.pieces)
        matched.append(f"d.terms @@ CAST(:c{i} AS tsquery)")
    params["corr"] = either(plan.corrections) if plan.corrections else ""
    corrected = "d.terms @@ CAST(:corr AS tsquery)" if plan.corrections else "false"
    base = f"(CASE WHEN d.grp = :primary THEN 1.0 ELSE :other END) * ({' + '.join(parts)})"
    sql = sa.text(
        f"SELECT c.article_id, c.grp, c.base, c.candidates, ARRAY[{', '.join(matched)}] AS matched, "
        f"{corrected} AS corrected FROM (SELECT d.article_id, d.grp, {base} AS base, count(*) OVER () AS candidates "
        f"FROM search_documents d WHERE d.article_id IN ({_candidates(plan, asked, params)}) "
        f"ORDER BY base DESC, d.article_id LIMIT :limit) c JOIN search_documents d ON d.article_id = c.article_id "
        f"ORDER BY c.base DESC, c.article_id")
    return sql, params


def _candidates(plan: PgPlan, asked: Asked, params: dict) -> str:
    """The candidate ids, best kinds first: every word in the title or tags, one there, every word anywhere, one."""
    where = []
    for name in ("lang", "category"):
        if getattr(asked, name):
            where.append(f"d.{name} = :{name}")
            params[name] = getattr(asked, name)
    if asked.exclude is not None:
        where.append("d.article_id <> :exclude")
        params["exclude"] = asked.exclude
    keep = "".join(f" AND {w}" for w in where)

    def part(table: str, column: str, query: str, order: str = "") -> str:
        return (f"(SELECT d.article_id FROM {table} d WHERE d.{column} @@ CAST(:{query} AS tsquery){keep}"
                f"{order} LIMIT :candidates)")

    best_head = (f" ORDER BY ts_rank(CAST(:weights AS real[]), d.head, CAST(:carriers AS tsquery), {NORMALIZATION})"
                 " DESC, d.article_id")
    every = len(plan.carriers) > 1
    if every:
        params["every"] = " & ".join(f"({either(c.pieces)})" for c in plan.carriers)
    found = ([part(HEADS, "head", "every")] if every else []) + [part(HEADS, "head", "carriers", best_head)]
    found += ([part(DOCUMENTS, "terms", "every")] if every else []) + [part(DOCUMENTS, "terms", "carriers")]
    # UNION ALL runs its parts in turn and stops at the LIMIT: when the better kinds fill it, the
    # common words' long lists are never read. IN drops the duplicates.
    return " UNION ALL ".join(found) + " LIMIT :candidates"


def _rank(rows, plan: PgPlan) -> tuple[list[Ranked], float]:
    """kb.search.ranking.rank on the candidate rows: the results, and the lowest score kept."""
    total = sum(c.weight for c in plan.clauses)
    scored = []
    for row in rows:
        hit = [c for c, m in zip(plan.clauses, row.matched) if m]
        if not any(c.weight == 1.0 for c in hit):
            continue
        coverage = sum(c.weight for c in hit) / total if total else 1.0
        scored.append(Ranked(row.article_id, row.grp, float(row.base) * coverage, coverage, bool(row.corrected)))
    if not scored:
        return [], float("inf")
    floor_score = MIN_SCORE_SHARE * max(r.score for r in scored)
    floor_coverage = MIN_COVERAGE_SHARE * max(r.coverage for r in scored)
    kept = [r for r in scored if r.score >= floor_score and r.coverage >= floor_coverage]
    return sorted(kept, key=lambda r: -r.score), floor_score
