"""The per-process cache of related articles (kb.search.related): served while valid, dropped on any change."""

from __future__ import annotations

import re

import pytest

from kb import articles as kb_articles
from kb import search
from kb.db import session_scope
from kb.search.related import RelatedCache
from tests.searchbackends import BACKENDS, backend_app


@pytest.fixture(params=BACKENDS)
def app(request, app_factory):
    """Every test here runs on each search backend."""
    return backend_app(request, app_factory, request.param, STARTER_ARTICLES_DIR="")


@pytest.fixture
def help_centre(app, make_article):
    """An article about refunds, an unrelated one of another category, and a filler of the same category."""
    made = {"refund": make_article("Returns and refunds", category="Orders", tags=["refund"], body_md="Send it back."),
            "jacket": make_article("Caring for a waterproof jacket", category="Products", body_md="Wash at 30."),
            "filler": make_article("Gift wrapping", category="Orders", body_md="We wrap gifts.")}
    search.process_outbox(app)
    return made


def related_ids(app, session, article) -> list[int]:
    """The related articles' ids as an article page would get them."""
    with app.app_context():
        return [a.id for a in search.related_articles(session, article)]


def related_slugs_on_page(client, slug: str) -> list[str]:
    """The article slugs linked from the related-articles part of an article page."""
    html = client.get(f"/en/articles/{slug}").get_data(as_text=True)
    part = html[html.index('id="related-heading"'):]
    return re.findall(r'href="/en/articles/([^"?#]+)"', part[:part.index("</section>")])


def test_a_kept_list_is_served_without_searching_again(app, session, help_centre):
    refund, jacket = help_centre["refund"], help_centre["jacket"]
    first = related_ids(app, session, refund)
    assert first and jacket.id not in first
    cache: RelatedCache = app.extensions["kb.search.related"]
    key = (refund.id, refund.updated_at, 5)
    assert cache.items[key] == tuple(first)
    # Whatever the entry says is what the page shows: proof that the view read it and did not search.
    cache.items[key] = (jacket.id,)
    assert related_ids(app, session, refund) == [jacket.id]


def test_a_publish_that_belongs_among_the_related_shows_once_the_index_has_it(app, session, help_centre,
                                                                            make_article):
    refund = help_centre["refund"]
    before = related_ids(app, session, refund)
    newcomer = make_article("When will I get my refund?", category="Orders", tags=["refund"], body_md="Soon.")
    search.process_outbox(app)  # Whoosh applies the change here; PostgreSQL wrote it at commit
    after = related_ids(app, session, refund)
    assert newcomer.id not in before and after[0] == newcomer.id
    kb_articles.set_status(session, newcomer, "archived")
    session.commit()
    search.process_outbox(app)
    assert newcomer.id not in related_ids(app, session, refund)


def test_the_article_page_shows_a_new_related_article_after_its_publish(app, client, session, help_centre,
                                                                       make_article):
    assert "refund-timing" not in related_slugs_on_page(client, "returns-and-refunds")
    related_slugs_on_page(client, "returns-and-refunds")  # served from the cache now
    make_article("When will I get my refund?", slug="refund-timing", tags=["refund"], body_md="Soon.")
    search.process_outbox(app)
    assert related_slugs_on_page(client, "returns-and-refunds")[0] == "refund-timing"


def test_an_edit_of_the_article_itself_finds_its_related_again(app, session, help_centre):
    refund, jacket = help_centre["refund"], help_centre["jacket"]
    assert jacket.id not in related_ids(app, session, refund)
    draft = kb_articles.ArticleDraft("Returns, refunds and jacket care", body_md="Send it back.", category="Orders",
                                     tags=["refund", "jacket"])
    kb_articles.update_article(session, refund, draft)
    session.commit()  # the index has not applied the edit yet: the page must not keep the old list anyway
    assert jacket.id in related_ids(app, session, refund)


def test_no_list_is_kept_when_the_cache_is_off(app_factory):
    app = app_factory(RELATED_CACHE_SIZE=0, STARTER_ARTICLES_DIR="")
    with session_scope(app) as session:
        made = [kb_articles.create_article(session, kb_articles.ArticleDraft(title, body_md="Text."), status="published")
                for title in ("Returns and refunds", "When will I get my refund?")]
        session.commit()
        search.process_outbox(app)
        assert related_ids(app, session, made[0]) == [made[1].id]
        assert not app.extensions["kb.search.related"].items


def test_a_thread_on_an_older_version_neither_empties_nor_fills_the_cache():
    cache = RelatedCache(2)
    assert cache.get((1, "gen-b", 3), "a") is None  # first version seen: adopted, empty
    cache.put((1, "gen-b", 3), "a", [7])
    assert cache.get((1, "gen-a", 9), "a") is None  # older generation: not served, not emptied
    cache.put((1, "gen-a", 9), "b", [8])
    assert cache.get((1, "gen-b", 3), "a") == (7,) and "b" not in cache.items
    assert cache.get((2, "gen-b", 3), "a") is None and not cache.items  # a newer version empties it
    for key in "xyz":
        cache.put((2, "gen-b", 3), key, [1])
    assert list(cache.items) == ["y", "z"]  # least recently used out first
    assert cache.get(None, "y") is None  # a backend with no version is never cached


def test_related_lists_load_titles_not_text_whether_found_or_kept(app, help_centre):
    import sqlalchemy as sa

    text = {"body_md", "body_html", "body_text"}
    refund = help_centre["refund"]
    for _found_then_kept in range(2):
        with session_scope(app) as fresh, app.app_context():
            related = search.related_articles(fresh, fresh.get(type(refund), refund.id))
            assert related and all(text <= sa.inspect(a).unloaded for a in related)
            assert related[0].title and related[0].body_md  # still there when asked for
