"""Whoosh's top-k search, also noting which terms each of the best hits matched.

Ranking (kb.search.ranking) needs the query words each hit matched. Whoosh's ``terms=True`` asks
every term matcher about every matching document; here only a document entering the top k is
asked, and the search keeps Whoosh's top-k shortcuts (block quality, no full sort, no count).
"""

from __future__ import annotations

from whoosh.collectors import FilterCollector, TopCollector


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


def search(searcher, query, limit: int, wanted=None, unwanted=None, others=()):
    """(Whoosh Results of the best ``limit`` hits, {docnum: matched (field, term) pairs}).

    ``others`` are (field, term) pairs left out of ``query``: each best hit's postings are checked
    for them, so they count as matched all the same.
    """
    top = TopTerms(limit=limit)
    collector = FilterCollector(top, wanted, unwanted) if wanted is not None or unwanted is not None else top
    searcher.search_with_collector(query, collector)
    results = collector.results()
    if others:
        _note(searcher.reader(), [docnum for _score, docnum in results.top_n], others, top.terms_of)
    return results, top.terms_of


def _note(reader, docnums: list[int], others, terms_of: dict) -> None:
    """Add to ``terms_of`` which of the ``others`` terms each of ``docnums`` holds, segment by segment."""
    for leaf, offset in reader.leaf_readers():
        end = offset + leaf.doc_count_all()
        local = sorted(d - offset for d in docnums if offset <= d < end)
        if not local:
            continue
        for name, text in others:
            if (name, text) not in leaf:
                continue
            postings, key = leaf.postings(name, text), (name, text.encode("utf-8"))
            for docnum in local:
                if postings.id() < docnum:
                    postings.skip_to(docnum)
                if not postings.is_active():
                    break
                if postings.id() == docnum:
                    terms_of.setdefault(docnum + offset, []).append(key)
