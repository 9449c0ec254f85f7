"""One top-k search, also noting which terms each of the best hits matched.

Ranking (kb.search.ranking) needs the query words each hit matched. A plain OR of terms (nearly
every query) is scored a term at a time (kb.search.termwise), which knows each hit's terms; any
other query goes through Whoosh, whose ``terms=True`` would ask every term matcher about every
matching document: here only a document entering the top k is asked, and the search keeps Whoosh's
top-k shortcuts (block quality, no full sort, no count).
"""

from __future__ import annotations

import numpy as np
from whoosh.collectors import FilterCollector, TopCollector

from kb.search import termwise
from kb.search.lexicon import segment_frequency


class Hit:
    """One of the best hits: its score, document number and (read when asked) stored fields."""

    __slots__ = ("score", "docnum", "_reader", "_fields")

    def __init__(self, reader, score: float, docnum: int):
        self._reader, self.score, self.docnum, self._fields = reader, score, docnum, None

    def fields(self) -> dict:
        """The hit's stored fields."""
        if self._fields is None:
            self._fields = self._reader.stored_fields(self.docnum)
        return self._fields

    def __getitem__(self, name: str):
        return self.fields()[name]

    def get(self, name: str, default=None):
        """A stored field, or ``default``."""
        return self.fields().get(name, default)


class TopTerms(TopCollector):
    """The top ``limit`` hits, with the (field, term) pairs each of them matched in ``terms_of``."""

    def prepare(self, top_searcher, q, context):
        """Start a search: no terms noted yet."""
        super().prepare(top_searcher, q, context.set(needs_current=True))
        self.terms_of: dict[int, list] = {}
        self._tree = self._leaves = None

    def _collect(self, global_docnum, score):
        """Keep the hit if it makes the top k, and then note the terms it matched."""
        items = self.items
        if len(items) >= self.limit and score <= items[0][0]:
            return 0
        if self._tree is not self.matcher:  # Whoosh replaces the matcher tree as the search narrows
            self._tree, self._leaves = self.matcher, list(self.matcher.term_matchers())
        docnum = global_docnum - self.offset
        self.terms_of[global_docnum] = [leaf.term() for leaf in self._leaves
                                        if leaf.is_active() and leaf.id() == docnum]
        return super()._collect(global_docnum, score)


def search(searcher, query, limit: int, wanted=None, unwanted=None, others=()) -> tuple[list[Hit], dict]:
    """(the best ``limit`` hits, best first, {docnum: matched (field, term) pairs}).

    ``others`` are (field, term) pairs left out of ``query``: each best hit's postings are checked
    for them, so they count as matched all the same.
    """
    found = termwise.search(searcher, query, limit, wanted, unwanted)
    top, terms_of = found if found is not None else _whoosh(searcher, query, limit, wanted, unwanted)
    reader = searcher.reader()
    if others:
        _note(reader, [docnum for _score, docnum in top], others, terms_of)
    return [Hit(reader, score, docnum) for score, docnum in top], terms_of


def _whoosh(searcher, query, limit: int, wanted, unwanted) -> tuple[list[tuple[float, int]], dict]:
    """Whoosh's own top-k search of ``query``, for queries ``termwise`` does not score."""
    top = TopTerms(limit=limit)
    collector = FilterCollector(top, wanted, unwanted) if wanted is not None or unwanted is not None else top
    searcher.search_with_collector(query, collector)
    return list(collector.results().top_n), top.terms_of


def _note(reader, docnums: list[int], others, terms_of: dict) -> None:
    """Add to ``terms_of`` which of the ``others`` terms each of ``docnums`` holds, segment by segment."""
    chosen = np.sort(np.asarray(docnums, dtype=np.int64))
    keys = [(name, text, text.encode("utf-8")) for name, text in others]
    for leaf, offset in reader.leaf_readers():
        local = chosen[(chosen >= offset) & (chosen < offset + leaf.doc_count_all())] - offset
        if not len(local):
            continue
        for name, text, btext in keys:
            if segment_frequency(leaf, name, text):
                for docnum in termwise.holding(termwise.postings(leaf, name, btext)[0], local):
                    terms_of.setdefault(docnum + offset, []).append((name, btext))
