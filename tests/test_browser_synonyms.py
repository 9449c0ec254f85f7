"""The synonyms page on a phone, without JavaScript: an admin adds a set, and the portal finds the paraphrase.

Uses the app (indexer thread on), server and browser of tests/test_browser.py; screenshots go to
test-artifacts/screenshots/synonyms-*.png.
"""

from __future__ import annotations

import time

import pytest

from tests.test_browser import SCREENSHOTS, base_url, browser, live_app, log_in, open_page  # noqa: F401  (fixtures)
from tests.test_browser_layout import VIEWPORTS, assert_fits

pytestmark = pytest.mark.browser


def test_an_admin_adds_a_set_on_a_phone_and_the_portal_finds_the_paraphrase_within_seconds(browser, base_url):
    viewport = VIEWPORTS["mobile"]
    context, page = open_page(browser, javascript=False, viewport=viewport)
    search = f"{base_url}/en/search?q=anorak"

    def results() -> str:
        """The links of the results list ("" on the no-results page, which suggests other articles)."""
        found = page.locator("ol.results")
        return found.inner_html() if found.count() else ""

    try:
        page.goto(search)
        assert "waterproof-jacket-care" not in results()
        log_in(page, base_url)
        page.locator("#nav-synonyms").click()
        page.locator(".synonym-langs a[lang=zh]").click()
        assert "退钱" in page.locator(".synonym-list").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "synonyms-mobile-zh.png"), full_page=True)
        assert_fits(page, viewport, "/agent/admin/synonyms?lang=zh")
        page.locator(".synonym-langs a[lang=en]").click()
        page.locator("#synonym-terms").fill("anorak, waterproof jacket, rain jacket")
        page.locator("#add-synonym").click()
        assert page.locator(".synonym-terms").first.inner_text() == "anorak, waterproof jacket, rain jacket"
        page.screenshot(path=str(SCREENSHOTS / "synonyms-mobile-en-added.png"), full_page=True)
        assert_fits(page, viewport, "/agent/admin/synonyms?lang=en")
        deadline = time.monotonic() + 5  # the bound: within seconds, no restart
        while "waterproof-jacket-care" not in results() and time.monotonic() < deadline:
            page.goto(search)
        assert "waterproof-jacket-care" in results()
        page.screenshot(path=str(SCREENSHOTS / "synonyms-mobile-portal-found.png"), full_page=True)
    finally:
        context.close()
