"""Related articles on PostgreSQL: kb.search.likeness's pieces, counted and read through the GIN indexes.

As on Whoosh (kb.search.service): each piece is priced by how many documents hold it (counted up to
the "too common" bound, so a common word costs at most that), the rarest are read within the
budget, and each article scores the worth of the pieces it holds. A title or tags piece is looked
for in ``search_heads`` (weight A or B); a body piece anywhere in the document, which is cheaper
than checking the body's weight and near enough. No term counts here: a piece counts as said once.
"""

from __future__ import annotations

import sqlalchemy as sa

from kb.search import likeness
from kb.search.analysis import group_for
from kb.search.postgres.documents import lexeme, quote
from kb.search.postgres.models import DOCUMENTS, HEADS

HEAD_WEIGHT = {"title": "A", "tags": "B"}


def related(connection: sa.Connection, source: likeness.Source, limit: int) -> list[int]:
    """Ids of up to ``limit`` articles most like ``source``: same language, never itself, best first."""
    group = group_for(source.lang)
    documents = _documents(connection)
    found = likeness.pieces(source, lambda words: _word_counts(connection, group, words), documents)
    if not found:
        return []
    most = int(max(likeness.COMMON_SHARE * documents, likeness.MIN_COMMON)) + 1
    queries = [_where(p, i) for i, p in enumerate(found)]
    params = {f"q{i}": _tsquery(p, group) for i, p in enumerate(found)} | {"most": most}
    counts = connection.execute(sa.text("SELECT " + ", ".join(
        f"(SELECT count(*) FROM (SELECT 1 FROM {table} d WHERE {test} LIMIT :most) s)"
        for table, test in queries)), params).one()
    chosen = likeness.chosen(zip(found, counts), documents)
    if not chosen:
        return []
    index = {p: i for i, p in enumerate(found)}
    worth = {index[p]: w for p, _n, w in chosen}
    parts = [f"(SELECT {k} AS k, d.article_id FROM {queries[k][0]} d "
             f"WHERE {queries[k][1]} AND d.lang = :lang AND d.article_id <> :exclude)" for k in worth]
    rows = connection.execute(sa.text(" UNION ALL ".join(parts)), params | {"lang": source.lang, "exclude": source.id})
    scores: dict[int, float] = {}
    for k, article_id in rows:
        scores[article_id] = scores.get(article_id, 0.0) + worth[k]
    return likeness.strong(scores, likeness.best(scores, limit))


def _where(piece: likeness.Piece, i: int) -> tuple[str, str]:
    """(table, condition) finding the documents that hold ``piece``."""
    if piece.kind in HEAD_WEIGHT:
        return HEADS, f"d.head @@ CAST(:q{i} AS tsquery)"
    return DOCUMENTS, f"d.terms @@ CAST(:q{i} AS tsquery)"


def _tsquery(piece: likeness.Piece, group: str) -> str:
    """The tsquery text of one piece (a title or tags piece only in its weight)."""
    text = quote(lexeme(group, piece.term))
    return f"{text}:{HEAD_WEIGHT[piece.kind]}" if piece.kind in HEAD_WEIGHT else text


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
