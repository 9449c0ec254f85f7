"""The editor's live preview in a real browser tells the agent why a body would be shown as plain text."""

from __future__ import annotations

import pytest

from tests.test_browser import Shots, base_url, browser, live_app, log_in, page  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


def test_live_preview_shows_and_clears_the_plain_text_notice(page, base_url):
    from playwright.sync_api import expect

    shot = Shots(page, "render-notice")
    log_in(page, base_url)
    page.goto(base_url + "/agent/articles/new")
    notice, preview = page.locator("#preview-problem"), page.locator("#preview")
    expect(notice).to_be_hidden()

    page.locator("#body_md").fill("*" * 300 + "x" + "*" * 300 + "\n\n<script>window.pwned = 1</script>")
    expect(notice).to_contain_text("Line 1 opens more than 200 '*' or '_'")
    expect(preview.locator(".render-fallback")).to_contain_text("<script>window.pwned = 1</script>")
    assert page.evaluate("window.pwned") is None
    shot("notice")

    page.locator("#body_md").fill("Now **fine**.")
    expect(preview.locator("strong")).to_have_text("fine")
    expect(notice).to_be_hidden()
    shot("fixed")
