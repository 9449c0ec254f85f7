"""Rendered HTML is kept with the article: page views read it, and a poison article's pages still work."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from kb import render_cache, search
from kb.articles import ArticleDraft, create_article
from kb.content import import_path
from kb.db import session_scope
from kb.models import Article
from kb.search import feed, follower
from kb.render_limits import MAX_BODY_CHARS
from kb.rendering import RENDERER_VERSION
from tests.agent_helpers import save_edit
from tests.test_agent_editor import agent_client  # noqa: F401  (fixture)
from tests.test_agent_editor import article_row as stored
from tests.test_postgres import db_app, db_url  # noqa: F401  (fixtures: SQLite and PostgreSQL)
from tests.poison import NAMED, POISON
from tests.test_rendering import assert_inert
from tests.test_search_index import outbox_size


def set_columns(app, article_id: int, **values) -> None:
    """Change an article's columns behind kb's back, as another tool or an older kb would."""
    with session_scope(app) as session:
        session.execute(sa.update(Article).where(Article.id == article_id).values(**values))


def test_saving_renders_once_and_page_views_read_the_cached_html(app, client, make_article):
    article = make_article("Boots", body_md="Wax the *leather*.")
    row = stored(app, article.id)
    assert row.body_html == "<p>Wax the <em>leather</em>.</p>" and row.body_text == "Wax the leather."
    assert render_cache.is_current(row) and row.render_error == ""
    # Proof that views do not render: they show what the cache holds.
    set_columns(app, article.id, body_html="<p>from the cache</p>")
    for _ in range(8):
        assert "from the cache" in client.get("/en/articles/boots").text
    assert client.get("/api/articles/boots").json["body_html"] == "<p>from the cache</p>"


def test_a_body_changed_behind_kbs_back_is_rendered_once_and_queued_for_search(app, client, make_article):
    article = make_article("Tent", body_md="Old text.")
    search.process_outbox(app)
    set_columns(app, article.id, body_md="New *text*.\n")
    assert "<em>text</em>" in client.get("/en/articles/tent").text
    assert render_cache.is_current(stored(app, article.id))
    assert outbox_size(app) == 1  # queued for search


def test_cache_of_an_older_renderer_is_served_then_made_again_at_start(app_factory, make_article):
    app = app_factory()
    article = make_article("Gloves", body_md="Keep *warm*.")
    old_key = "kb-0 markdown-1.0#" + render_cache.body_digest("Keep *warm*.\n")
    set_columns(app, article.id, body_html="<p>made by an older kb</p>", render_key=old_key)
    assert "made by an older kb" in app.test_client().get("/en/articles/gloves").text  # same body: served
    restarted = app_factory()  # start-up queues it again
    search.process_outbox(restarted)
    row = stored(restarted, article.id)
    assert row.render_key.startswith(RENDERER_VERSION + "#") and "<em>warm</em>" in row.body_html


def test_missing_cache_after_the_upgrade_is_filled_at_start(app_factory, make_article):
    app = app_factory()
    article = make_article("Socks", body_md="Wool **socks**.")
    set_columns(app, article.id, body_html=None, body_text=None, render_key=None)
    search.process_outbox(app_factory())
    assert stored(app, article.id).body_html == "<p>Wool <strong>socks</strong>.</p>"


@pytest.mark.parametrize("name", NAMED)
def test_poison_article_page_is_served_as_escaped_text(app, client, make_article, name):
    make_article("Poison", body_md=POISON[name])
    for url in ("/en/articles/poison", "/api/articles/poison"):
        response = client.get(url)
        assert response.status_code == 200, url
    page = client.get("/en/articles/poison").text
    body = re.split(r'<div class="article-body"[^>]*>', page, maxsplit=1)[1].split('<section class="feedback"', 1)[0]
    assert_inert(body)
    if name != "thematic-breaks":  # that one may render in time on a fast machine
        assert '<div class="render-fallback">' in body


@pytest.mark.parametrize("name", NAMED)
def test_editor_opens_a_poison_article_and_says_what_to_change(app, agent_client, make_article, name):
    article = make_article("Poison", body_md=POISON[name])
    response = agent_client.get(f"/agent/articles/{article.id}/edit")
    assert response.status_code == 200
    notice = re.search(r'<p class="render-notice" id="preview-problem" role="status"( hidden)?>([^<]*)</p>',
                       response.text)
    assert notice, "no notice element beside the preview"
    if name != "thematic-breaks":
        assert notice.group(1) is None and len(notice.group(2)) > 40  # shown, and says what to change
    listing = agent_client.get("/agent/").text
    assert ("Shown as plain text" in listing) == bool(stored(app, article.id).render_error)


def test_agent_can_fix_a_poison_article_in_the_editor(app, agent_client, make_article):
    article = make_article("Poison", body_md=POISON["emphasis-stars-4kb"])
    assert "Shown as plain text" in agent_client.get("/agent/").text
    # The article is live, so the fix is published (a plain save would keep it as a draft).
    response = save_edit(agent_client, article.id, "publish", title="Poison", body_md="Now *fine*.")
    assert response.status_code == 302
    row = stored(app, article.id)
    assert row.render_error == "" and row.body_html == "<p>Now <em>fine</em>.</p>"
    assert "Shown as plain text" not in agent_client.get("/agent/").text


def preview(agent_client, body: str):
    """POST the live preview like editor.js does."""
    page = agent_client.get("/agent/articles/new").text
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    return agent_client.post("/agent/preview", json={"body_markdown": body}, headers={"X-CSRFToken": csrf})


def test_preview_of_poison_returns_escaped_text_and_the_problem(agent_client):
    response = preview(agent_client, POISON["list-nested-300"] + "\n<script>alert(1)</script>")
    assert response.status_code == 200
    assert "Line 101 is nested" in response.json["problem"]
    assert_inert(response.json["html"])
    assert preview(agent_client, "*ok*").json == {"html": "<p><em>ok</em></p>", "problem": ""}


def test_preview_refuses_a_body_over_the_size_limit(agent_client):
    response = preview(agent_client, "a" * (MAX_BODY_CHARS + 1))
    assert response.status_code == 413
    assert "longer than 500,000 characters" in response.json["error"]


def test_import_refuses_a_body_over_the_size_limit_and_imports_the_rest(app, tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "big.md").write_text("---\ntitle: Big\n---\n" + "a" * (MAX_BODY_CHARS + 1))
    (folder / "poison.md").write_text("---\ntitle: Poison\n---\n" + POISON["emphasis-stars-4kb"])
    (folder / "fine.md").write_text("---\ntitle: Fine\n---\nA *fine* article.\n")
    with session_scope(app) as session:
        report = import_path(session, folder)
    assert report.created == 2 and len(report.errors) == 1
    assert "big.md" in report.errors[0][0] and "Split it into several articles" in report.errors[0][1]
    with session_scope(app) as session:
        poison = session.scalar(sa.select(Article).where(Article.slug == "poison"))
        assert "Line 1 opens more than 200" in poison.render_error


def test_poison_article_with_nul_and_surrogates_is_stored_with_its_cache_on_both_databases(db_app):
    body = POISON["emphasis-stars-4kb"] + "\n\nNUL\x00 and a lone \ud800 surrogate <b>bold</b>"
    with session_scope(db_app) as session:
        article = create_article(session, ArticleDraft("Poison", body), status="published")
    row = stored(db_app, article.id)
    assert "\x00" not in row.body_md + row.body_html and "NUL\ufffd" in row.body_text
    assert "Line 1 opens more than 200" in row.render_error and "&lt;b&gt;bold&lt;/b&gt;" in row.body_html
    assert db_app.test_client().get("/en/articles/poison").status_code == 200


def test_plain_text_kept_while_the_server_was_busy_is_rendered_again_by_the_indexer(app, client, make_article):
    article = make_article("Poncho", body_md="Packs *small*.")
    search.process_outbox(app)
    busy_key = "retry#" + render_cache.body_digest("Packs *small*.\n")
    set_columns(app, article.id, body_html='<div class="render-fallback"><p>Packs *small*.</p></div>',
                render_key=busy_key, render_error="busy")
    assert "render-fallback" in client.get("/en/articles/poncho").text  # shown, not rendered on the view
    position = follower.current_cursor(app.extensions["kb.search"]).position
    with session_scope(app) as session:
        render_cache.queue_stale(session, feed.after(session, position))
        render_cache.queue_stale(session, feed.after(session, position))  # a second worker starting at the same time
    assert outbox_size(app) == 1  # queued once, though the feed keeps the applied change of the article too
    search.process_outbox(app)
    row = stored(app, article.id)
    assert row.body_html == "<p>Packs <em>small</em>.</p>" and row.render_error == ""
