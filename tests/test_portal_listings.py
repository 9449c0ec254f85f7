"""The portal's topic lists kept per process (kb.web.portal.listings): served while no article changed, counted again after."""

from __future__ import annotations

import re

import pytest

from kb import articles as kb_articles
from kb import search
from kb.catalog import Category
from kb.web.portal.listings import KEY


@pytest.fixture
def shop(app, make_article):
    """Two account articles and one about shipping, indexed."""
    made = {"password": make_article("Reset your password", category="Account", body_md="Click the link."),
            "email": make_article("Change your password by email", category="Account", body_md="Use the form."),
            "delivery": make_article("Delivery times and password", category="Shipping", body_md="Three days.")}
    search.process_outbox(app)
    return made


def topic_options(client, query: str = "password", **more) -> dict[str, int]:
    """The search page's topic filter: {name: count}."""
    html = client.get("/en/search", query_string={"q": query, **more}).get_data(as_text=True)
    return {name: int(n) for name, n in re.findall(r'<option value="[^"]+"[^>]*>([^<]+) \((\d+)\)</option>', html)}


def test_the_kept_list_is_shown_while_no_article_changes(app, client, shop):
    assert topic_options(client) == {"Account": 2, "Shipping": 1}
    listings = app.extensions[KEY]
    head, _found = listings.kept[None]
    # What the kept list says is what the page shows: proof that the page did not count again.
    listings.kept[None] = (head, [Category("Account", "account", 7)])
    # Another address for the same results, so the whole page is rendered, not served as kept (kb.web.pagecache).
    assert topic_options(client, page=1) == {"Account": 7}


def test_a_publish_and_an_archive_change_the_counts_on_the_next_page(app, client, session, shop, make_article):
    assert topic_options(client) == {"Account": 2, "Shipping": 1}
    make_article("Password for returns", category="Returns", body_md="Print the label.")
    assert topic_options(client) == {"Account": 2, "Returns": 1, "Shipping": 1}
    kb_articles.set_status(session, shop["delivery"], "archived")
    session.commit()
    assert topic_options(client) == {"Account": 2, "Returns": 1}


def test_a_topic_filter_finds_a_category_published_after_the_list_was_kept(client, make_article, shop):
    assert client.get("/en/search?q=password&category=returns").status_code == 400
    make_article("Password for returns", category="Returns", body_md="Print the label.")
    assert client.get("/en/search?q=password&category=returns").status_code == 200
    assert client.get("/en/categories/returns").status_code == 200


def test_the_kept_topic_options_escape_names_and_mark_only_the_chosen_topic(client, make_article, shop):
    make_article("Password <b>tricks</b>", category="Tips & <Tricks>", body_md="Use a manager.")
    html = client.get("/en/search", query_string={"q": "password", "category": "account"}).get_data(as_text=True)
    assert "Tips &amp; &lt;Tricks&gt; (1)</option>" in html and "<Tricks>" not in html
    assert re.findall(r'<option value="([^"]+)" selected>', html) == ["account"]
    html = client.get("/en/search", query_string={"q": "password"}).get_data(as_text=True)
    assert re.findall(r'<option value="([^"]+)" selected>', html) == []
