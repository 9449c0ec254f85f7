"""The view counter in a real browser: Chromium loads the hidden counter image with the cookie the
page set, with and without JavaScript; a reload in the same session adds nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from kb.db import session_scope
from kb.models import Article
from tests.test_browser import base_url, browser, live_app, open_page  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


def views(app, slug: str) -> int:
    """The article's stored view count."""
    with session_scope(app) as session:
        return session.scalar(sa.select(Article.views).where(Article.slug == slug))


def test_a_browser_counts_one_view_per_session_with_or_without_javascript(browser, base_url, live_app):  # noqa: F811
    with session_scope(live_app) as session:
        slug = session.scalar(sa.select(Article.slug).where(Article.status == "published").order_by(Article.id.desc()))
    before = views(live_app, slug)
    for javascript in (True, False):
        context, page = open_page(browser, javascript=javascript)
        page.goto(f"{base_url}/articles/{slug}", wait_until="load")  # "load" waits for images
        page.reload(wait_until="load")
        assert page.problems == []
        context.close()
    assert views(live_app, slug) == before + 2
