"""The customer portal through the Flask test client: pages, search, articles, votes, sitemap."""

from __future__ import annotations

import re
from xml.etree import ElementTree as ET

import pytest
import sqlalchemy as sa

from kb import articles as kb_articles
from kb import search
from kb.db import session_scope
from kb.models import Article, SearchLog, Vote
from tests.conftest import csrf_token_from

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=", re.I)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)


def assert_clean_page(response, status: int = 200) -> str:
    """The page has the expected status, the site's layout, a CSP and nothing inline."""
    assert response.status_code == status
    html = response.get_data(as_text=True)
    assert 'class="site-header"' in html and "Help Centre" in html
    assert not INLINE_SCRIPT.search(html), "inline <script> in page"
    assert not INLINE_STYLE.search(html), "inline style in page"
    assert not EVENT_HANDLER.search(html), "inline event handler in page"
    assert "javascript:" not in html.lower()
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    return html


def text_of(html: str) -> str:
    """The visible words of a page, tags removed, for simple 'does it say' checks."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def corpus(app, make_article):
    """A small help centre in three languages, indexed."""
    made = {
        "password": make_article("How do I reset my password?", slug="reset-password", category="Account",
                                 body_md="Click **Forgot password** on the sign-in page.\n\n## Still stuck?\n\nEmail us.",
                                 tags=["login", "password"]),
        "email": make_article("Change your email address", slug="change-email", category="Account",
                              body_md="Open your account settings and change the email. Your password stays the same."),
        "delivery": make_article("How long does delivery take?", slug="delivery-times", category="Shipping",
                                 body_md="Parcels arrive within three working days."),
        "refund": make_article("如何申请退款？", slug="zh-refund", lang="zh", category="Returns & Refunds",
                               body_md="在订单页面申请退款，退款将在五个工作日内到账。"),
        "levering": make_article("Hvor lang tid tar leveringen?", slug="nb-levering", lang="nb", category="Shipping",
                                 body_md="Pakker kommer fram innen tre virkedager."),
        "draft": make_article("Secret draft about passwords", slug="secret-draft", category="Internal",
                              status="draft", body_md="Not for customers. password"),
    }
    search.process_outbox(app)
    return made


def category_counts(html: str) -> dict[str, int]:
    """Category name -> article count as the home page shows them."""
    cards = re.findall(r'class="category-name">([^<]+)</span>\s*<span class="category-count">(\d+) article', html)
    return {name.replace("&amp;", "&"): int(count) for name, count in cards}


def test_home_lists_categories_with_counts(client, corpus):
    html = assert_clean_page(client.get("/"))
    assert category_counts(html) == {"Account": 2, "Returns & Refunds": 1, "Shipping": 2}
    assert 'href="/categories/returns-refunds"' in html
    assert 'role="search"' in html and 'name="q"' in html
    for native in ("English", "中文", "Norsk", "All languages"):
        assert native in html
    # Nothing read or voted on yet: the newest articles stand in for the most viewed.
    assert "Recently updated" in html and "No votes yet" in html


def test_language_switch_filters_and_is_remembered(client, corpus):
    html = assert_clean_page(client.get("/?lang=zh"))
    assert category_counts(html) == {"Returns & Refunds": 1}
    assert 'href="/?lang=zh" lang="zh" hreflang="zh" aria-current="true"' in html
    assert category_counts(client.get("/").get_data(as_text=True)) == {"Returns & Refunds": 1}
    assert category_counts(client.get("/?lang=no").get_data(as_text=True)) == {"Shipping": 1}
    assert category_counts(client.get("/?lang=all").get_data(as_text=True)) == {
        "Account": 2, "Returns & Refunds": 1, "Shipping": 2}
    # An unknown language is ignored rather than emptying the page.
    assert category_counts(client.get("/?lang=xx").get_data(as_text=True))["Account"] == 2


def test_home_shows_most_viewed_and_most_helpful(client, corpus):
    for _ in range(3):
        client.get("/articles/delivery-times")
    client.get("/articles/change-email")
    html = client.get("/articles/reset-password").get_data(as_text=True)
    client.post("/articles/reset-password/vote", data={"helpful": "yes", "csrf_token": csrf_token_from(html)})
    html = assert_clean_page(client.get("/"))
    viewed = html[html.index('id="viewed-heading"'):html.index('id="helpful-heading"')]
    helpful = html[html.index('id="helpful-heading"'):]
    assert viewed.index("How long does delivery take?") < viewed.index("Change your email address")
    assert "How do I reset my password?" in helpful and "delivery" not in helpful


def test_search_results_are_ranked_and_highlighted(client, corpus, session):
    html = assert_clean_page(client.get("/search?q=password"))
    titles = re.findall(r'<h2><a href="/articles/([^"]+)">', html)
    # change-email only mentions a password in passing: a weak tail, cut (kb.search.ranking).
    assert titles == ["reset-password"]
    assert "<mark>" in html.lower()
    assert session.scalar(sa.select(sa.func.count(SearchLog.id)).where(SearchLog.query == "password")) == 1


def test_search_escapes_what_the_customer_typed(client, corpus):
    html = assert_clean_page(client.get("/search", query_string={"q": '<script>alert(1)</script> "password'}))
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_search_filters_by_category_and_language(client, corpus):
    html = assert_clean_page(client.get("/search?q=password&category=shipping"))
    assert "reset-password" not in re.findall(r'<h2><a href="/articles/([^"]+)">', html)
    assert '<option value="shipping" selected>' in html
    html = client.get("/search?q=delivery&category=shipping").get_data(as_text=True)
    assert 'href="/articles/delivery-times"' in html
    html = assert_clean_page(client.get("/search?q=levering&lang=nb"))
    assert re.findall(r'<h2><a href="/articles/([^"]+)">', html) == ["nb-levering"]
    assert '<option value="nb" lang="nb" selected>' in html
    html = client.get("/search?q=退款&lang=zh").get_data(as_text=True)
    assert re.findall(r'<h2><a href="/articles/([^"]+)">', html) == ["zh-refund"]


def test_search_pages(app_factory):
    app = app_factory(SEARCH_PAGE_SIZE=2)
    with session_scope(app) as s:
        for n in range(5):
            kb_articles.create_article(s, kb_articles.ArticleDraft(
                f"Parcel question {n}", f"Where is my parcel? Case {n}.", category="Shipping"), status="published")
    search.process_outbox(app)
    client = app.test_client()
    seen = []
    for page in (1, 2, 3):
        html = assert_clean_page(client.get(f"/search?q=parcel&page={page}"))
        found = re.findall(r'<h2><a href="/articles/([^"]+)">', html)
        assert len(found) == (2 if page < 3 else 1)
        seen += found
        assert ('rel="prev"' in html) == (page > 1)
        assert ('rel="next"' in html) == (page < 3)
        assert f'<span aria-current="page">{page}</span>' in html
    assert len(set(seen)) == 5
    assert 'href="/search?q=parcel&amp;page=3"' in client.get("/search?q=parcel").get_data(as_text=True)
    html = assert_clean_page(client.get("/search?q=parcel&page=7"))
    assert "past the last result" in html and not re.findall(r'<h2><a href="/articles/', html)


@pytest.mark.parametrize("query, says", [
    ("q=password&page=abc", "The page parameter must be a whole number from 1 to 100"),
    ("q=password&page=-1", "The page parameter must be a whole number from 1 to 100"),
    ("q=password&page=0", "The page parameter must be a whole number from 1 to 100"),
    ("q=password&page=2.5", "The page parameter must be a whole number from 1 to 100"),
    ("q=password&page=101", "The page parameter must be a whole number from 1 to 100"),
    ("q=password&page=99999999999", "The page parameter must be a whole number from 1 to 100"),
    ("q=password&page=1&page=2", "Give the page parameter once"),
    ("q=password&q=email", "Give the q parameter once"),
    ("q=password&category=account&category=shipping", "Give the category parameter once"),
    ("q=password&category=no-such-topic", "There is no topic &#39;no-such-topic&#39;"),
])
def test_a_bad_search_parameter_is_a_400_that_says_what_to_send(client, corpus, query, says):
    html = assert_clean_page(client.get("/search?" + query), 400)
    assert says in html


def test_results_already_for_the_correction_say_so_instead_of_asking_did_you_mean(client, corpus):
    html = assert_clean_page(client.get("/search?q=pasword"))
    assert "Showing results for <strong>password</strong>." in html and "Did you mean" not in html
    assert re.findall(r'<h2><a href="/articles/([^"]+)">', html)[0] == "reset-password"


def test_did_you_mean_when_the_correction_would_find_other_results(app, client, make_article):
    make_article("Care guide", tags=["care"], body_md="Care for your gear: care labels explained. Care.")
    make_article("Zips", body_md="Every zip on a coat, a bag or a jacket can be repaired in our shop.")
    search.process_outbox(app)
    html = assert_clean_page(client.get("/search?q=jaket+care"))
    assert re.findall(r'<h2><a href="/articles/([^"]+)">', html) == ["care-guide"]
    assert re.search(r'Did you mean <a href="/search\?q=jacket\+care[^"]*"><strong>jacket care</strong></a>\?', html)
    assert "Showing results for" not in html
    assert "Did you mean" not in client.get("/search?q=jacket+care").get_data(as_text=True)


def test_zero_results_page_still_helps(app_factory):
    app = app_factory(SUPPORT_ADDRESS="help@fjellstad.example")
    client = app.test_client()
    with session_scope(app) as s:
        kb_articles.create_article(s, kb_articles.ArticleDraft("Popular article", "Text."), status="published")
    search.process_outbox(app)
    client.get("/articles/popular-article")
    html = assert_clean_page(client.get("/search?q=xylophone"))
    assert "No results for “xylophone”" in html
    assert 'href="/articles/popular-article"' in html
    assert 'href="mailto:help@fjellstad.example"' in html


def test_empty_query_goes_home_without_logging(client, corpus, session):
    for q in ("", "   ", "\x00"):
        response = client.get("/search", query_string={"q": q})
        assert response.status_code == 302 and response.headers["Location"] == "/"
    assert session.scalar(sa.select(sa.func.count(SearchLog.id))) == 0


@pytest.mark.parametrize("q", ['"unbalanced', "AND", "OR NOT", "title:(", "*", "?", "x" * 2000, "a\x00b", "((((", "退款 AND"])
def test_hostile_queries_never_break_the_page(client, corpus, q):
    assert_clean_page(client.get("/search", query_string={"q": q}))


def test_article_page(client, corpus, session):
    html = assert_clean_page(client.get("/articles/reset-password"))
    assert "<strong>Forgot password</strong>" in html
    assert '<h2 id="still-stuck">Still stuck?</h2>' in html
    start = html.index('<ol>', html.index('class="breadcrumb"'))
    crumbs = html[start:html.index("</nav>", start)]
    assert 'href="/"' in crumbs and 'href="/categories/account"' in crumbs
    assert text_of(crumbs).startswith("Home Account How do I reset my password?")
    related = html[html.index('id="related-heading"'):]
    assert 'href="/articles/change-email"' in related
    assert '<html lang="en">' in html
    assert 'name="helpful" value="yes"' in html and 'name="helpful" value="no"' in html
    client.get("/articles/reset-password")
    assert session.scalar(sa.select(Article.views).where(Article.slug == "reset-password")) == 2


def test_article_page_sets_its_language(client, corpus):
    html = assert_clean_page(client.get("/articles/zh-refund"))
    assert '<html lang="zh">' in html and "如何申请退款？" in html


@pytest.mark.parametrize("path", ["/articles/secret-draft", "/articles/no-such-article", "/categories/nope", "/nowhere"])
def test_missing_pages_are_real_404s(client, corpus, path):
    html = assert_clean_page(client.get(path), 404)
    assert "404" in html and 'name="q"' in html


@pytest.mark.parametrize("path", ["/categories/account?slug=x", "/search?q=reset&endpoint=x",
                                  "/search?q=reset&_method=POST", "/?_anchor=x&_external=1"])
def test_stray_query_arguments_never_break_a_page(client, corpus, path):
    response = client.get(path)
    assert response.status_code in (200, 404)
    assert b"_anchor" not in response.data and b"endpoint=x" not in response.data


def test_old_slug_redirects_permanently(client, corpus, session):
    article = session.scalar(sa.select(Article).where(Article.slug == "change-email"))
    draft = kb_articles.ArticleDraft(article.title, article.body_md, article.lang, article.category,
                                     article.tags, slug="update-email")
    kb_articles.update_article(session, article, draft)
    session.commit()
    response = client.get("/articles/change-email")
    assert response.status_code == 301 and response.headers["Location"] == "/articles/update-email"
    assert client.get("/articles/update-email").status_code == 200


def test_category_page_lists_its_articles(client, corpus):
    html = assert_clean_page(client.get("/categories/account"))
    assert 'href="/articles/reset-password"' in html and 'href="/articles/change-email"' in html
    assert "delivery-times" not in html and "secret-draft" not in html
    html = client.get("/categories/shipping?lang=nb").get_data(as_text=True)
    assert 'href="/articles/nb-levering"' in html and "delivery-times" not in html


def votes(session) -> list[tuple]:
    """All stored votes as (visitor, helpful, comment)."""
    session.expire_all()
    return session.execute(sa.select(Vote.visitor, Vote.helpful, Vote.comment).order_by(Vote.id)).all()


def test_voting_once_per_visitor_session(app, client, corpus, session):
    token = csrf_token_from(client.get("/articles/reset-password").get_data(as_text=True))
    response = client.post("/articles/reset-password/vote",
                           data={"helpful": "no", "comment": "Step 2 confused me.", "csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == "/articles/reset-password#feedback"
    [(visitor, helpful, comment)] = votes(session)
    assert (helpful, comment) == (False, "Step 2 confused me.") and len(visitor) == 32
    html = assert_clean_page(client.get("/articles/reset-password"))
    assert "Thanks for your feedback!" in html and 'name="helpful"' not in html
    again = client.post("/articles/reset-password/vote", data={"helpful": "yes", "csrf_token": token},
                        follow_redirects=True)
    assert "You already told us about this article" in again.get_data(as_text=True)
    assert len(votes(session)) == 1
    # A second visitor. Its own app context, because the session fixture's context (and its g,
    # where Flask-WTF caches the CSRF token) would otherwise be shared by both clients.
    with app.app_context():
        other = app.test_client()
        token = csrf_token_from(other.get("/articles/reset-password").get_data(as_text=True))
        response = other.post("/articles/reset-password/vote", data={"helpful": "yes", "csrf_token": token})
        assert response.status_code == 303
    assert [v[1] for v in votes(session)] == [False, True]


def test_vote_without_csrf_token_is_refused(client, corpus, session):
    response = client.post("/articles/reset-password/vote", data={"helpful": "yes"})
    assert_clean_page(response, 400)
    assert "Reload the page" in response.get_data(as_text=True)
    assert votes(session) == []


def test_vote_needs_yes_or_no_and_a_published_article(client, corpus, session):
    token = csrf_token_from(client.get("/articles/reset-password").get_data(as_text=True))
    assert client.post("/articles/reset-password/vote", data={"helpful": "maybe", "csrf_token": token}).status_code == 400
    assert client.post("/articles/secret-draft/vote", data={"helpful": "yes", "csrf_token": token}).status_code == 404
    assert votes(session) == []


def test_sitemap_lists_public_pages_with_absolute_urls(app_factory):
    app = app_factory(BASE_URL="https://help.example.com/")
    with session_scope(app) as s:
        kb_articles.create_article(s, kb_articles.ArticleDraft("Public", "x", category="Returns & Refunds"), status="published")
        kb_articles.create_article(s, kb_articles.ArticleDraft("Hidden", "x", category="Secret"), status="draft")
    response = app.test_client().get("/sitemap.xml")
    assert response.status_code == 200 and response.mimetype == "application/xml"
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    root = ET.fromstring(response.data)
    urls = {u.findtext("s:loc", namespaces=ns): u.findtext("s:lastmod", namespaces=ns) for u in root.findall("s:url", ns)}
    assert set(urls) == {"https://help.example.com/", "https://help.example.com/categories/returns-refunds",
                         "https://help.example.com/articles/public"}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", lastmod) for lastmod in urls.values())


def test_pages_work_without_javascript_and_load_suggestions_as_a_file(client, corpus):
    html = assert_clean_page(client.get("/"))
    assert '<script src="/static/suggest.js" defer></script>' in html
    assert re.search(r'<form class="big-search" action="/search" method="get"', html)
    assert 'data-suggest="/api/suggest"' in html
    for name, needle in (("suggest.js", b"data-suggest"), ("site.css", b".suggest-list")):
        with client.get(f"/static/{name}") as response:  # static files stream: close them
            assert response.status_code == 200 and needle in response.data
