"""Related articles on PostgreSQL: kb.search.likeness's pieces, read through the GIN indexes.

As on Whoosh (kb.search.service), the rarest pieces are read within the budget and each article
scores the worth of the pieces it holds. Two differences keep it to two statements: a piece is
priced by how many articles use its word (``search_vocabulary``, one lookup; counting each piece
in the documents cost 2-3 ms a common piece), and a title piece is looked for in the title or tags
(``search_heads``, which has no weight check to make), so tags pieces are not read apart. A body
piece is looked for anywhere in the document. No term counts: a piece counts as said once. Words
the vocabulary does not hold (Chinese) are read last, each at most the "too common" bound.
"""

from __future__ import annotations

import sqlalchemy as sa

from kb.search import likeness
from kb.search.analysis import group_for
from kb.search.postgres.documents import lexeme, quote
from kb.search.postgres.models import DOCUMENTS, HEADS

WHERE = {"title": (HEADS, "head"), "body": (DOCUMENTS, "terms")}


def related(connection: sa.Connection, source: likeness.Source, limit: int) -> list[int]:
    """Ids of up to ``limit`` articles most like ``source``: same language, never itself, best first."""
    group = group_for(source.lang)
    documents = _documents(connection)
    found = [p for p in likeness.pieces(source, lambda words: _word_counts(connection, group, words), documents)
             if p.kind in WHERE]
    most = int(max(likeness.COMMON_SHARE * documents, likeness.MIN_COMMON))
    counts = _word_counts(connection, group, sorted({p.word for p in found}))
    chosen = likeness.chosen([(p, counts.get(p.word) or most) for p in found], documents)
    if not chosen:
        return []
    worth = [w for _p, _n, w in chosen]
    parts = [f"(SELECT {k} AS k, d.article_id FROM {WHERE[p.kind][0]} d WHERE d.{WHERE[p.kind][1]} @@ "
             f"CAST(:q{k} AS tsquery) AND d.lang = :lang AND d.article_id <> :exclude LIMIT :most)"
             for k, (p, _n, _w) in enumerate(chosen)]
    params = {f"q{k}": quote(lexeme(group, p.term)) for k, (p, _n, _w) in enumerate(chosen)}
    rows = connection.execute(sa.text(" UNION ALL ".join(parts)),
                              params | {"lang": source.lang, "exclude": source.id, "most": most})
    scores: dict[int, float] = {}
    for k, article_id in rows:
        scores[article_id] = scores.get(article_id, 0.0) + worth[k]
    return likeness.strong(scores, likeness.best(scores, limit))


def _documents(connection: sa.Connection) -> int:
    """How many documents there are, from the planner's statistics (counted when there are none yet)."""
    estimate = connection.scalar(sa.text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": DOCUMENTS})
    if estimate is None or estimate < 1:
        estimate = connection.scalar(sa.text(f"SELECT count(*) FROM {DOCUMENTS}"))
    return max(int(estimate), 1)


def _word_counts(connection: sa.Connection, group: str, words: list[str]) -> dict[str, int]:
    """How many articles of ``group`` use each word (the "Did you mean" vocabulary)."""
    rows = connection.execute(sa.text("SELECT term, docs FROM search_vocabulary WHERE grp = :g AND term = ANY(:w)"),
                              {"g": group, "w": words})
    return dict(rows.all())
