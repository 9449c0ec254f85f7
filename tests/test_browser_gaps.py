"""/agent/gaps in Chromium on a phone (390 px) without JavaScript: the groups fit the screen and
"Write an article for these" opens the new draft in the editor. Screenshots in
test-artifacts/screenshots/gaps-NN-<step>.png."""

from __future__ import annotations

import pytest

from kb.db import session_scope
from tests.test_browser import Shots, base_url, browser, live_app, log_in, open_page  # noqa: F401  (fixtures)
from tests.test_browser_layout import VIEWPORTS, assert_fits
from tests.test_capture_gaps import add_email

pytestmark = pytest.mark.browser


def test_an_agent_writes_an_article_for_a_gap_on_a_phone_without_javascript(browser, base_url, live_app):
    with session_scope(live_app) as session:
        for n, text in enumerate(["My parcel arrived damaged, can I get a refund?",
                                  "Refund for a damaged parcel? Call me on +47 912 34 567",
                                  "Damaged parcel: refund for order " + "Nordmann" * 12]):
            add_email(session, 200 + n, "Damaged parcel", text, 1)
    viewport = VIEWPORTS["mobile"]
    context, page = open_page(browser, javascript=False, viewport=viewport)
    shot = Shots(page, "gaps")
    try:
        log_in(page, base_url)
        page.goto(base_url + "/agent/gaps")
        assert page.locator("li.gap").count() == 1 and "912 34 567" not in page.content()
        shot("groups")
        assert_fits(page, viewport, "/agent/gaps")
        page.get_by_role("button", name="Write an article for these").click()
        assert "/edit" in page.url and page.locator(".flash").count() == 1
        shot("draft")
        assert "refund" in page.locator("#title").input_value().lower()
    finally:
        context.close()
