"""Running a plan (kb.search.postgres.planner) on ``search_documents``: candidates, ranking, the cut.

As on Whoosh (kb.search.service and kb.search.ranking): the GIN index finds the articles that
match a topical word; SQL ranks them (ts_rank, title above tags above body, other languages
lower) and fetches the best RERANK; those get the weighted share of the query's words they
matched, the score is multiplied by it, and the weak tail is cut. More are fetched, up to
MAX_RANKED, while the last one fetched could still be a result.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from kb.search.backend import Asked
from kb.search.postgres.planner import PgPlan, either
from kb.search.querying import GENERIC_WEIGHT, OTHER_LANGUAGE_WEIGHT, SYNONYM_WEIGHT, TYPO_WEIGHT
from kb.search.ranking import MIN_COVERAGE_SHARE, MIN_SCORE_SHARE

RERANK = 100  # as kb.search.service (not imported: that would load the Whoosh backend)
MAX_RANKED = 3200

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


def ranked(connection: sa.Connection, plan: PgPlan, asked: Asked, primary: str) -> list[Ranked]:
    """Every result, best first (ties by article id), fetching more while one left out could be a result."""
    sql, params = _statement(plan, asked, primary)
    limit = max(RERANK, asked.page * asked.per_page)
    while True:
        rows = connection.execute(sql, dict(params, limit=limit)).all()
        results, floor = _rank(rows, plan)
        if len(rows) < limit or limit >= MAX_RANKED or rows[-1].base < floor:
            return results
        limit = min(limit * 4, MAX_RANKED)


def _statement(plan: PgPlan, asked: Asked, primary: str):
    """The candidate query: the best ``:limit`` by base score, with the clauses each matched."""
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
    where = ["d.terms @@ CAST(:carriers AS tsquery)"]
    if asked.lang:
        where.append("d.lang = :lang")
        params["lang"] = asked.lang
    if asked.category:
        where.append("d.category = :category")
        params["category"] = asked.category
    if asked.exclude is not None:
        where.append("d.article_id <> :exclude")
        params["exclude"] = asked.exclude
    base = f"(CASE WHEN d.grp = :primary THEN 1.0 ELSE :other END) * ({' + '.join(parts)})"
    sql = sa.text(
        f"SELECT c.article_id, c.grp, c.base, ARRAY[{', '.join(matched)}] AS matched, {corrected} AS corrected "
        f"FROM (SELECT d.article_id, d.grp, {base} AS base FROM search_documents d WHERE {' AND '.join(where)} "
        f"ORDER BY base DESC, d.article_id LIMIT :limit) c JOIN search_documents d ON d.article_id = c.article_id "
        f"ORDER BY c.base DESC, c.article_id")
    return sql, params


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
