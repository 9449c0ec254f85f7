"""The language of each page: from its address, then the visitor's choice, then the browser.

A page's language comes from its address (/zh/...), then the visitor's choice (the language
switch's cookie), then Accept-Language, then KB_DEFAULT_LANGUAGE.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

import pytest
from flask import url_for
from werkzeug.routing import BuildError

from kb import articles as kb_articles
from kb import search
from kb.db import session_scope
from kb.i18n import translations
from tests.conftest import csrf_token_from
from tests.test_portal import assert_clean_page
from tests.searchbackends import BACKENDS, backend_app

LANGUAGES = ("en", "zh", "nb")


@pytest.fixture
def app(request, app_factory):
    """Whoosh, unless a test asks for each search backend (parametrize "app" indirectly)."""
    return backend_app(request, app_factory, getattr(request, "param", "whoosh"))


@pytest.fixture
def corpus(app, make_article):
    """A few articles in each language, indexed."""
    made = [make_article("How do I reset my password?", slug="reset-password", category="Account",
                         body_md="Click **Forgot password** on the sign-in page."),
            make_article("Change your email address", slug="change-email", category="Account"),
            make_article("如何申请退款？", slug="zh-refund", lang="zh", category="退款",
                         body_md="在订单页面申请退款，退款将在五个工作日内到账。"),
            make_article("忘记密码了怎么办？", slug="zh-password", lang="zh", category="账户",
                         body_md="在登录页面点击“忘记密码”，按提示重置密码。"),
            make_article("Hvor lang tid tar leveringen?", slug="nb-levering", lang="nb", category="Frakt",
                         body_md="Pakker kommer fram innen tre virkedager.")]
    search.process_outbox(app)
    return made


def said(code: str, message: str) -> str:
    """``message`` as the catalog of ``code`` says it."""
    return translations(code).gettext(message)


@pytest.mark.parametrize("app", BACKENDS, indirect=True)
@pytest.mark.parametrize("code", LANGUAGES)
def test_each_page_speaks_the_language_of_its_address(client, corpus, code):
    pages = {"/": "Browse by topic", "/search?q=password": "Apply filters", "/search?q=xylophone": "Popular articles",
             "/categories/account": "Still need help?", "/articles/zh-refund": "Was this helpful?",
             "/nowhere": "Page not found"}
    for path, label in pages.items():
        response = client.get(f"/{code}{path}")
        assert_clean_page(response, 404 if path == "/nowhere" else 200)  # layout, CSP, nothing inline
        assert f'<html lang="{code}" dir="ltr">' in response.text, path
        assert said(code, label) in response.text, (path, label)
        assert said(code, "Help Centre") in response.text.split("</title>")[0]


class VisibleText(HTMLParser):
    """Text a visitor sees or hears: content, titles, placeholders and labels for screen readers."""

    ATTRIBUTES = ("placeholder", "aria-label", "title", "alt", "data-suggest-label", "data-suggest-status")

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        self.hidden += tag in ("script", "style")
        self.parts += [value for name, value in attrs if name in self.ATTRIBUTES and value]

    def handle_endtag(self, tag):
        self.hidden -= tag in ("script", "style")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def english_words(html: str) -> set[str]:
    """Latin-script words in what a visitor sees, less the language switch's native names."""
    parser = VisibleText()
    parser.feed(html)
    text = " ".join(parser.parts).replace("support@example.com", "")
    return set(re.findall(r"[A-Za-z][A-Za-zæøåÆØÅ]+", text)) - {"English", "Norsk", "bokmål"}


@pytest.mark.parametrize("app", BACKENDS, indirect=True)
def test_chinese_pages_have_no_english_left(app, client, make_article):
    make_article("如何申请退款？", slug="zh-refund", lang="zh", category="退款", body_md="在订单页面申请退款。")
    make_article("退款需要多长时间？", slug="zh-refund-time", lang="zh", category="退款", body_md="五个工作日内退款到账。")
    search.process_outbox(app)
    pages = ["/zh/", "/zh/search?q=退款", "/zh/search?q=退款&lang=zh&category=" + "退款", "/zh/search?q=火星",
             "/zh/search?q=退款&page=9", "/zh/categories/退款", "/zh/articles/zh-refund", "/zh/nowhere"]
    for path in pages:
        assert english_words(client.get(path).text) == set(), path
    token = csrf_token_from(client.get("/zh/articles/zh-refund").text)
    voted = client.post("/zh/articles/zh-refund/vote", data={"helpful": "yes", "csrf_token": token}, follow_redirects=True)
    assert said("zh", "Thanks for your feedback!") in voted.text and english_words(voted.text) == set()
    refused = client.post("/zh/articles/zh-refund/vote", data={"helpful": "yes"})  # no CSRF token
    assert refused.status_code == 400 and english_words(refused.text) == set()


@pytest.mark.parametrize("headers, cookie, default, expected", [
    ({}, None, "en", "/en/"),
    ({}, None, "nb", "/nb/"),
    ({"Accept-Language": "nb-NO,nb;q=0.9,en;q=0.5"}, None, "en", "/nb/"),
    ({"Accept-Language": "zh-Hans-CN"}, None, "en", "/zh/"),
    ({"Accept-Language": "no"}, None, "en", "/nb/"),
    ({"Accept-Language": "fr, de;q=0.8"}, None, "nb", "/nb/"),
    ({"Accept-Language": "fr, zh;q=0.1"}, None, "en", "/zh/"),
    ({"Accept-Language": "zh;q=0, nb;q=0.5"}, None, "en", "/nb/"),
    ({"Accept-Language": "nb"}, "zh", "en", "/zh/"),  # the visitor's own choice beats the browser's
    ({"Accept-Language": "nb"}, "klingon", "en", "/nb/"),
])
def test_an_address_without_a_language_goes_to_the_visitors(app_factory, headers, cookie, default, expected):
    client = app_factory(DEFAULT_LANGUAGE=default).test_client()
    if cookie:
        client.set_cookie("kb_lang", cookie)
    response = client.get("/", headers=headers)
    assert response.status_code == 302 and response.location == expected
    assert {"Accept-Language", "Cookie"} <= set(response.vary)


def test_the_address_beats_the_visitors_choice(client, corpus):
    client.set_cookie("kb_lang", "zh")
    html = client.get("/nb/search?q=password", headers={"Accept-Language": "zh"}).text
    assert '<html lang="nb" dir="ltr">' in html and said("nb", "Apply filters") in html


def switch_link(html: str, code: str) -> str:
    """The language switch's link to ``code``."""
    match = re.search(rf'<a href="([^"]+)" lang="{code}" hreflang="{code}" rel="nofollow"', html)
    assert match, f"no switch link to {code}"
    return match.group(1).replace("&amp;", "&")


def test_the_language_switch_keeps_the_page_and_remembers_the_choice(client, corpus):
    page = client.get("/en/search?q=password&category=account&page=1").text
    response = client.get(switch_link(page, "nb"))
    assert response.status_code == 303
    assert urlsplit(response.location).path == "/nb/search"
    assert set(urlsplit(response.location).query.split("&")) == {"q=password", "category=account", "page=1"}
    cookie = client.get_cookie("kb_lang")
    assert cookie.value == "nb" and cookie.http_only and cookie.same_site == "Lax"
    assert client.get("/").location == "/nb/"
    assert client.get("/articles/change-email").location == "/nb/articles/change-email"
    # A shared link still shows what its sender saw.
    assert '<html lang="zh"' in client.get("/zh/articles/change-email").text
    article = client.get("/zh/articles/change-email").text
    assert urlsplit(client.get(switch_link(article, "en")).location).path == "/en/articles/change-email"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/nb/", "/nb//evil.example",
                                    "/\\evil.example", "/nb/\\evil.example", "/zh/", "javascript:alert(1)",
                                    "/nb/\r\nSet-Cookie: x=1", " /nb/", "/nb", "/nb/%0d%0a", ""])
def test_the_language_switch_never_leaves_the_site(client, target):
    response = client.get("/language/nb", query_string={"next": target})
    assert response.status_code == 303
    parts = urlsplit(response.location)
    assert not parts.scheme and not parts.netloc and response.location.startswith("/nb/")
    assert "\\" not in response.location and "\n" not in response.location
    assert response.location in (target, "/nb/")


def test_an_unknown_language_is_not_a_page(client):
    assert client.get("/language/xx").status_code == 404
    assert client.get("/xx/search?q=refund").status_code == 404
    assert client.get("/fr/").status_code == 404


@pytest.mark.parametrize("old, headers, new", [
    ("/articles/reset-password", {}, "/en/articles/reset-password"),
    ("/articles/reset-password", {"Accept-Language": "zh-CN"}, "/zh/articles/reset-password"),
    ("/categories/account", {}, "/en/categories/account"),
    ("/?lang=zh", {}, "/zh/"),
    ("/?lang=all", {"Accept-Language": "nb"}, "/nb/"),
    ("/search?q=refund&lang=no", {}, "/nb/search?q=refund&lang=no"),
    ("/search?q=refund&page=2", {}, "/en/search?q=refund&page=2"),
    ("/categories/account?lang=nb", {}, "/nb/categories/account"),
])
def test_old_addresses_go_to_the_same_page_with_a_language(client, corpus, old, headers, new):
    response = client.get(old, headers=headers)
    assert response.status_code == 302 and response.location == new
    assert client.get(new, headers=headers).status_code == 200


def test_a_vote_form_from_before_the_move_still_records(client, corpus):
    token = csrf_token_from(client.get("/en/articles/reset-password").text)
    response = client.post("/articles/reset-password/vote", data={"helpful": "yes", "csrf_token": token})
    assert response.status_code == 307 and response.location == "/en/articles/reset-password/vote"
    assert "Thanks for your feedback!" in client.post(response.location, data={"helpful": "yes", "csrf_token": token},
                                                      follow_redirects=True).text


def alternate_links(html: str) -> dict[str, str]:
    """hreflang -> href of the page's alternate links."""
    return dict(re.findall(r'<link rel="alternate" hreflang="([^"]+)" href="([^"]+)">', html))


def test_pages_in_every_language_name_their_alternates(app_factory, make_article):
    client = app_factory(BASE_URL="https://help.example.com").test_client()
    base = "https://help.example.com"
    assert alternate_links(client.get("/zh/").text) == {
        "en": f"{base}/en/", "zh": f"{base}/zh/", "nb": f"{base}/nb/", "x-default": f"{base}/"}
    make_article("Reset your password", slug="reset", category="Account")
    assert alternate_links(client.get("/nb/categories/account").text) == {
        "en": f"{base}/en/categories/account", "zh": f"{base}/zh/categories/account",
        "nb": f"{base}/nb/categories/account", "x-default": f"{base}/categories/account"}
    article = client.get("/nb/articles/reset").text
    assert alternate_links(article) == {}  # one text: its canonical address is in its own language
    assert f'<link rel="canonical" href="{base}/en/articles/reset">' in article


def test_dates_and_counts_follow_the_language(client, corpus):
    assert re.search(r"更新于 \d{4}年\d{1,2}月\d{1,2}日", client.get("/zh/articles/zh-refund").text)
    assert re.search(r"Oppdatert \d{1,2}\. \w+ \d{4}", client.get("/nb/articles/nb-levering").text)
    assert "2 artikler" in client.get("/nb/categories/account").text
    assert "1 artikkel<" in client.get("/nb/").text


def test_api_errors_speak_the_clients_language(client, corpus):
    response = client.get("/api/search?q=refund&lang=klingon", headers={"Accept-Language": "zh-CN"})
    assert response.status_code == 400 and "未知语言“klingon”" in response.get_json()["error"]
    client.set_cookie("kb_lang", "nb")
    assert "Ukjent språk «klingon»" in client.get("/api/search?q=refund&lang=klingon").get_json()["error"]
    assert client.get("/api/nowhere").get_json()["error"] == said("nb", (
        "We could not find this page. It may have moved, or the address may be mistyped."))


def test_a_server_error_page_speaks_the_visitors_language(app_factory):
    app = app_factory()
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: a page, not a traceback

    def broken(lang_code):
        raise RuntimeError("boom")

    app.add_url_rule("/<lang:lang_code>/broken", "broken", broken)
    response = app.test_client().get("/nb/broken")
    assert response.status_code == 500 and '<html lang="nb"' in response.text
    assert said("nb", "Something went wrong") in response.text and "boom" not in response.text


def test_editor_pages_stay_in_english_until_they_are_translated(client):
    client.set_cookie("kb_lang", "zh")
    html = client.get("/agent/login", headers={"Accept-Language": "zh"}).text
    assert '<html lang="en" dir="ltr">' in html


def test_mail_feedback_page_speaks_the_emails_language_not_the_browsers(app, client):
    from tests.test_autoreply_links import path_of, replied_record
    from kb.autoreply import links
    from tests.conftest import TEST_SECRET

    solved, _help = links.make_feedback_urls("http://127.0.0.1:5000", TEST_SECRET, replied_record(app, lang="zh"))
    html = client.get(path_of(solved), headers={"Accept-Language": "nb"}).text
    assert '<html lang="zh" dir="ltr">' in html and "是的，已解决" in html


def test_the_page_does_not_stick_to_the_language_of_a_previous_request(app, client, corpus):
    # One app context held across requests, as some tests do: each request still picks its own.
    with app.app_context():
        assert '<html lang="zh"' in client.get("/zh/").text
        assert '<html lang="nb"' in client.get("/nb/").text


SITEMAP_NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9", "x": "http://www.w3.org/1999/xhtml"}


def sitemap_urls(client, path: str) -> dict[str, tuple[str, dict[str, str]]]:
    """loc -> (lastmod, {hreflang: href}) of one sitemap."""
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "application/xml"
    root = ET.fromstring(response.data)
    return {u.findtext("s:loc", namespaces=SITEMAP_NS): (
                u.findtext("s:lastmod", namespaces=SITEMAP_NS),
                {link.get("hreflang"): link.get("href") for link in u.findall("x:link", SITEMAP_NS)})
            for u in root.findall("s:url", SITEMAP_NS)}


def test_sitemap_index_lists_one_sitemap_per_language(app_factory):
    app = app_factory(BASE_URL="https://help.example.com/")
    with session_scope(app) as s:
        kb_articles.create_article(s, kb_articles.ArticleDraft("Public", "x", category="Returns & Refunds"), status="published")
        kb_articles.create_article(s, kb_articles.ArticleDraft("公开", "x", lang="zh", slug="gongkai", category="Returns & Refunds"),
                                   status="published")
        kb_articles.create_article(s, kb_articles.ArticleDraft("Hidden", "x", category="Secret"), status="draft")
    client = app.test_client()
    index = ET.fromstring(client.get("/sitemap.xml").data)
    assert [loc.text for loc in index.iter(f"{{{SITEMAP_NS['s']}}}loc")] == [
        "https://help.example.com/en/sitemap.xml", "https://help.example.com/zh/sitemap.xml",
        "https://help.example.com/nb/sitemap.xml"]
    english, chinese, norwegian = (sitemap_urls(client, f"/{code}/sitemap.xml") for code in ("en", "zh", "nb"))
    base = "https://help.example.com"
    assert set(english) == {f"{base}/en/", f"{base}/en/categories/returns-refunds", f"{base}/en/articles/public"}
    assert set(chinese) == {f"{base}/zh/", f"{base}/zh/categories/returns-refunds", f"{base}/zh/articles/gongkai"}
    assert set(norwegian) == {f"{base}/nb/"}  # no Norwegian articles yet: only its home page
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", lastmod) for lastmod, _ in english.values())
    assert english[f"{base}/en/"][1] == {"en": f"{base}/en/", "zh": f"{base}/zh/", "nb": f"{base}/nb/"}
    assert english[f"{base}/en/categories/returns-refunds"][1] == {
        "en": f"{base}/en/categories/returns-refunds", "zh": f"{base}/zh/categories/returns-refunds"}
    assert english[f"{base}/en/articles/public"][1] == {}


def test_url_for_adds_the_language_to_a_route_added_after_it_built_others(app_factory):
    # has_language keeps its answer per endpoint: a route added later must still get its language.
    app = app_factory(LANGUAGES="en,zh")
    with app.test_request_context("/zh/search?q=x"):
        assert (url_for("portal.home"), url_for("static", filename="site.css")) == ("/zh/", "/static/site.css")
        with pytest.raises(BuildError):  # asked before it exists: no language, and no such route yet
            url_for("late")
    app.add_url_rule("/<lang:lang_code>/late", "late", lambda lang_code: lang_code)
    app.add_url_rule("/plain", "plain", lambda: "")
    with app.test_request_context("/zh/search?q=x"):
        assert (url_for("late"), url_for("plain"), url_for("portal.home")) == ("/zh/late", "/plain", "/zh/")
    with app.test_request_context("/en/search?q=x"):
        assert url_for("late", q="a b") == "/en/late?q=a+b"
