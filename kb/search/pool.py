"""A compact in-memory posting buffer for full rebuilds, in place of Whoosh's sorting pool.

Whoosh's ``PostingPool`` keeps every posting as a tuple of five Python objects (about 220 bytes),
sorts them all at commit, and pickles sorted runs out to disk and back whenever its limit is
reached: at 10,000 articles that was half the rebuild. Here postings are grouped by term as
they arrive, in arrays (about 25 bytes a posting); documents come in number order, so each term's
postings are already sorted and only the terms are sorted at the end. The builder starts a new
segment when the buffer is full instead of spilling to disk.
"""

from __future__ import annotations

import copy
from array import array

from whoosh.writing import SegmentWriter

from kb.search.analysis import fast_index

TERM_BYTES = 400  # rough cost of a new term: its key, four arrays and the dictionary's slot
POSTING_BYTES = 20  # rough cost of a posting besides its value bytes


class TermPool:
    """Postings grouped by (field, term), each term's documents in order; what SegmentWriter's pool does."""

    def __init__(self, limitmb: float):
        self.terms: dict[tuple[str, bytes], tuple[array, array, bytearray, array]] = {}
        self.fieldnames: set[str] = set()
        self.limit = limitmb * 1024 * 1024
        self.size = 0

    def add(self, item) -> None:
        """Add one (fieldname, term bytes, docnum, weight, value bytes) posting."""
        fieldname, tbytes, docnum, weight, vbytes = item
        key = (fieldname, tbytes)
        entry = self.terms.get(key)
        if entry is None:
            entry = self.terms[key] = (array("I"), array("d"), bytearray(), array("I"))
            self.fieldnames.add(fieldname)
            self.size += TERM_BYTES
        docnums, weights, values, ends = entry
        docnums.append(docnum)
        weights.append(weight)
        if vbytes:
            values += vbytes
        ends.append(len(values))
        self.size += POSTING_BYTES + len(vbytes or b"")

    def full(self) -> bool:
        """Whether the buffer has reached its limit (the builder then starts another segment)."""
        return self.size >= self.limit

    def merge(self, terms: dict, base: int) -> None:
        """Add another pool's terms, whose documents follow this one's from number ``base`` on."""
        for key, (docnums, weights, values, ends) in terms.items():
            entry = self.terms.get(key)
            if entry is None:
                entry = self.terms[key] = (array("I"), array("d"), bytearray(), array("I"))
                self.fieldnames.add(key[0])
            offset = len(entry[2])
            entry[0].extend(docnum + base for docnum in docnums)
            entry[1].extend(weights)
            entry[2].extend(values)
            entry[3].extend(end + offset for end in ends)

    def iter_postings(self):
        """Every posting in (fieldname, term, docnum) order, as Whoosh's field writer takes them."""
        terms, self.terms = self.terms, {}  # let go of each term's arrays once written
        for key in sorted(terms):
            fieldname, tbytes = key
            docnums, weights, values, ends = terms.pop(key)
            view, start = memoryview(values), 0
            for docnum, weight, end in zip(docnums, weights, ends):
                yield fieldname, tbytes, docnum, weight, bytes(view[start:end])
                start = end

    def cleanup(self) -> None:
        """Drop what is left (nothing is ever on disk)."""
        self.terms = {}


class RebuildWriter(SegmentWriter):
    """A writer of one new segment with a TermPool; it takes no lock (the rebuild holds it)."""

    def __init__(self, ix, limitmb: float):
        super().__init__(ix, _lk=False)
        self.pool = TermPool(limitmb)
        self.schema = _fast_schema(self.schema)

    def _flush_segment(self):
        """Write the postings, each document's field lengths read once per field, not once per posting."""
        self.perdocwriter.close()
        pdr = self.per_document_reader() if self.codec.length_stats else None
        try:
            self.fieldwriter.add_postings(self.schema, _Lengths(pdr) if pdr else None, self.pool.iter_postings())
        finally:
            self.fieldwriter.close()
            if pdr:
                pdr.close()


def _fast_schema(schema):
    """A copy of ``schema`` whose fields analyse with kb.search.analysis.fast_index where it applies."""
    fast = copy.copy(schema)
    fast._fields = dict(schema._fields)
    for name, field in schema._fields.items():
        index = fast_index(field)
        if index is not None:
            fast._fields[name] = copy.copy(field)
            fast._fields[name].index = index
    return fast


class _Lengths:
    """The segment's field lengths for the field writer, each field's read in full on first use."""

    def __init__(self, pdr):
        self.pdr = pdr

    def doc_field_length_reader(self, fieldname, default=0):
        """``length(docnum)`` of one field: the stored (rounded) lengths, as the per-document reader gives them."""
        get = self.pdr.doc_field_length_reader(fieldname, default)
        return [get(docnum) for docnum in range(self.pdr.doc_count_all())].__getitem__


class SegmentBuilder:
    """Writes documents, in order, into as many new segments as the buffer limit needs (one, usually)."""

    def __init__(self, ix, limitmb: float):
        self.ix, self.limitmb = ix, limitmb
        self.writer: RebuildWriter | None = None
        self.segments: list = []

    def add(self, docs) -> None:
        """Index a batch of documents; a full buffer is written out as a segment after it."""
        for doc in docs:
            if self.writer is None:
                self.writer = RebuildWriter(self.ix, self.limitmb)
            self.writer.add_document(**doc)
        if self.writer is not None and self.writer.pool.full():
            self._close()

    def finish(self, parts: list | None = None) -> list:
        """Write out the last segment, with the ``parts`` of other builders after its own documents.

        Returns every segment made, in document order.
        """
        for segment, terms in parts or []:
            if self.writer is None:
                self.writer = RebuildWriter(self.ix, self.limitmb)
            writer, codec = self.writer, self.writer.codec
            reader = codec.per_document_reader(self.ix.storage, segment)
            totals = writer.perdocwriter._fieldlengths
            before = dict(totals)
            try:
                base = writer.docnum
                writer.write_per_doc(set(writer.schema.names()), reader)  # stored fields and lengths, as written
            finally:
                reader.close()
            # write_per_doc adds up the lengths as stored (rounded to a byte); BM25F's average field
            # lengths need the exact totals, which the part's segment kept.
            for name in set(totals) | set(segment._fieldlengths):
                totals[name] = before.get(name, 0) + segment._fieldlengths.get(name, 0)
            writer.pool.merge(terms, base)
            writer._added = True
        self._close()
        return self.segments

    def part(self) -> tuple | None:
        """This builder's documents, unwritten, for another builder to add after its own (``finish``).

        Their stored fields and lengths are in a segment's files (a segment the index never lists);
        their postings go as they are. None if there were no documents.
        """
        writer, self.writer = self.writer, None
        if writer is None or not writer.doc_count():
            return None
        return writer._partial_segment(), writer.pool.terms

    def cancel(self) -> None:
        """Drop the segment being written (its files go with the unused generation)."""
        if self.writer is not None:
            self.writer.pool.cleanup()
            self.writer = None

    def _close(self) -> None:
        """Write the current segment's postings and files; it joins the index at the parent's commit."""
        writer, self.writer = self.writer, None
        if writer is not None and writer.doc_count():
            self.segments.append(writer._finalize_segment())
