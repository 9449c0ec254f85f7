"""The JSON API is a stable contract: exact keys and types, clear errors, never a 500."""

from __future__ import annotations

import re

from datetime import datetime

import pytest
import sqlalchemy as sa
from urllib.parse import quote

from kb import articles as kb_articles
from kb import search
from kb.db import session_scope
from kb.models import Article, SearchLog

SEARCH_KEYS = {"query", "total", "page", "per_page", "pages", "results", "suggestion", "corrected"}
RESULT_KEYS = {"slug", "title", "url", "snippet", "score", "lang", "category"}
ARTICLE_KEYS = {"slug", "title", "lang", "category", "tags", "body_markdown", "body_html", "updated_at"}
HOSTILE = ['"unbalanced', "'", "AND", "OR", "NOT", "AND OR NOT", "title:(", "body:)", "*", "?*", "~", "^2",
           "x" * 2000, "a\x00b", "\x00", "((((((", "[a TO", "{}", "\\", "%", "<script>alert(1)</script>",
           "退款 OR", "pass*word", "'; DROP TABLE articles; --", "\u202e\u200b", "🔥" * 50]


@pytest.fixture
def corpus(app, make_article):
    """A few published articles (and a draft), indexed."""
    make_article("How do I reset my password?", slug="reset-password", category="Account", tags=["login", "password"],
                 body_md="Click **Forgot password** on the sign-in page.")
    make_article("Change your email address", slug="change-email", category="Account", tags=["email", "password"],
                 body_md="Change the email in your settings. Your password stays the same.")
    make_article("Password rules", slug="password-rules", category="Account",
                 body_md="A password needs at least 10 characters.")
    make_article("如何申请退款？", slug="zh-refund", lang="zh", category="Returns & Refunds", body_md="在订单页面申请退款。")
    make_article("Jeg har glemt passordet mitt", slug="nb-passord", lang="nb", category="Account",
                 body_md="Trykk på «Glemt passord».")
    make_article("Draft password tips", slug="draft-tips", status="draft", body_md="password secrets")
    search.process_outbox(app)


def check_search_shape(data: dict) -> None:
    """Exactly the contract's keys and types."""
    assert set(data) == SEARCH_KEYS
    assert isinstance(data["query"], str) and isinstance(data["total"], int)
    assert all(type(data[k]) is int for k in ("page", "per_page", "pages"))
    assert data["suggestion"] is None or isinstance(data["suggestion"], str)
    assert type(data["corrected"]) is bool and (data["suggestion"] is not None or not data["corrected"])
    assert isinstance(data["results"], list)
    for result in data["results"]:
        assert set(result) == RESULT_KEYS
        assert all(isinstance(result[k], str) for k in RESULT_KEYS - {"score"})
        assert isinstance(result["score"], float)


def test_search_shape_and_values(client, corpus, session):
    response = client.get("/api/search?q=password")
    assert response.status_code == 200 and response.mimetype == "application/json"
    data = response.get_json()
    check_search_shape(data)
    assert data["query"] == "password" and data["suggestion"] is None
    slugs = [r["slug"] for r in data["results"]]
    assert data["total"] == len(slugs) == 3 and "draft-tips" not in slugs
    first = data["results"][0]
    assert first["url"] == f"http://127.0.0.1:5000/{first['lang']}/articles/{first['slug']}"
    assert "<mark>" in first["snippet"].lower()
    assert first["lang"] == "en" and first["category"] == "Account"
    scores = [r["score"] for r in data["results"]]
    assert scores == sorted(scores, reverse=True)
    search.flush_log(client.application)  # an API search's log row waits in memory (kb.insights.logbuffer)
    assert session.scalar(sa.select(SearchLog.results).where(SearchLog.query == "password")) == 3


def test_search_url_uses_base_url(app_factory):
    app = app_factory(BASE_URL="https://help.example.com/")
    with session_scope(app) as s:
        kb_articles.create_article(s, kb_articles.ArticleDraft("Gift cards", "Gift cards never expire."), status="published")
    search.process_outbox(app)
    [result] = app.test_client().get("/api/search?q=gift").get_json()["results"]
    assert result["url"] == "https://help.example.com/en/articles/gift-cards"


def test_search_limit_and_page(client, corpus):
    def slugs(query: str) -> list[str]:
        data = client.get("/api/search?q=password&" + query).get_json()
        check_search_shape(data)
        assert data["total"] == 3
        return [r["slug"] for r in data["results"]]

    everything = slugs("")
    assert len(everything) == 3
    assert slugs("limit=1") == everything[:1]
    assert slugs("limit=1&page=2") == everything[1:2]
    assert slugs("per_page=1&page=3") == everything[2:]
    assert slugs("limit=2&page=2") == everything[2:]
    assert slugs("limit=2&page=9") == []  # past the last page: no results, not an error
    assert slugs("limit=50&page=100") == []


@pytest.mark.parametrize("query, paging", [
    ("", (1, 10, 1)), ("limit=1", (1, 1, 3)), ("limit=2&page=2", (2, 2, 2)), ("per_page=50", (1, 50, 1)),
    ("limit=2&page=9", (9, 2, 2)), ("page=&limit=", (1, 10, 1)),
])
def test_search_says_its_page_page_size_and_page_count(client, corpus, query, paging):
    data = client.get("/api/search?q=password&" + query).get_json()
    assert (data["page"], data["per_page"], data["pages"]) == paging and data["total"] == 3


def test_an_empty_search_has_paging_too(client, corpus):
    data = client.get("/api/search?q=&limit=5&page=2").get_json()
    assert (data["page"], data["per_page"], data["pages"], data["total"]) == (2, 5, 0, 0)


# (A NUL reads as a blank everywhere in kb (kb.web.security), so page=%00 is like an empty page=.)
BAD_NUMBERS = ["abc", "-1", "0", "1.5", "1e3", "2.0", "0x10", "+1", "\u0661", "99999999999999999999", "9" * 2000,
               "NaN", "1 2", "1\x002", "101", "51", "21"]


@pytest.mark.parametrize("path, name, high", [("/api/search?q=password", "page", 100),
                                              ("/api/search?q=password", "limit", 50),
                                              ("/api/search?q=password", "per_page", 50),
                                              ("/api/search?q=", "page", 100),
                                              ("/api/suggest?q=pass", "limit", 20)])
def test_a_bad_number_is_a_400_that_names_the_parameter(client, corpus, path, name, high):
    for value in BAD_NUMBERS:
        if value.isdigit() and int(value) <= high:
            continue  # in range for this parameter (e.g. limit=21 on search)
        response = client.get(f"{path}&{name}={quote(value)}")
        assert response.status_code == 400, (name, value, response.get_json())
        assert f"The {name} parameter must be a whole number from 1 to {high}" in response.get_json()["error"]


@pytest.mark.parametrize("query", ["q=password&q=email", "q=password&page=1&page=2", "q=password&limit=1&limit=2",
                                   "q=password&lang=en&lang=zh", "q=password&limit=2&per_page=2"])
def test_a_parameter_given_twice_is_a_400(client, corpus, query):
    for path in ("/api/search", "/api/suggest"):
        if ("per_page" in query or "page=" in query) and path == "/api/suggest":
            continue
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)
        assert "once" in response.get_json()["error"] or "not both" in response.get_json()["error"]


def test_search_limit_is_at_most_50(app_factory):
    app = app_factory()
    with session_scope(app) as s:
        for n in range(55):
            kb_articles.create_article(s, kb_articles.ArticleDraft(f"Lantern {n}", "A lantern."), status="published")
    search.process_outbox(app)
    client = app.test_client()
    data = client.get("/api/search?q=lantern&limit=50").get_json()
    assert data["total"] == 55 and len(data["results"]) == 50 and data["pages"] == 2
    assert client.get("/api/search?q=lantern&limit=500").status_code == 400


def test_search_language(client, corpus):
    data = client.get("/api/search?q=退款&lang=zh").get_json()
    assert [r["slug"] for r in data["results"]] == ["zh-refund"]
    data = client.get("/api/search?q=passord&lang=no").get_json()
    assert [r["slug"] for r in data["results"]] == ["nb-passord"]
    response = client.get("/api/search?q=password&lang=klingon")
    assert response.status_code == 400 and "klingon" in response.get_json()["error"]


def test_search_suggestion(client, corpus):
    data = client.get("/api/search?q=pasword").get_json()
    check_search_shape(data)
    assert data["suggestion"] == "password" and data["corrected"] is True  # the results are for "password"
    assert data["total"] == 3


@pytest.mark.parametrize("q", ["", "   ", "\x00"])
def test_empty_search(client, corpus, session, q):
    response = client.get("/api/search", query_string={"q": q})
    assert response.status_code == 200
    assert response.get_json() == {"query": "", "total": 0, "page": 1, "per_page": 10, "pages": 0, "results": [],
                                   "suggestion": None, "corrected": False}
    search.flush_log(client.application)
    assert session.scalar(sa.select(sa.func.count(SearchLog.id))) == 0


def test_missing_q_is_an_empty_search(client, corpus):
    assert client.get("/api/search").get_json()["total"] == 0


@pytest.mark.parametrize("q", HOSTILE)
def test_hostile_queries_never_fail(client, corpus, q):
    response = client.get("/api/search", query_string={"q": q})
    assert response.status_code == 200
    check_search_shape(response.get_json())
    response = client.get("/api/suggest", query_string={"q": q})
    assert response.status_code == 200 and set(response.get_json()) == {"query", "suggestions"}


def test_article_shape(client, corpus, session):
    response = client.get("/api/articles/reset-password")
    assert response.status_code == 200
    data = response.get_json()
    assert set(data) == ARTICLE_KEYS
    assert data["slug"] == "reset-password" and data["title"] == "How do I reset my password?"
    assert (data["lang"], data["category"], data["tags"]) == ("en", "Account", ["login", "password"])
    assert data["body_markdown"] == "Click **Forgot password** on the sign-in page.\n"
    assert data["body_html"] == "<p>Click <strong>Forgot password</strong> on the sign-in page.</p>"
    stored = session.scalar(sa.select(Article.updated_at).where(Article.slug == "reset-password"))
    assert datetime.fromisoformat(data["updated_at"]) == stored


def test_article_html_is_sanitised(client, session, make_article):
    make_article("Nasty", slug="nasty", body_md='<script>alert(1)</script>\n\n[x](javascript:alert(1)) <img src=x onerror=alert(1)>')
    body = client.get("/api/articles/nasty").get_json()["body_html"].lower()
    assert "<script" not in body and "javascript:" not in body and "onerror" not in body


@pytest.mark.parametrize("slug", ["no-such-article", "draft-tips", "x" * 500])
def test_unknown_or_unpublished_article_is_404_json(client, corpus, slug):
    response = client.get(f"/api/articles/{slug}")
    assert response.status_code == 404 and response.mimetype == "application/json"
    assert set(response.get_json()) == {"error"} and response.get_json()["error"]


def test_old_slug_redirects_to_the_new_article(client, corpus, session):
    article = session.scalar(sa.select(Article).where(Article.slug == "change-email"))
    kb_articles.update_article(session, article, kb_articles.ArticleDraft(
        article.title, article.body_md, article.lang, article.category, article.tags, slug="update-email"))
    session.commit()
    response = client.get("/api/articles/change-email")
    assert response.status_code == 301 and response.headers["Location"] == "/api/articles/update-email"
    assert client.get("/api/articles/change-email", follow_redirects=True).get_json()["slug"] == "update-email"


def test_suggest_shape(client, corpus):
    response = client.get("/api/suggest?q=pass")
    assert response.status_code == 200
    data = response.get_json()
    assert set(data) == {"query", "suggestions"} and data["query"] == "pass"
    assert data["suggestions"], "a prefix of a title word should suggest something"
    for item in data["suggestions"]:
        assert set(item) == {"title", "slug", "url"}
        assert re.fullmatch(rf"http://127\.0\.0\.1:5000/(en|zh|nb)/articles/{item['slug']}", item["url"])
    assert "draft-tips" not in [i["slug"] for i in data["suggestions"]]
    assert "reset-password" in [i["slug"] for i in data["suggestions"]]


def test_suggest_empty_and_limited(client, corpus):
    assert client.get("/api/suggest?q=").get_json() == {"query": "", "suggestions": []}
    assert len(client.get("/api/suggest?q=pass&limit=1").get_json()["suggestions"]) == 1


def test_unknown_api_route_is_json_404(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404 and "error" in response.get_json()


def test_api_responses_carry_the_csp(client, corpus):
    assert "default-src 'self'" in client.get("/api/search?q=password").headers["Content-Security-Policy"]
