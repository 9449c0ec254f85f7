"""A segment's vocabulary for typo candidates (kb.search.spelling), read straight from whoosh3's terms table,
is Whoosh's own lexicon, whatever the chunks it is read in; its alphabet is the commonest letters."""

from __future__ import annotations

from collections import Counter

import pytest

from whoosh import index as whoosh_index
from whoosh.fields import ID, TEXT, Schema

from kb import search
from kb.search import spelling
from kb.search.mapped import MappedFile
from tests.test_search_termwise import app  # noqa: F401 - fixture: forty articles in several segments, with deletions


@pytest.fixture
def segments(app):  # noqa: F811 - the imported fixture
    """The index's segment readers and its schema, while a searcher holds them open."""
    with search._service(app).store.searcher() as (_gen, searcher):
        yield [leaf for leaf, _offset in searcher.reader().leaf_readers()], searcher.schema


@pytest.mark.parametrize("chunk", [spelling.CHUNK, 7, 64])  # 7: every record is larger than a chunk
def test_terms_read_from_the_table_are_whooshs_lexicon(segments, monkeypatch, chunk):
    monkeypatch.setattr(spelling, "CHUNK", chunk)
    leaves, schema = segments
    assert len(leaves) > 1
    kinds = set()
    for leaf in leaves:
        for fieldname in [*schema.names(), "no_such_field"]:
            expected = list(leaf.lexicon(fieldname)) if fieldname in schema and schema[fieldname].indexed else []
            assert spelling._stored_terms(leaf, fieldname) == expected, fieldname
            kinds.add("words" if expected else "none")
    assert kinds == {"words", "none"}


def test_the_vocabulary_is_the_decoded_lexicon_and_its_commonest_letters(segments):
    for leaf in segments[0]:
        words, alphabet = spelling.vocabulary(leaf, "spell_en")
        assert words == {btext.decode("utf-8") for btext in leaf.lexicon("spell_en")} and words
        counts = Counter("".join(words))
        assert [ch for _n, ch in sorted((-n, ch) for ch, n in counts.items())[:spelling.ALPHABET_SIZE]] == list(alphabet)


@pytest.mark.parametrize("fieldname", ["spell_en", "body_en", "title_en", "tags", "title_nb", "no_such_field"])
def test_words_cut_in_place_are_whooshs_lexicon(segments, fieldname):
    leaves, schema = segments
    for leaf in leaves:
        assert type(leaf._terms._tindex.dbfile) is MappedFile
        expected = ({btext.decode("utf-8") for btext in leaf.lexicon(fieldname)}
                    if fieldname in schema and schema[fieldname].indexed else set())
        assert spelling._words_in_place(leaf, fieldname) == expected


@pytest.mark.parametrize("compound", [True, False])  # False: real files, no buffer to cut from
def test_a_word_holding_the_separator_or_a_real_file_takes_the_other_way(tmp_path, compound):
    ix = whoosh_index.create_in(str(tmp_path), Schema(code=ID, text=TEXT))
    writer = ix.writer(compound=compound)
    for code in ["refund", "a\x00b", "søknad", "退款"]:
        writer.add_document(code=code, text=f"words for {code}")
    writer.commit()
    with ix.searcher() as searcher:
        leaf = searcher.reader()  # one segment: its own reader
        assert spelling._words_in_place(leaf, "code") is None
        text = {btext.decode("utf-8") for btext in leaf.lexicon("text")}
        assert spelling._words_in_place(leaf, "text") == (text if compound else None) and "søknad" in text
        words, _alphabet = spelling.vocabulary(leaf, "code")
        assert words == {"refund", "a\x00b", "søknad", "退款"}
    ix.close()


def test_terms_holding_the_separator_are_decoded_one_by_one():
    terms = ["refund".encode(), "a\x00b".encode(), "søknad".encode(), "退款".encode()]
    assert spelling._decoded(terms) == {"refund", "a\x00b", "søknad", "退款"}
    assert spelling._decoded(terms[:1] + terms[2:]) == {"refund", "søknad", "退款"}
    assert spelling._decoded([]) == frozenset()


def test_the_alphabet_keeps_the_commonest_letters_ties_by_code_point(monkeypatch):
    monkeypatch.setattr(spelling, "ALPHABET_SIZE", 3)
    assert spelling._most_used_letters(frozenset({"aab", "ccb", "ød"})) == "abc"  # a, b and c twice: by code point
    assert spelling._most_used_letters(frozenset({"aab", "ccb", "cd"})) == "cab"  # c 3, then a and b twice
    assert spelling._most_used_letters(frozenset({"退款退"})) == "退款"
    assert spelling._most_used_letters(frozenset()) == ""
