"""The editor flows through the test client: list, write, preview, publish, slugs and revisions."""

from __future__ import annotations

import re

import pytest

from kb import search
from kb.db import session_scope
from kb.models import Article
from tests.agent_helpers import created_id, login, make_agent, post_form, save_edit, save_new


@pytest.fixture
def agent_client(app, client):
    """A client logged in as an editor."""
    make_agent(app, name="Edith Editor")
    assert login(client).status_code == 302
    return client


def article_row(app, article_id: int) -> Article:
    """The article as stored."""
    with session_scope(app) as session:
        article = session.get(Article, article_id)
        session.expunge(article)
        return article


def test_new_article_form_offers_the_configured_languages(agent_client):
    page = agent_client.get("/agent/articles/new").text
    for code in ("en", "zh", "nb"):
        assert f'<option value="{code}"' in page or f'<option selected value="{code}"' in page
    assert 'data-preview-url="/agent/preview"' in page
    assert 'src="/static/editor.js"' in page


def test_draft_is_not_on_the_portal_until_published(app, agent_client):
    response = save_new(agent_client, title="Change your delivery address")
    article_id = created_id(response)
    article = article_row(app, article_id)
    assert article.status == "draft" and article.slug == "change-your-delivery-address"
    assert article.author_id is not None
    assert "Draft saved" in agent_client.get(response.location).text
    assert agent_client.get("/en/articles/change-your-delivery-address").status_code == 404

    response = save_edit(agent_client, article_id, "publish", title="Change your delivery address")
    assert article_row(app, article_id).status == "published"
    page = agent_client.get(response.location).text
    assert 'Published — <a href="/en/articles/change-your-delivery-address">view on the portal</a>' in page
    portal = agent_client.get("/en/articles/change-your-delivery-address")
    assert portal.status_code == 200 and "Change your delivery address" in portal.text


def test_published_article_is_findable_in_search(app, agent_client):
    save_new(agent_client, "publish", title="Track your parcel", body_md="Use the tracking number in your email.\n")
    search.process_outbox(app)
    response = agent_client.get("/api/search?q=tracking+number")
    assert [r["slug"] for r in response.json["results"]] == ["track-your-parcel"]


def test_unpublish_and_archive_take_the_article_off_the_portal(app, agent_client):
    article_id = created_id(save_new(agent_client, "publish", title="Gift cards"))
    assert agent_client.get("/en/articles/gift-cards").status_code == 200
    save_edit(agent_client, article_id, "unpublish", title="Gift cards")
    assert article_row(app, article_id).status == "draft"
    assert agent_client.get("/en/articles/gift-cards").status_code == 404
    save_edit(agent_client, article_id, "archive", title="Gift cards")
    assert article_row(app, article_id).status == "archived"
    assert agent_client.get("/en/articles/gift-cards").status_code == 404


def test_title_change_keeps_the_slug(app, agent_client):
    article_id = created_id(save_new(agent_client, "publish", title="Return an item"))
    # The article is live, so the change goes live with "Publish changes" ("Save" would keep it as a draft).
    save_edit(agent_client, article_id, "publish", title="Return an item you bought online", slug="return-an-item")
    article = article_row(app, article_id)
    assert article.title == "Return an item you bought online" and article.slug == "return-an-item"


def test_saving_over_a_newer_revision_is_refused_and_keeps_the_text(app, agent_client):
    article_id = created_id(save_new(agent_client, title="Return an item"))
    url = f"/agent/articles/{article_id}/edit"
    opened = re.search(r'name="base_revision"[^>]*value="(\d+)"', agent_client.get(url).text)
    assert opened and opened.group(1) == "1"
    save_edit(agent_client, article_id, title="Return an item", body_md="A colleague's newer text.\n")
    stale = save_edit(agent_client, article_id, title="Return an item", body_md="My older edit.\n",
                      base_revision=opened.group(1))
    assert stale.status_code == 422 and "Someone else saved this article (revision 2)" in stale.text
    assert "My older edit." in stale.text  # nothing typed is lost
    assert article_row(app, article_id).body_md == "A colleague's newer text.\n"
    fresh = save_edit(agent_client, article_id, title="Return an item", body_md="My edit, rebased.\n",
                      base_revision="2")
    assert fresh.status_code == 302 and article_row(app, article_id).body_md == "My edit, rebased.\n"


def test_slug_change_redirects_the_old_address(app, agent_client):
    article_id = created_id(save_new(agent_client, "publish", title="Return an item"))
    save_edit(agent_client, article_id, "publish", title="Return an item", slug="returns")
    assert article_row(app, article_id).slug == "returns"
    response = agent_client.get("/en/articles/return-an-item")
    assert response.status_code == 301 and response.location.endswith("/en/articles/returns")
    assert agent_client.get("/en/articles/returns").status_code == 200


def test_validation_errors_are_shown_and_input_kept(app, agent_client):
    response = save_new(agent_client, title="   ", body_md="My *carefully* written text\n", tags="alpha, beta")
    assert response.status_code == 422
    assert "title is empty" in response.text
    assert "My *carefully* written text" in response.text and 'value="alpha, beta"' in response.text
    response = save_new(agent_client, title="Bad slug", slug="Not A Slug!")
    assert response.status_code == 422 and "lowercase letters" in response.text


def test_duplicate_slug_is_refused_on_edit(app, agent_client):
    created_id(save_new(agent_client, title="First"))
    second = created_id(save_new(agent_client, title="Second"))
    response = save_edit(agent_client, second, title="Second", slug="first")
    assert response.status_code == 422 and "already used" in response.text
    assert article_row(app, second).slug == "second"


def test_preview_endpoint_returns_sanitised_html(agent_client):
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', agent_client.get("/agent/articles/new").text).group(1)
    body = "# Hello\n\n<script>alert(1)</script>\n\n[x](javascript:alert(2)) <img src=x onerror=alert(3)>"
    response = agent_client.post("/agent/preview", json={"body_markdown": body}, headers={"X-CSRFToken": csrf})
    assert response.status_code == 200
    html = response.json["html"]
    assert "<h1" in html and "Hello" in html
    assert "<script" not in html and "javascript:" not in html and "onerror" not in html
    bad = agent_client.post("/agent/preview", json={"markdown": 1}, headers={"X-CSRFToken": csrf})
    assert bad.status_code == 400 and bad.json["error"]


def test_preview_button_works_without_javascript(app, agent_client):
    body = "## Shipping times\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    response = save_new(agent_client, "preview", title="Draft title", body_md=body, category="Delivery", tags="shipping")
    assert response.status_code == 200
    preview = response.text.split('id="preview"', 1)[1]
    assert "<h2" in preview and "Shipping times" in preview and "<table>" in preview
    assert 'value="Draft title"' in response.text and 'value="Delivery"' in response.text
    assert 'value="shipping"' in response.text
    with session_scope(app) as session:
        assert session.query(Article).count() == 0  # preview saves nothing


def test_preview_on_edit_keeps_unsaved_changes(app, agent_client):
    article_id = created_id(save_new(agent_client, title="Opening hours", body_md="Mon-Fri\n"))
    response = save_edit(agent_client, article_id, "preview", title="Opening hours", body_md="Mon-Sat **9-17**\n")
    assert "<strong>9-17</strong>" in response.text
    assert article_row(app, article_id).body_md == "Mon-Fri\n"


def test_article_list_filters(app, agent_client, make_article):
    make_article("Refund policy", category="Billing", lang="en")
    make_article("Slik får du refusjon", category="Billing", lang="nb")
    make_article("Draft about delivery", category="Delivery", status="draft")
    listing = agent_client.get("/agent/").text
    assert all(t in listing for t in ("Refund policy", "Slik får du refusjon", "Draft about delivery"))

    def titles(query: str) -> set[str]:
        page = agent_client.get("/agent/?" + query).text
        return {t for t in ("Refund policy", "Slik får du refusjon", "Draft about delivery") if t in page}

    assert titles("status=draft") == {"Draft about delivery"}
    assert titles("lang=nb") == {"Slik får du refusjon"}
    assert titles("category=Billing") == {"Refund policy", "Slik får du refusjon"}
    assert titles("q=REFUND") == {"Refund policy"}
    assert titles("q=slik-far") == {"Slik får du refusjon"}  # the slug matches too
    assert titles("q=%25") == set()  # a LIKE wildcard is taken literally


def test_article_list_paginates(app, agent_client, make_article):
    for n in range(30):
        make_article(f"Numbered article {n:02d}")
    first = agent_client.get("/agent/?q=numbered").text
    assert "30 articles" in first and "Page 1 of 2" in first
    assert 'href="/agent/?page=2&amp;q=numbered"' in first
    second = agent_client.get("/agent/?q=numbered&page=2").text
    assert second.count("Numbered article") == 5
    assert agent_client.get("/agent/?page=999").status_code == 200


def test_each_save_adds_a_revision_and_the_diff_shows_it(app, agent_client):
    article_id = created_id(save_new(agent_client, title="Passwords", body_md="Line one\nLine two\n"))
    save_edit(agent_client, article_id, title="Passwords", body_md="Line one\nLine 2\n", note="Fix numbering")
    save_edit(agent_client, article_id, title="Passwords", body_md="Line one\nLine 2\n")  # nothing changed
    save_edit(agent_client, article_id, title="Passwords and logins", body_md="Line one\nLine 2\n")
    page = agent_client.get(f"/agent/articles/{article_id}/revisions").text
    assert "Fix numbering" in page and "Edith Editor" in page
    assert len(re.findall(r"<tr>\s*<td>\d", page)) == 3
    diff = agent_client.get(f"/agent/articles/{article_id}/revisions?a=1&b=2").text
    assert '<li class="diff-del"><code>-Line two</code></li>' in diff
    assert '<li class="diff-add"><code>+Line 2</code></li>' in diff
    diff = agent_client.get(f"/agent/articles/{article_id}/revisions?a=1&b=3").text
    assert '<li class="diff-add"><code>+Title: Passwords and logins</code></li>' in diff
    assert agent_client.get(f"/agent/articles/{article_id}/revisions?a=1&b=9").status_code == 404


def test_restore_creates_a_new_revision_with_the_old_content(app, agent_client):
    article_id = created_id(save_new(agent_client, title="Passwords", body_md="Original text\n"))
    save_edit(agent_client, article_id, title="Passwords", body_md="Rewritten text\n")
    url = f"/agent/articles/{article_id}/revisions"
    response = post_form(agent_client, f"{url}/1/restore", {}, form_page=url)
    assert response.status_code == 302
    assert "Restored revision 1 as revision 3" in agent_client.get(response.location).text
    with session_scope(app) as session:
        article = session.get(Article, article_id)
        assert article.body_md == "Original text\n"
        assert [(r.number, r.body_md) for r in article.revisions] == [
            (1, "Original text\n"), (2, "Rewritten text\n"), (3, "Original text\n")]
    again = post_form(agent_client, f"{url}/3/restore", {}, form_page=url)
    assert "nothing to restore" in agent_client.get(again.location).text


def test_unknown_article_is_404(agent_client):
    assert agent_client.get("/agent/articles/999/edit").status_code == 404
    assert agent_client.get("/agent/articles/999/revisions").status_code == 404
