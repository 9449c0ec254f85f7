"""Index files read in place from their memory map (kb.search.mapped): the same bytes and results as
Whoosh's copying BufferFile, without a copy of each file per reader."""

from __future__ import annotations

import io
import pickle
import random
import tracemalloc

import pytest
import whoosh
from whoosh import index as whoosh_index
from whoosh.filedb import compound
from whoosh.filedb.structfile import BufferFile
from whoosh.query import Or, Term

from kb import search
from kb.articles import ArticleDraft, create_article
from kb.db import session_scope
from kb.search import mapped

WORDS = "refund order parcel delivery invoice account password reset login payment card warranty".split()


def _operations(rng: random.Random, size: int):
    """A random run of stream calls, as (name, args)."""
    for _ in range(400):
        kind = rng.choice(["read", "read", "readline", "readinto", "seek", "tell", "peek"])
        if kind == "read":
            yield kind, (rng.choice([-1, None, 0, 1, 3, 17, size, size + 5]),)
        elif kind == "readline":
            yield kind, (rng.choice([-1, 0, 2, 40]),)
        elif kind == "readinto":
            yield kind, (rng.randrange(0, 30),)
        elif kind == "seek":
            whence = rng.choice([0, 1, 2])
            yield kind, (rng.randrange(0, size + 10) if whence == 0 else rng.randrange(-5, 6), whence)
        else:
            yield kind, ()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("piece", [mapped.LINE_PIECE, 3])  # 3: a line found over several pieces
def test_view_stream_reads_as_bytesio_does(seed, piece, monkeypatch):
    monkeypatch.setattr(mapped, "LINE_PIECE", piece)
    rng = random.Random(seed)
    data = bytes(rng.choice(b"ab\n\x00\xff") for _ in range(rng.randrange(0, 300)))
    ours, theirs = mapped.ViewStream(memoryview(data)), io.BytesIO(data)
    for name, args in _operations(rng, len(data)):
        if name == "readinto":
            a, b = bytearray(args[0]), bytearray(args[0])
            assert ours.readinto(a) == theirs.readinto(b) and a == b
        elif name == "peek":  # BytesIO has none: the bytes ahead, and the position unmoved
            at = theirs.tell()
            ahead = ours.peek(5)
            assert data[at:at + 5] == ahead and ours.tell() == at
        elif name == "seek" and theirs.tell() + args[0] < 0 and args[1] == 1:
            with pytest.raises(ValueError):
                theirs.seek(*args)
            with pytest.raises(ValueError):
                ours.seek(*args)
        else:
            assert getattr(ours, name)(*args) == getattr(theirs, name)(*args), (name, args)
    ours.seek(0)
    assert list(ours) == list(io.BytesIO(data))


def test_pickles_larger_and_smaller_than_a_peek_load_one_after_another():
    values = [list(range(5_000)), {"a": 1}, "x" * (mapped.PEEK_MOST + 1), 7]
    data = b"".join(pickle.dumps(value, protocol=2) for value in values)
    stream = mapped.ViewStream(memoryview(data))
    assert [pickle.load(stream) for _ in values] == values and stream.tell() == len(data)
    assert len(stream.peek(1 << 17)) == 0 and stream.seek(0) == 0 and len(stream.peek(1 << 17)) == mapped.PEEK_MOST


def test_a_member_file_is_not_copied_when_opened():
    data = bytes(8_000_000)
    for kind, most in ((BufferFile, None), (mapped.MappedFile, 100_000)):
        tracemalloc.start()
        member = kind(memoryview(data), name="big.pst")  # a view of its own, as each compound open makes
        member.seek(7_999_990)
        assert member.read(20) == bytes(10)
        _size, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        member.close()
        if most is None:
            assert peak >= 8_000_000  # Whoosh's own: the whole file again, in this process
        else:
            assert peak < most


@pytest.fixture
def folder(app_factory):
    """The index folder of a site with several segments (a commit per ten articles)."""
    app = app_factory()
    rng = random.Random(3)
    for k in range(30):
        with session_scope(app) as session:
            body = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(5, 80)))
            create_article(session, ArticleDraft(f"{' '.join(rng.sample(WORDS, 3))} {k}", body), status="published")
        if k % 10 == 9:
            search.process_outbox(app)
    store = app.extensions["kb.search"].store
    return store.folder(store.current())


def _everything(folder, member_class) -> tuple:
    """Every leaf's terms with their postings and stored fields, and a scored search, read through ``member_class``."""
    previous, compound.BufferFile = compound.BufferFile, member_class
    try:
        ix = whoosh_index.open_dir(str(folder))
        with ix.searcher() as searcher:
            leaves = searcher.reader().leaf_readers()
            kinds = {type(leaf._terms._dbfile) for leaf, _o in leaves}
            walked = [(list(leaf.all_terms()), [list(leaf.postings(f, t).items_as("frequency"))
                                                for f, t in leaf.all_terms() if leaf.indexed_field_names()],
                       list(leaf.all_stored_fields())) for leaf, _o in leaves]
            query = Or([Term("body_en", "refund"), Term("title_en", "card"), Term("body_en", "password")])
            hits = [(hit.docnum, hit.score) for hit in searcher.search(query, limit=None)]
        ix.close()
        return len(leaves), kinds, walked, hits
    finally:
        compound.BufferFile = previous


def test_the_index_reads_the_same_in_place(folder):
    assert mapped.install() and compound.BufferFile is mapped.MappedFile  # kb.search.store installed it
    leaves, kinds, walked, hits = _everything(folder, mapped.MappedFile)
    copied = _everything(folder, BufferFile)
    assert leaves > 1 and kinds == {mapped.MappedFile} and copied[1] == {BufferFile}
    assert walked == copied[2] and any(w[0] for w in walked)
    assert hits == copied[3] and hits


def test_another_whoosh_keeps_its_own_files(monkeypatch):
    monkeypatch.setattr(compound, "BufferFile", BufferFile)
    monkeypatch.setattr(whoosh, "__version__", (3, 55, 0))
    assert mapped.install() is False and compound.BufferFile is BufferFile
    monkeypatch.setattr(whoosh, "__version__", mapped.PINNED)
    assert mapped.install() is True and compound.BufferFile is mapped.MappedFile
