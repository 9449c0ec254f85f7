"""Drafts of live articles, publishing changes, restoring with a confirmation, and the full history.

Through the Flask test client with CSRF on, as an agent would use the editor without JavaScript.
"""

from __future__ import annotations

import re

import pytest

from kb import search
from kb.autoreply.matcher import published_match_articles
from kb.db import session_scope
from kb.errors import ValidationError
from kb.models import Article, Revision
from tests.agent_helpers import (ADMIN, created_id, login, make_agent, post_form, save_edit, save_new)

LIVE_TEXT = "Gift cards never expire.\n"
DRAFT_TEXT = "Gift cards now expire after five years, says the zebrafinch policy.\n"


@pytest.fixture
def agent_client(app, client):
    """A client logged in as an editor."""
    make_agent(app, name="Edith Editor")
    assert login(client).status_code == 302
    return client


@pytest.fixture
def live_id(agent_client) -> int:
    """A published article, written and published through the editor."""
    return created_id(save_new(agent_client, "publish", title="Gift cards", body_md=LIVE_TEXT, category="Billing"))


def stored(app, article_id: int) -> Article:
    """The article as stored, detached from its session."""
    with session_scope(app) as session:
        article = session.get(Article, article_id)
        session.expunge(article)
        return article


def revision_rows(app, article_id: int) -> list[tuple]:
    """(number, status, pending, author name, note) of every revision."""
    with session_scope(app) as session:
        revisions = session.query(Revision).filter_by(article_id=article_id).order_by(Revision.number)
        return [(r.number, r.status, r.pending, r.author.name if r.author else None, r.note) for r in revisions]


def base_of(client, article_id: int) -> str:
    """The revision the editor says it was opened at."""
    page = client.get(f"/agent/articles/{article_id}/edit").text
    return re.search(r'name="base_revision"[^>]*value="(\d+)"', page).group(1)


def test_saving_a_live_article_keeps_the_changes_from_customers(app, agent_client, live_id):
    response = save_edit(agent_client, live_id, "save", title="Gift cards", body_md=DRAFT_TEXT, category="Billing")
    assert response.status_code == 302
    assert "Customers still see the published version" in agent_client.get(response.location).text
    article = stored(app, live_id)
    assert (article.status, article.body_md, article.pending_revision) == ("published", LIVE_TEXT, 2)

    customer = app.test_client()
    assert "zebrafinch" not in customer.get("/en/articles/gift-cards").text
    assert customer.get("/api/articles/gift-cards").json["body_markdown"] == LIVE_TEXT
    search.process_outbox(app)
    assert customer.get("/api/search?q=zebrafinch").json["total"] == 0
    assert customer.get("/api/search?q=expire").json["total"] == 1
    with session_scope(app) as session:
        assert [m.body for m in published_match_articles(session)] == ["Gift cards never expire."]

    editor = agent_client.get(f"/agent/articles/{live_id}/edit").text
    assert "zebrafinch" in editor and "Unpublished changes" in editor
    assert "Customers still see the published version (revision 1)" in editor


def test_publish_changes_makes_the_draft_live_and_reindexes_it(app, agent_client, live_id):
    save_edit(agent_client, live_id, "save", title="Gift cards", body_md=DRAFT_TEXT, category="Billing")
    search.process_outbox(app)
    response = save_edit(agent_client, live_id, "publish", title="Gift cards", body_md=DRAFT_TEXT,
                         category="Billing", base_revision="2")
    assert response.status_code == 302
    assert "Published" in agent_client.get(response.location).text
    article = stored(app, live_id)
    assert (article.body_md, article.pending_revision) == (DRAFT_TEXT, None)
    customer = app.test_client()
    assert "zebrafinch" in customer.get("/en/articles/gift-cards").text
    assert search.process_outbox(app) >= 1
    assert [r["slug"] for r in customer.get("/api/search?q=zebrafinch").json["results"]] == ["gift-cards"]
    assert revision_rows(app, live_id)[-1] == (3, "published", False, "Edith Editor", "Published the draft (revision 2)")


def test_discarding_the_draft_keeps_the_live_text_and_records_who(app, agent_client, live_id):
    save_edit(agent_client, live_id, "save", title="Gift cards", body_md=DRAFT_TEXT, category="Billing")
    url = f"/agent/articles/{live_id}/edit"
    response = post_form(agent_client, f"/agent/articles/{live_id}/draft/discard", {"base_revision": "2"}, form_page=url)
    assert response.status_code == 302
    assert "Draft discarded" in agent_client.get(response.location).text
    article = stored(app, live_id)
    assert (article.body_md, article.pending_revision) == (LIVE_TEXT, None)
    editor = agent_client.get(url).text
    assert "zebrafinch" not in editor and "Unpublished changes" not in editor
    assert revision_rows(app, live_id)[-1] == (3, "published", False, "Edith Editor", "Discarded the draft (revision 2)")
    again = post_form(agent_client, f"/agent/articles/{live_id}/draft/discard", {}, form_page=url)
    assert "no unpublished draft" in agent_client.get(again.location).text


def test_a_draft_that_is_back_to_the_live_text_is_closed(app, agent_client, live_id):
    save_edit(agent_client, live_id, "save", title="Gift cards", body_md=DRAFT_TEXT, category="Billing")
    save_edit(agent_client, live_id, "save", title="Gift cards", body_md=LIVE_TEXT, category="Billing")
    assert stored(app, live_id).pending_revision is None
    assert "unpublished changes</span>" not in agent_client.get("/agent/").text


def test_a_slug_change_in_a_draft_waits_for_publishing(app, agent_client, live_id):
    save_edit(agent_client, live_id, "save", title="Gift cards", body_md=LIVE_TEXT, category="Billing", slug="vouchers")
    customer = app.test_client()
    assert stored(app, live_id).slug == "gift-cards"
    assert customer.get("/en/articles/gift-cards").status_code == 200
    assert customer.get("/en/articles/vouchers").status_code == 404
    assert 'value="vouchers"' in agent_client.get(f"/agent/articles/{live_id}/edit").text  # the draft's slug
    save_edit(agent_client, live_id, "publish", title="Gift cards", body_md=LIVE_TEXT, category="Billing", slug="vouchers")
    assert customer.get("/en/articles/vouchers").status_code == 200
    old = customer.get("/en/articles/gift-cards")
    assert old.status_code == 301 and old.location.endswith("/en/articles/vouchers")


def test_a_draft_slug_another_article_uses_is_refused_at_the_slug_field(app, agent_client, live_id):
    created_id(save_new(agent_client, title="Vouchers"))
    response = save_edit(agent_client, live_id, "save", title="Gift cards", body_md=DRAFT_TEXT, slug="vouchers")
    assert response.status_code == 422
    assert re.search(r'<input[^>]*aria-describedby="slug-error slug-help"[^>]*aria-invalid="true"[^>]*id="slug"',
                     response.text)
    assert re.search(r'<p class="field-error" id="slug-error">The slug &#39;vouchers&#39; is already used', response.text)
    assert "zebrafinch" in response.text  # the agent's text is kept
    assert stored(app, live_id).pending_revision is None


def test_a_colleagues_draft_counts_as_a_revision_you_never_saw(app, agent_client, live_id):
    opened = base_of(agent_client, live_id)
    make_agent(app, ADMIN, name="Ada Admin", role="admin")
    colleague = app.test_client()
    login(colleague, ADMIN)
    save_edit(colleague, live_id, "save", title="Gift cards", body_md="Ada's draft.\n", base_revision=base_of(colleague, live_id))
    for action in ("save", "publish"):
        stale = save_edit(agent_client, live_id, action, title="Gift cards", body_md="Edith's edit.\n", base_revision=opened)
        assert stale.status_code == 422 and "Someone else saved this article (revision 2)" in stale.text
        assert "Edith&#39;s edit." in stale.text  # nothing typed is lost
    url = f"/agent/articles/{live_id}/edit"
    discard = post_form(agent_client, f"/agent/articles/{live_id}/draft/discard", {"base_revision": opened}, form_page=url)
    assert "Someone else saved this article" in agent_client.get(discard.location).text
    article = stored(app, live_id)
    assert (article.body_md, article.pending_revision) == (LIVE_TEXT, 2)
    restore = post_form(agent_client, f"/agent/articles/{live_id}/revisions/1/restore",
                        {"base_revision": opened, "mode": "live"}, form_page=url)
    assert "Someone else saved this article" in agent_client.get(restore.location).text


def test_restoring_into_a_live_article_asks_first_and_goes_into_a_draft(app, agent_client, live_id):
    save_edit(agent_client, live_id, "publish", title="Gift cards", body_md=DRAFT_TEXT, category="Billing")
    url = f"/agent/articles/{live_id}/revisions/1/restore"
    history = agent_client.get(f"/agent/articles/{live_id}/revisions").text
    assert f'href="{url}"' in history  # a link to the confirmation page, not a form that restores at once
    confirm = agent_client.get(url)
    assert confirm.status_code == 200
    assert re.search(r'<button type="submit" name="mode" value="draft" class="primary">Restore into a draft', confirm.text)
    assert 'value="live" class="danger">Restore and publish now' in confirm.text
    assert '<li class="diff-add"><code>+Gift cards never expire.</code></li>' in confirm.text
    assert stored(app, live_id).body_md == DRAFT_TEXT  # asking changed nothing

    response = post_form(agent_client, url, {"base_revision": "2"}, form_page=url)  # no mode: a draft
    assert "into a draft (revision 3)" in agent_client.get(response.location).text
    article = stored(app, live_id)
    assert (article.body_md, article.pending_revision) == (DRAFT_TEXT, 3)
    assert "zebrafinch" in app.test_client().get("/en/articles/gift-cards").text

    response = post_form(agent_client, url, {"base_revision": "3", "mode": "live"}, form_page=url)
    assert "Restored revision 1 as revision 4" in agent_client.get(response.location).text
    article = stored(app, live_id)
    assert (article.body_md, article.pending_revision) == (LIVE_TEXT, None)
    assert revision_rows(app, live_id)[-1][4] == "Restored revision 1"


def test_history_shows_publishing_unpublishing_archiving_restoring_and_discarding_with_who(app, agent_client):
    article_id = created_id(save_new(agent_client, title="Opening hours", body_md="Mon-Fri\n"))
    steps = [("publish", "Mon-Fri\n"), ("save", "Mon-Sat\n"), ("publish", "Mon-Sat\n"), ("unpublish", "Mon-Sat\n"),
             ("archive", "Mon-Sat\n"), ("publish", "Mon-Sat\n"), ("save", "Every day\n")]
    for action, body in steps:
        assert save_edit(agent_client, article_id, action, title="Opening hours", body_md=body).status_code == 302
    url = f"/agent/articles/{article_id}/edit"
    post_form(agent_client, f"/agent/articles/{article_id}/draft/discard", {}, form_page=url)
    post_form(agent_client, f"/agent/articles/{article_id}/revisions/1/restore", {"mode": "live"}, form_page=url)
    assert [(n, status, pending, note) for n, status, pending, _who, note in revision_rows(app, article_id)] == [
        (1, "draft", False, "Created"),
        (2, "published", False, "Published"),
        (3, "published", True, "Saved as a draft (not live)"),
        (4, "published", False, "Published the draft (revision 3)"),
        (5, "draft", False, "Unpublished"),
        (6, "archived", False, "Archived"),
        (7, "published", False, "Published"),
        (8, "published", True, "Saved as a draft (not live)"),
        (9, "published", False, "Discarded the draft (revision 8)"),
        (10, "published", False, "Restored revision 1"),
    ]
    assert {who for *_rest, who, _note in revision_rows(app, article_id)} == {"Edith Editor"}
    page = agent_client.get(f"/agent/articles/{article_id}/revisions").text
    for note in ("Unpublished", "Archived", "Discarded the draft (revision 8)", "draft of changes (not live)"):
        assert note in page
    assert page.count("Edith Editor") >= 10


def test_the_diff_shows_every_field(app, agent_client):
    article_id = created_id(save_new(agent_client, title="Passwords", body_md="Old text\n", lang="en",
                                     category="Account", tags="login"))
    save_edit(agent_client, article_id, "publish", title="Passwords and logins", slug="logins", body_md="New text\n",
              lang="nb", category="Security", tags="login, 2fa")
    diff = agent_client.get(f"/agent/articles/{article_id}/revisions?a=1&b=2").text
    for old, new in [("Title: Passwords", "Title: Passwords and logins"), ("Slug: passwords", "Slug: logins"),
                     ("Status: draft", "Status: published"), ("Language: en", "Language: nb"),
                     ("Category: Account", "Category: Security"), ("Tags: login", "Tags: login, 2fa"),
                     ("Old text", "New text")]:
        assert f'<li class="diff-del"><code>-{old}</code></li>' in diff
        assert f'<li class="diff-add"><code>+{new}</code></li>' in diff
    save_edit(agent_client, article_id, "save", title="Passwords and logins", slug="logins", body_md="Draft text\n",
              lang="nb", category="Security", tags="login, 2fa")
    diff = agent_client.get(f"/agent/articles/{article_id}/revisions?a=2&b=3").text
    assert '<li class="diff-add"><code>+Status: published (draft of changes, not live)</code></li>' in diff


def test_field_errors_are_shown_at_their_fields(agent_client):
    response = save_new(agent_client, title="   ", slug="Not A Slug!", lang="english!", body_md="Kept *text*\n")
    assert response.status_code == 422
    page = response.text
    for name in ("title", "slug", "lang"):
        error = re.search(rf'<p class="field-error" id="{name}-error">([^<]+)</p>', page)
        assert error, f"no error at the {name} field"
        field = re.search(rf'<(input|select)[^>]*\bid="{name}"[^>]*>', page).group(0)
        assert re.search(rf'aria-describedby="[^"]*\b{name}-error\b', field) and 'aria-invalid="true"' in field
    assert re.search(r'class="form-error error-summary" role="alert">.*href="#slug">Slug</a>', page, re.S)
    assert "Kept *text*" in page


def test_too_long_fields_are_shown_at_their_fields(agent_client):
    response = save_new(agent_client, title="Fine", note="n" * 301)
    assert response.status_code == 422
    assert re.search(r'<p class="field-error" id="note-error">[^<]*300', response.text)


def test_save_draft_and_publish_look_different(app, agent_client, live_id):
    def buttons(page: str) -> dict[str, str]:
        return {text: css for css, text in re.findall(r'<button type="submit" name="action" value="\w+" class="(\w+)">([^<]+)<', page)}

    assert buttons(agent_client.get("/agent/articles/new").text) == {
        "Preview": "secondary", "Save draft": "secondary", "Publish": "primary"}
    live = buttons(agent_client.get(f"/agent/articles/{live_id}/edit").text)
    assert live["Save as draft"] == "secondary" and live["Publish changes"] == "primary"
    save_edit(agent_client, live_id, "save", title="Gift cards", body_md=DRAFT_TEXT)
    pending = buttons(agent_client.get(f"/agent/articles/{live_id}/edit").text)
    assert pending["Save draft"] == "secondary" and pending["Publish changes"] == "primary"


def test_the_article_list_shows_and_filters_unpublished_changes(app, agent_client, live_id):
    other = created_id(save_new(agent_client, "publish", title="Shipping"))
    assert "unpublished changes</span>" not in agent_client.get("/agent/").text
    save_edit(agent_client, live_id, "save", title="Gift cards", body_md=DRAFT_TEXT)
    listing = agent_client.get("/agent/").text
    row = re.search(r"<tr>\s*<td><a href=\"/agent/articles/%d/edit\">.*?</tr>" % live_id, listing, re.S).group(0)
    assert '<span class="badge-pending">unpublished changes</span>' in row
    filtered = agent_client.get("/agent/?status=pending").text
    assert "Gift cards" in filtered and f"/agent/articles/{other}/edit" not in filtered


def test_a_page_sent_back_after_a_post_is_marked_unsaved(agent_client, live_id):
    assert "data-unsaved" not in agent_client.get(f"/agent/articles/{live_id}/edit").text
    preview = save_edit(agent_client, live_id, "preview", title="Gift cards", body_md=DRAFT_TEXT)
    assert 'class="editor-form" data-unsaved="true"' in preview.text


def test_unpublishing_a_live_article_with_a_draft_keeps_the_editor_text(app, agent_client, live_id):
    save_edit(agent_client, live_id, "save", title="Gift cards", body_md=DRAFT_TEXT)
    save_edit(agent_client, live_id, "unpublish", title="Gift cards", body_md=DRAFT_TEXT)
    article = stored(app, live_id)
    assert (article.status, article.body_md, article.pending_revision) == ("draft", DRAFT_TEXT, None)
    assert app.test_client().get("/en/articles/gift-cards").status_code == 404


def test_nul_characters_never_reach_the_database(app, agent_client):
    article_id = created_id(save_new(agent_client, title="Nul\x00 title", body_md="Body\x00 text\n",
                                     category="Cat\x00", tags="a\x00b"))
    article = stored(app, article_id)
    assert "\x00" not in article.title + article.body_md + article.category + "".join(article.tags)


def test_the_new_editor_pages_have_no_inline_script_or_style(agent_client, live_id):
    from tests.test_agent_auth import INLINE

    save_edit(agent_client, live_id, "save", title="Gift cards", body_md=DRAFT_TEXT)
    for url in (f"/agent/articles/{live_id}/edit", f"/agent/articles/{live_id}/revisions/1/restore",
                f"/agent/articles/{live_id}/revisions", "/agent/media", "/agent/?status=pending"):
        response = agent_client.get(url)
        assert response.status_code == 200, url
        assert not INLINE.search(response.text), (url, INLINE.search(response.text))


def test_a_draft_queues_nothing_for_the_indexer_and_publishing_it_does(app, session, make_article):
    import sqlalchemy as sa

    from kb import drafts
    from kb.articles import ArticleDraft
    from kb.models import IndexChange

    article = make_article("Gift cards", body_md=LIVE_TEXT)
    session.execute(sa.delete(IndexChange))
    assert drafts.save_draft(session, article, ArticleDraft("Gift cards", DRAFT_TEXT, slug="vouchers"))
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(IndexChange)) == 0
    assert (article.body_md, article.slug, article.updated_at) == (LIVE_TEXT, "gift-cards", article.revisions[0].created_at)
    assert not drafts.save_draft(session, article, ArticleDraft("Gift cards", DRAFT_TEXT))  # the same draft again
    assert drafts.publish_draft(session, article)
    session.commit()
    assert (article.body_md, article.slug, article.pending_revision) == (DRAFT_TEXT, "vouchers", None)
    assert session.scalars(sa.select(IndexChange.article_id)).all() == [article.id]
    with pytest.raises(ValidationError, match="no unpublished draft"):
        drafts.publish_draft(session, article)
