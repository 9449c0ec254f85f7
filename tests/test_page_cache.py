"""Whole pages and API answers kept per process (kb.web.pagecache): the same bytes a render gives,
each visitor's own token and search id, every search logged, and nothing kept past a change."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from kb import articles as kb_articles
from kb import search
from kb.db import session_scope
from kb.models import SearchLog
from kb.web import pagecache
from tests.conftest import csrf_token_from


@pytest.fixture
def shop(app, make_article):
    """Two refund articles, indexed."""
    made = [make_article("Refund a card payment", category="Billing", body_md="How to get a refund by card."),
            make_article("Refund a bank transfer", category="Billing", body_md="How to get a refund by transfer.")]
    search.process_outbox(app)
    return made


@pytest.fixture
def renders(monkeypatch):
    """How many times each kind of page was made: searches run and article pages rendered."""
    counts = {"search": 0, "article": 0}
    real_search, real_page = search.search_articles, _article_page()

    def counting_search(*args, **kwargs):
        counts["search"] += 1
        return real_search(*args, **kwargs)

    def counting_page(*args, **kwargs):
        counts["article"] += 1
        return real_page(*args, **kwargs)

    monkeypatch.setattr(search, "search_articles", counting_search)
    monkeypatch.setattr("kb.web.portal.routes._article_page", counting_page)
    return counts


def _article_page():
    """The portal's article renderer."""
    from kb.web.portal import routes
    return routes._article_page


def search_ids(html: str) -> set[str]:
    """The search ids in a result page's links."""
    return set(re.findall(r"search=(\d+)", html))


def logged(session) -> list[tuple[int, str]]:
    """(id, query) of every logged search."""
    session.expire_all()
    return [tuple(r) for r in session.execute(sa.select(SearchLog.id, SearchLog.query).order_by(SearchLog.id))]


def test_a_kept_search_page_is_the_render_with_this_visitors_search_id(app, shop, session, renders):
    first = app.test_client().get("/en/search?q=refund").get_data(as_text=True)
    second = app.test_client().get("/en/search?q=refund").get_data(as_text=True)
    assert renders["search"] == 1  # the second visitor's page was not searched again
    rows = logged(session)
    assert [q for _id, q in rows] == ["refund", "refund"]  # but both searches are logged
    (id1, _), (id2, _) = rows
    assert search_ids(first) == {str(id1)} and search_ids(second) == {str(id2)}
    assert second == first.replace(f"search={id1}", f"search={id2}")  # otherwise byte for byte the render
    assert "Refund a card payment" in second and pagecache.SEARCH_ID_HOLE not in second


def test_a_click_from_a_kept_page_counts_on_that_visitors_own_search(app, shop, session):
    app.test_client().get("/en/search?q=refund")
    client = app.test_client()
    html = client.get("/en/search?q=refund").get_data(as_text=True)
    link = re.search(r'href="(/en/articles/[^"]*search=\d+[^"]*)"', html).group(1).replace("&amp;", "&")
    client.get(link, headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"})
    session.expire_all()
    clicked = session.execute(sa.select(SearchLog.id, SearchLog.click_position)
                              .where(SearchLog.click_position.is_not(None))).all()
    assert [tuple(r) for r in clicked] == [(int(search_ids(html).pop()), 1)]


def test_an_article_change_shows_on_the_next_page(app, shop, session, renders):
    client = app.test_client()
    assert "Refund a card payment" in client.get("/en/search?q=refund").get_data(as_text=True)
    article = session.merge(shop[0])
    kb_articles.update_article(session, article, kb_articles.ArticleDraft(
        title="Refund a credit card payment", body_md=article.body_md, category="Billing"))
    session.commit()  # not yet in the index: the title comes from the database, the feed's head moved
    html = app.test_client().get("/en/search?q=refund").get_data(as_text=True)
    assert "Refund a credit card payment" in html and renders["search"] == 2
    page = app.test_client().get(f"/en/articles/{article.slug}").get_data(as_text=True)
    assert "Refund a credit card payment" in page


def test_a_kept_article_page_gives_each_new_visitor_their_own_working_vote_form(app, shop, session, renders):
    url = f"/en/articles/{shop[0].slug}"
    first, second = app.test_client(), app.test_client()
    page1, page2 = first.get(url).get_data(as_text=True), second.get(url).get_data(as_text=True)
    assert renders["article"] == 1
    token1, token2 = csrf_token_from(page1), csrf_token_from(page2)
    assert token1 != token2 and pagecache.CSRF_HOLE not in page2
    assert page2 == page1.replace(token1, token2)
    answer = second.post(f"{url}/vote", data={"helpful": "yes", "csrf_token": token2},
                         headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"})
    assert answer.status_code == 303
    # Their next view is theirs: rendered, with the thanks the flash carries and no form any more.
    after = second.get(url).get_data(as_text=True)
    assert "Thanks for your feedback!" in after and 'name="csrf_token"' not in after
    assert renders["article"] == 2
    assert first.post(f"{url}/vote", data={"helpful": "no", "csrf_token": token2}).status_code == 400  # not theirs


def test_a_returning_visitor_is_never_served_a_kept_article_page(app, shop, renders):
    client, url = app.test_client(), f"/en/articles/{shop[1].slug}"
    client.get(url)
    client.get(url)
    assert renders["article"] == 2


def test_zero_results_pages_are_made_each_time(app, shop, renders):
    for _ in range(2):
        assert app.test_client().get("/en/search?q=zebra").status_code == 200
    assert renders["search"] == 2  # they list the most viewed articles, which views change


def test_an_api_answer_is_kept_and_every_search_still_logged(app, shop, session, renders):
    answers = [app.test_client().get("/api/search?q=refund").get_json() for _ in range(3)]
    assert renders["search"] == 1 and answers[0] == answers[1] == answers[2]
    assert answers[0]["total"] == 2
    search.flush_log(app)
    assert [q for _id, q in logged(session)] == ["refund"] * 3


def test_a_cache_size_of_0_keeps_nothing(app_factory, renders):
    app = app_factory(PAGE_CACHE_SIZE=0)
    with session_scope(app) as s:
        kb_articles.create_article(s, kb_articles.ArticleDraft(title="Refund", body_md="Refund."), status="published")
        s.commit()
    search.process_outbox(app)
    for _ in range(2):
        app.test_client().get("/en/search?q=refund")
        app.test_client().get("/api/search?q=refund")
    assert renders["search"] == 4


def test_a_visitor_with_a_message_waiting_gets_a_page_made_for_them(app, shop, renders):
    app.test_client().get("/en/search?q=refund")  # kept for anonymous visitors
    client, url = app.test_client(), f"/en/articles/{shop[0].slug}"
    token = csrf_token_from(client.get(url).get_data(as_text=True))
    client.post(f"{url}/vote", data={"helpful": "yes", "csrf_token": token},
                headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"})
    html = client.get("/en/search?q=refund").get_data(as_text=True)  # the vote's thanks waits in their session
    assert "Thanks for your feedback!" in html and renders["search"] == 2


def test_a_long_address_is_searched_each_time(app, shop, renders):
    long_query = "refund " + "x" * 1200
    for _ in range(2):
        assert app.test_client().get("/en/search", query_string={"q": long_query}).status_code == 200
        assert app.test_client().get("/api/search", query_string={"q": long_query}).status_code == 200
    assert renders["search"] == 4


def test_the_cache_holds_at_most_its_bytes_and_never_a_value_over_a_quarter_of_them():
    cache = pagecache.VersionedCache(10, max_bytes=100, weigh=len)
    assert cache.get(1, "a") is None  # the cache takes version 1
    for key in "abcde":
        cache.put(1, key, key * 20)
    assert list(cache.items) == list("abcde") and cache.bytes == 100
    cache.get(1, "a")  # served: the least recently served is now b
    cache.put(1, "f", "f" * 20)
    assert list(cache.items) == list("cdeaf") and cache.bytes == 100
    cache.put(1, "g", "g" * 26)  # over a quarter: never kept, nothing evicted for it
    assert cache.get(1, "g") is None and list(cache.items) == list("cdeaf")
    cache.put(1, "c", "c" * 5)  # a new value for a key counts its own size only
    assert cache.bytes == 85 and len(cache.items) == 5
    assert cache.get(2, "c") is None and cache.bytes == 0 and not cache.items  # a new version empties it


def test_a_page_too_large_for_the_memory_bound_is_rendered_each_time_and_kept_nowhere(app_factory, renders):
    app = app_factory(PAGE_CACHE_MB=0.2)  # pages over about 51 KB are never kept
    with session_scope(app) as s:
        for title, words in (("Short guide", 50), ("Long manual", 12_000)):
            body = " ".join(f"step{n % 97}" for n in range(words))
            kb_articles.create_article(s, kb_articles.ArticleDraft(title=title, body_md=body), status="published")
        s.commit()
    search.process_outbox(app)
    for slug in ("short-guide", "long-manual"):
        for _ in range(2):
            assert app.test_client().get(f"/en/articles/{slug}").status_code == 200
    assert renders["article"] == 3  # the short page once, the long one each time
    app.extensions[pagecache.KEY] = pagecache.VersionedCache(10)  # another process of the host
    for slug in ("short-guide", "long-manual"):
        assert app.test_client().get(f"/en/articles/{slug}").status_code == 200
    assert renders["article"] == 4  # the short page came from the shared file, the long one was not there
