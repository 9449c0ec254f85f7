"""The customer portal through the Flask test client: pages, search, articles, votes, sitemap."""

from __future__ import annotations

import re

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
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def assert_clean_page(response, status: int = 200) -> str:
    """The page has the expected status, the site's layout, a CSP and nothing inline."""
    assert response.status_code == status
    html = response.get_data(as_text=True)
    assert 'class="site-header"' in html and 'class="brand"' in html
    assert not INLINE_SCRIPT.search(html), "inline <script> in page"
    assert not INLINE_STYLE.search(html), "inline style in page"
    assert not EVENT_HANDLER.search(html), "inline event handler in page"
    assert "javascript:" not in html.lower()
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    return html


def read_article(client, slug: str, address: str) -> str:
    """Open an article as a person's browser does: the page, then its view counter image."""
    environ = {"REMOTE_ADDR": address, "HTTP_USER_AGENT": BROWSER}
    html = client.get(f"/en/articles/{slug}", environ_base=environ).get_data(as_text=True)
    client.get(f"/articles/{slug}/seen", environ_base=environ)
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
    """Category name -> number of articles in the page's language, as the home page shows them."""
    cards = re.findall(r'class="category-name">([^<]+)</span>\s*<span class="category-count">(\d+)', html)
    return {name.replace("&amp;", "&"): int(count) for name, count in cards}


def test_home_lists_categories_with_counts(client, corpus):
    html = assert_clean_page(client.get("/en/"))
    assert category_counts(html) == {"Account": 2, "Shipping": 1}
    assert 'href="/en/categories/returns-refunds"' in html and "1 article in other languages" in html
    assert 'role="search"' in html and 'name="q"' in html
    for native in ("English", "中文", "Norsk bokmål"):
        assert native in html
    # Nothing read or voted on yet: the newest articles stand in for the most viewed.
    assert "Recently updated" in html and "No votes yet" in html


def test_home_counts_topics_in_its_language_and_points_to_the_others(client, corpus):
    html = assert_clean_page(client.get("/zh/"))
    assert category_counts(html) == {"Returns & Refunds": 1}
    assert 'href="/language/zh?next=/zh/" lang="zh" hreflang="zh" rel="nofollow" aria-current="true"' in html
    # Topics with no Chinese article are still there, after, saying their articles are in other languages.
    assert html.index(">Returns &amp; Refunds<") < html.index(">Account<") and "其他语言的文章 2 篇" in html
    html = assert_clean_page(client.get("/nb/"))
    assert category_counts(html) == {"Shipping": 1}
    assert html.index(">Shipping<") < html.index(">Account<")


def test_home_shows_most_viewed_and_most_helpful(app, client, corpus):
    for reader in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):  # three people, three addresses
        read_article(app.test_client(), "delivery-times", reader)
    read_article(app.test_client(), "change-email", "192.0.2.1")
    html = client.get("/en/articles/reset-password").get_data(as_text=True)
    client.post("/en/articles/reset-password/vote", data={"helpful": "yes", "csrf_token": csrf_token_from(html)})
    html = assert_clean_page(client.get("/en/"))
    viewed = html[html.index('id="viewed-heading"'):html.index('id="helpful-heading"')]
    helpful = html[html.index('id="helpful-heading"'):]
    assert viewed.index("How long does delivery take?") < viewed.index("Change your email address")
    assert "How do I reset my password?" in helpful and "delivery" not in helpful


def test_search_results_are_ranked_and_highlighted(client, corpus, session):
    html = assert_clean_page(client.get("/en/search?q=password"))
    titles = re.findall(r'<h2><a href="/en/articles/([^"?]+)[^"]*">', html)
    # change-email only mentions a password in passing: a weak tail, cut (kb.search.ranking).
    assert titles == ["reset-password"]
    assert "<mark>" in html.lower()
    assert session.scalar(sa.select(sa.func.count(SearchLog.id)).where(SearchLog.query == "password")) == 1


def test_search_escapes_what_the_customer_typed(client, corpus):
    html = assert_clean_page(client.get("/en/search", query_string={"q": '<script>alert(1)</script> "password'}))
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_search_filters_by_category_and_language(client, corpus):
    html = assert_clean_page(client.get("/en/search?q=password&category=shipping"))
    assert "reset-password" not in re.findall(r'<h2><a href="/en/articles/([^"?]+)[^"]*">', html)
    assert '<option value="shipping" selected>' in html
    html = client.get("/en/search?q=delivery&category=shipping").get_data(as_text=True)
    assert 'href="/en/articles/delivery-times?search=' in html
    html = assert_clean_page(client.get("/en/search?q=levering&lang=nb"))
    assert re.findall(r'<h2><a href="/en/articles/([^"?]+)[^"]*">', html) == ["nb-levering"]
    assert '<option value="nb" lang="nb" selected>' in html
    html = client.get("/en/search?q=退款&lang=zh").get_data(as_text=True)
    assert re.findall(r'<h2><a href="/en/articles/([^"?]+)[^"]*">', html) == ["zh-refund"]


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
        html = assert_clean_page(client.get(f"/en/search?q=parcel&page={page}"))
        found = re.findall(r'<h2><a href="/en/articles/([^"?]+)[^"]*">', html)
        assert len(found) == (2 if page < 3 else 1)
        seen += found
        assert ('rel="prev"' in html) == (page > 1)
        assert ('rel="next"' in html) == (page < 3)
        assert f'<span aria-current="page">{page}</span>' in html
    assert len(set(seen)) == 5
    assert 'href="/en/search?q=parcel&amp;page=3"' in client.get("/en/search?q=parcel").get_data(as_text=True)
    html = assert_clean_page(client.get("/en/search?q=parcel&page=7"))
    assert "past the last result" in html and not re.findall(r'<h2><a href="/en/articles/', html)


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
    ("q=password&category=no-such-topic", "There is no topic &#34;no-such-topic&#34;"),
])
def test_a_bad_search_parameter_is_a_400_that_says_what_to_send(client, corpus, query, says):
    html = assert_clean_page(client.get("/en/search?" + query), 400)
    assert says in html


def test_results_already_for_the_correction_say_so_instead_of_asking_did_you_mean(client, corpus):
    html = assert_clean_page(client.get("/en/search?q=pasword"))
    assert "Showing results for <strong>password</strong>." in html and "Did you mean" not in html
    assert re.findall(r'<h2><a href="/en/articles/([^"?]+)[^"]*">', html)[0] == "reset-password"


def test_did_you_mean_when_the_correction_would_find_other_results(app, client, make_article):
    make_article("Care guide", tags=["care"], body_md="Care for your gear: care labels explained. Care.")
    make_article("Zips", body_md="Every zip on a coat, a bag or a jacket can be repaired in our shop.")
    search.process_outbox(app)
    html = assert_clean_page(client.get("/en/search?q=jaket+care"))
    assert re.findall(r'<h2><a href="/en/articles/([^"?]+)[^"]*">', html) == ["care-guide"]
    assert re.search(r'Did you mean <a href="/en/search\?q=jacket\+care[^"]*"><strong>jacket care</strong></a>\?', html)
    assert "Showing results for" not in html
    assert "Did you mean" not in client.get("/en/search?q=jacket+care").get_data(as_text=True)


def test_zero_results_page_still_helps(app_factory):
    app = app_factory(SUPPORT_ADDRESS="help@fjellstad.example")
    client = app.test_client()
    with session_scope(app) as s:
        kb_articles.create_article(s, kb_articles.ArticleDraft("Popular article", "Text."), status="published")
    search.process_outbox(app)
    client.get("/en/articles/popular-article")
    html = assert_clean_page(client.get("/en/search?q=xylophone"))
    assert "No results for “xylophone”" in html
    assert 'href="/en/articles/popular-article"' in html
    assert 'href="mailto:help@fjellstad.example"' in html


def test_empty_query_goes_home_without_logging(client, corpus, session):
    for q in ("", "   ", "\x00"):
        response = client.get("/en/search", query_string={"q": q})
        assert response.status_code == 302 and response.headers["Location"] == "/en/"
    assert session.scalar(sa.select(sa.func.count(SearchLog.id))) == 0


@pytest.mark.parametrize("q", ['"unbalanced', "AND", "OR NOT", "title:(", "*", "?", "x" * 2000, "a\x00b", "((((", "退款 AND"])
def test_hostile_queries_never_break_the_page(client, corpus, q):
    assert_clean_page(client.get("/en/search", query_string={"q": q}))


def test_article_page(client, corpus, session):
    html = assert_clean_page(client.get("/en/articles/reset-password"))
    assert "<strong>Forgot password</strong>" in html
    assert '<h2 id="still-stuck">Still stuck?</h2>' in html
    start = html.index('<ol>', html.index('class="breadcrumb"'))
    crumbs = html[start:html.index("</nav>", start)]
    assert 'href="/en/"' in crumbs and 'href="/en/categories/account"' in crumbs
    assert text_of(crumbs).startswith("Home Account How do I reset my password?")
    related = html[html.index('id="related-heading"'):]
    assert 'href="/en/articles/change-email"' in related
    assert '<html lang="en" dir="ltr">' in html
    assert '<link rel="canonical" href="http://127.0.0.1:5000/en/articles/reset-password">' in html
    assert 'name="helpful" value="yes"' in html and 'name="helpful" value="no"' in html
    # The page counts nothing itself; its counter image does (tests/test_portal_counting.py).
    assert 'src="/articles/reset-password/seen"' in html
    assert session.scalar(sa.select(Article.views).where(Article.slug == "reset-password")) == 0


def test_article_page_marks_the_language_of_its_text(client, corpus):
    html = assert_clean_page(client.get("/en/articles/zh-refund"))
    # The page is English (its address says so); the article's own text is marked as Chinese.
    assert '<html lang="en" dir="ltr">' in html and "Was this helpful?" in html
    assert '<h1 lang="zh">如何申请退款？</h1>' in html and '<div class="article-body" lang="zh">' in html
    assert '<link rel="canonical" href="http://127.0.0.1:5000/zh/articles/zh-refund">' in html


@pytest.mark.parametrize("path", ["/en/articles/secret-draft", "/en/articles/no-such-article", "/en/categories/nope", "/nowhere", "/en/nowhere"])
def test_missing_pages_are_real_404s(client, corpus, path):
    html = assert_clean_page(client.get(path), 404)
    assert "404" in html and 'name="q"' in html


@pytest.mark.parametrize("path", ["/en/categories/account?slug=x", "/en/search?q=reset&endpoint=x",
                                  "/en/search?q=reset&_method=POST", "/en/?_anchor=x&_external=1",
                                  "/en/search?q=reset&endpoint=x", "/?_anchor=x&_external=1&lang=zh"])
def test_stray_query_arguments_never_break_a_page(client, corpus, path):
    response = client.get(path, follow_redirects=True)
    assert response.status_code in (200, 404)
    assert b"_anchor" not in response.data and b"endpoint=x" not in response.data


def test_old_slug_redirects_permanently(client, corpus, session):
    article = session.scalar(sa.select(Article).where(Article.slug == "change-email"))
    draft = kb_articles.ArticleDraft(article.title, article.body_md, article.lang, article.category,
                                     article.tags, slug="update-email")
    kb_articles.update_article(session, article, draft)
    session.commit()
    response = client.get("/en/articles/change-email")
    assert response.status_code == 301 and response.headers["Location"] == "/en/articles/update-email"
    assert client.get("/en/articles/update-email").status_code == 200


def test_category_page_lists_its_articles(client, corpus):
    html = assert_clean_page(client.get("/en/categories/account"))
    assert 'href="/en/articles/reset-password"' in html and 'href="/en/articles/change-email"' in html
    assert "delivery-times" not in html and "secret-draft" not in html
    html = client.get("/nb/categories/shipping").get_data(as_text=True)
    # The page's language first; the others after, each marked with its language.
    assert html.index('href="/nb/articles/nb-levering"') < html.index('href="/nb/articles/delivery-times"')
    assert '<span class="lang-tag" lang="en">English</span>' in html
    assert '<span class="lang-tag" lang="nb">' not in html


def votes(session) -> list[tuple]:
    """All stored votes as (visitor, helpful, comment)."""
    session.expire_all()
    return session.execute(sa.select(Vote.visitor, Vote.helpful, Vote.comment).order_by(Vote.id)).all()


def test_voting_once_per_visitor_session(app, client, corpus, session):
    token = csrf_token_from(client.get("/en/articles/reset-password").get_data(as_text=True))
    response = client.post("/en/articles/reset-password/vote",
                           data={"helpful": "no", "comment": "Step 2 confused me.", "csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == "/en/articles/reset-password#feedback"
    [(visitor, helpful, comment)] = votes(session)
    assert (helpful, comment) == (False, "Step 2 confused me.") and len(visitor) == 32
    html = assert_clean_page(client.get("/en/articles/reset-password"))
    assert "Thanks for your feedback!" in html and 'name="helpful"' not in html
    again = client.post("/en/articles/reset-password/vote", data={"helpful": "yes", "csrf_token": token},
                        follow_redirects=True)
    assert "You already told us about this article" in again.get_data(as_text=True)
    assert len(votes(session)) == 1
    # A second visitor. Its own app context, because the session fixture's context (and its g,
    # where Flask-WTF caches the CSRF token) would otherwise be shared by both clients.
    with app.app_context():
        other = app.test_client()
        token = csrf_token_from(other.get("/en/articles/reset-password").get_data(as_text=True))
        response = other.post("/en/articles/reset-password/vote", data={"helpful": "yes", "csrf_token": token})
        assert response.status_code == 303
    assert [v[1] for v in votes(session)] == [False, True]


def test_vote_without_csrf_token_is_refused(client, corpus, session):
    response = client.post("/en/articles/reset-password/vote", data={"helpful": "yes"})
    assert_clean_page(response, 400)
    assert "Reload the page" in response.get_data(as_text=True)
    assert votes(session) == []


def test_vote_needs_yes_or_no_and_a_published_article(client, corpus, session):
    token = csrf_token_from(client.get("/en/articles/reset-password").get_data(as_text=True))
    assert client.post("/en/articles/reset-password/vote", data={"helpful": "maybe", "csrf_token": token}).status_code == 400
    assert client.post("/en/articles/secret-draft/vote", data={"helpful": "yes", "csrf_token": token}).status_code == 404
    assert votes(session) == []


def test_the_article_page_knows_who_voted_and_a_new_visitor_gets_the_form(app, client, corpus, session):
    token = csrf_token_from(client.get("/en/articles/reset-password").get_data(as_text=True))
    client.post("/en/articles/reset-password/vote", data={"helpful": "yes", "csrf_token": token})
    assert "You have already told us" in client.get("/en/articles/reset-password").get_data(as_text=True)
    fresh = app.test_client().get("/en/articles/reset-password").get_data(as_text=True)
    assert "You have already told us" not in fresh and 'name="helpful" value="yes"' in fresh


def test_pages_work_without_javascript_and_load_suggestions_as_a_file(client, corpus):
    html = assert_clean_page(client.get("/en/"))
    assert '<script src="/static/suggest.js" defer></script>' in html
    assert re.search(r'<form class="big-search" action="/en/search" method="get"', html)
    assert 'data-suggest="/api/suggest"' in html
    for name, needle in (("suggest.js", b"data-suggest"), ("site.css", b".suggest-list")):
        with client.get(f"/static/{name}") as response:  # static files stream: close them
            assert response.status_code == 200 and needle in response.data


def test_choosing_chinese_once_does_not_hide_results_in_other_languages(app, client, corpus, make_article):
    make_article("How refunds work", slug="refunds", category="Returns & Refunds", body_md="Refunds take five days.")
    search.process_outbox(app)
    # The steps from the issue: choose 中文 once, go home, search "refund".
    client.get("/?lang=zh", follow_redirects=True)
    client.get("/", follow_redirects=True)
    html = client.get("/en/search?q=refund", follow_redirects=True).text
    assert "refunds" in re.findall(r'<h2><a href="/\w+/articles/([^"?]+)[^"]*">', html)
    # The same with today's language switch: the page turns Chinese, the search still covers everything.
    client.get("/language/zh?next=/zh/")
    home = client.get("/", follow_redirects=True).text
    html = client.get(re.search(r'<form class="big-search" action="([^"]+)"', home).group(1), query_string={"q": "refund"}).text
    assert '<html lang="zh"' in html and 'class="scope-note"' not in html
    assert "refunds" in re.findall(r'<h2><a href="/zh/articles/([^"?]+)[^"]*">', html)


def test_a_search_in_one_language_says_so_with_one_click_to_all(app, client, corpus, make_article):
    make_article("How refunds work", slug="refunds", category="Returns & Refunds", body_md="Refunds take five days.")
    search.process_outbox(app)
    html = assert_clean_page(client.get("/en/search?q=refund&lang=nb"))
    note = re.search(r'<p class="scope-note" role="status">Only articles in Norsk bokmål were searched\. '
                     r'<a href="([^"]+)">Search all languages</a></p>', html)
    assert note, "the page must say it searched only Norwegian"
    everything = client.get(note.group(1).replace("&amp;", "&")).text
    assert "refunds" in re.findall(r'<h2><a href="/en/articles/([^"?]+)[^"]*">', everything)
    assert 'class="scope-note"' not in everything


def listed(html: str, heading_id: str) -> list[tuple[str, str]]:
    """(lang, title) of the articles in one home-page section, in order."""
    start = html.index(f'id="{heading_id}"')
    section = html[start:html.index("</section>", start)]
    return re.findall(r'<a href="[^"]+" lang="(\w+)">([^<]+)</a>', section)


def test_home_lists_start_with_the_visitors_language(app, client, make_article):
    english = [make_article(f"English article {n}") for n in range(2)]
    chinese = [make_article(f"中文文章 {n}", lang="zh") for n in range(6)]  # imported last: the newest
    html = client.get("/", headers={"Accept-Language": "en-GB,en"}, follow_redirects=True).text
    recent = listed(html, "viewed-heading")
    assert [lang for lang, _ in recent] == ["en", "en", "zh", "zh", "zh"]
    assert html.count('<span class="lang-tag" lang="zh">中文</span>') == 3  # filled up, and marked
    for address, article in (("192.0.2.1", chinese[0]), ("192.0.2.2", chinese[0]),
                             ("192.0.2.1", chinese[1]), ("192.0.2.1", english[1])):
        read_article(app.test_client(), article.slug, address)
    html = client.get("/en/").text
    assert listed(html, "viewed-heading") == [("en", "English article 1"), ("zh", "中文文章 0"), ("zh", "中文文章 1")]
    chinese_home = client.get("/zh/").text
    assert listed(chinese_home, "viewed-heading")[:2] == [("zh", "中文文章 0"), ("zh", "中文文章 1")]
