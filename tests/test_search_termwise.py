"""The term-at-a-time scorer (kb.search.termwise) gives Whoosh's own top k, and falls back when it cannot;
related articles read as arrays (kb.search.alike) are those a walk of Whoosh's postings finds."""

from __future__ import annotations

import random

import pytest
from whoosh.query import And, Term

from kb import search
from kb.articles import ArticleDraft, create_article, update_article
from kb.db import session_scope
from kb.models import Article
from kb.render_cache import article_text
from kb.search import alike, likeness, termwise, topk
from kb.search.analysis import GROUPS, group_for
from kb.search.querying import build
from kb.search.schema import field

WORDS = ("refund order parcel delivery invoice account password reset login payment card shipping return "
         "exchange warranty broken screen battery charger cable tracking number address").split()
QUERIES = ["refund", "password reset", "parcel tracking number", "refnd of my ordr",  # typos: corrections join the OR
           "how do I get a refund for a broken screen that came with the wrong charger cable",  # planned: others
           "invoice card payment warranty address exchange battery login shipping return"]


@pytest.fixture
def app(app_factory):
    """Forty articles of mixed words in several segments, some of them edited (so deleted documents remain)."""
    app = app_factory()
    rng = random.Random(5)
    ids = []
    for k in range(40):
        with session_scope(app) as session:
            title = " ".join(rng.sample(WORDS, 3))
            body = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(5, 60)))
            article = create_article(session, ArticleDraft(f"{title} {k}", body, category="billing" if k % 3 else "help"),
                                     status="published")
            session.flush()
            ids.append(article.id)
        if k % 10 == 9:
            search.process_outbox(app)  # a segment per ten articles
    for article_id in ids[::7]:
        with session_scope(app) as session:
            article = session.get(Article, article_id)
            update_article(session, article, ArticleDraft(article.title, article.body_md + " refund refund",
                                                          category=article.category))
        search.process_outbox(app)
    return app


def _held(reader, docnum: int, terms) -> set:
    """The (field, term) pairs of ``terms`` that the document really holds, read from Whoosh's postings."""
    held = set()
    for name, btext in terms:
        if (name, btext) in reader and docnum in set(reader.postings(name, btext).all_ids()):
            held.add((name, btext))
    return held


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("limit, wanted, unwanted", [(30, None, None), (5, None, None),
                                                     (30, Term("category", "billing"), None),
                                                     (30, And([Term("lang", "en"), Term("category", "help")]), Term("id", "3"))])
def test_same_top_k_and_scores_as_whoosh(app, query, limit, wanted, unwanted):
    service = app.extensions["kb.search"]
    with service.store.searcher() as (_gen, searcher):
        reader = searcher.reader()
        assert len(reader.leaf_readers()) > 1 and any(leaf.has_deletions() for leaf, _o in reader.leaf_readers())
        plan = build(reader, query, list(GROUPS), group_for("en"))
        ours = termwise.search(searcher, plan.query, limit, wanted, unwanted)
        assert ours is not None
        theirs, _terms = topk._whoosh(searcher, plan.query, limit, wanted, unwanted)
        assert [d for _s, d in ours[0]] == [d for _s, d in theirs] and theirs
        assert [s for s, _d in ours[0]] == pytest.approx([s for s, _d in theirs], rel=1e-12)
        asked = {(t.fieldname, t.btext) for t in termwise.split(plan.query, searcher.schema)[0]}
        for _score, docnum in ours[0]:
            assert set(ours[1][docnum]) == _held(reader, docnum, asked) != set()
            assert not reader.is_deleted(docnum)


@pytest.mark.parametrize("query", ['"password reset" login', And([Term("body_en", "refund"), Term("title_en", "card")])])
def test_phrases_and_and_queries_score_as_in_whoosh(app, query):
    service = app.extensions["kb.search"]
    with service.store.searcher() as (_gen, searcher):
        if isinstance(query, str):
            query = build(searcher.reader(), query, list(GROUPS), group_for("en")).query
        ours = termwise.search(searcher, query, 10)
        theirs, terms_of = topk._whoosh(searcher, query, 10, None, None)
        assert [d for _s, d in ours[0]] == [d for _s, d in theirs] and theirs
        assert [s for s, _d in ours[0]] == pytest.approx([s for s, _d in theirs], rel=1e-12)
        assert {d: set(t) for d, t in ours[1].items()} == {d: set(terms_of[d]) for _s, d in theirs}


def test_other_filters_go_to_whoosh(app):
    service = app.extensions["kb.search"]
    with service.store.searcher() as (_gen, searcher):
        either = Term("id", "1") | Term("id", "2")
        assert termwise.search(searcher, Term("body_en", "refund"), 10, wanted=either) is None
        hits, terms_of = topk.search(searcher, Term("body_en", "refund"), 10, wanted=either)
        assert 1 <= len(hits) <= 2 and {hit["id"] for hit in hits} <= {"1", "2"} and hits[0].get("nothing", 7) == 7
        assert all(terms_of[hit.docnum] == [("body_en", b"refund")] for hit in hits)


def _walked(reader, source: likeness.Source, limit: int) -> list[int]:
    """Related documents the plain way: Whoosh's matchers a posting at a time, every document's stored fields."""
    group, documents = group_for(source.lang), max(reader.doc_count(), 1)
    found = likeness.pieces(source, lambda words: {w: reader.doc_frequency(field("spell", group), w) for w in words},
                            documents)
    priced = [(p, reader.doc_frequency(field(p.kind, group), p.term)) for p in found]
    scores: dict[int, float] = {}
    for piece, _count, worth in likeness.chosen(priced, documents):
        postings = reader.postings(field(piece.kind, group), piece.term)
        while postings.is_active():
            weight = postings.weight()
            scores[postings.id()] = scores.get(postings.id(), 0.0) + worth * weight / (weight + alike.TF_SATURATION)
            postings.next()
    ranked = sorted(scores, key=lambda d: (-scores[d], d))
    kept = [d for d in ranked if reader.stored_fields(d)["lang"] == source.lang
            and reader.stored_fields(d)["id"] != str(source.id)][:limit]
    return likeness.strong(scores, kept)


@pytest.mark.parametrize("limit", [1, 3, 5])
def test_related_arrays_find_what_a_posting_walk_finds(app, limit):
    service = app.extensions["kb.search"]
    with session_scope(app) as session:
        sources = [likeness.Source(a.id, a.lang, a.title, tuple(a.tags or ()), article_text(a))
                   for a in session.query(Article).filter(Article.status == "published")]
    with service.store.searcher() as (_gen, searcher):
        reader = searcher.reader()
        assert len(reader.leaf_readers()) > 1 and any(leaf.has_deletions() for leaf, _o in reader.leaf_readers())
        found = {s.id: alike.related(reader, s, limit) for s in sources}
        assert found == {s.id: _walked(reader, s, limit) for s in sources}
        assert sum(map(len, found.values())) >= len(sources)  # not all empty: the comparison says something


def test_field_lengths_read_in_one_go_are_whooshs_own(app):
    """Each segment's length arrays equal what Whoosh's reader gives document by document, fields without a column too."""
    with search._service(app).store.searcher() as (_gen, searcher):
        leaves = [leaf for leaf, _offset in searcher.reader().leaf_readers()]
        assert len(leaves) > 1 and any(leaf.has_deletions() for leaf in leaves)  # segments, and deleted documents
        checked = set()
        for leaf in leaves:
            for fieldname, fieldtype in searcher.schema.items():
                if not fieldtype.scorable:
                    continue
                expected = [leaf.doc_field_length(d, fieldname, 1) or 1 for d in range(leaf.doc_count_all())]
                assert termwise._length_bytes(leaf, fieldname) is not None  # the one read, not the fallback
                assert termwise.lengths(leaf, fieldname).tolist() == expected, fieldname
                checked.add("some longer than one" if max(expected) > 1 else "all one")
        assert checked == {"some longer than one", "all one"}  # fields with a column and fields without
