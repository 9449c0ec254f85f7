"""The agent editor in a real browser (Debian's Chromium via Playwright): the warning before leaving
with unsaved changes, and uploading an image that goes in at the cursor.

The app, the browser and the page fixtures are those of tests/test_browser.py.
"""

from __future__ import annotations

import re
import time

import pytest

from tests import images
from tests.test_browser import (Shots, base_url, browser, live_app, log_in, nojs_page, open_page,  # noqa: F401
                                page)

pytestmark = pytest.mark.browser
MEDIA_URL = r"/media/[A-Za-z0-9_-]{16}/"


def dialogs_of(page) -> list[str]:
    """Collect the types of the dialogs the page opens, dismissing each (so a navigation is cancelled)."""
    seen: list[str] = []

    def on_dialog(dialog) -> None:
        seen.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return seen


def wait_for(condition, within: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``within`` seconds pass; returns whether it held."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_leaving_the_editor_with_unsaved_changes_asks_first(page, base_url):
    from playwright.sync_api import expect

    shot = Shots(page, "editor-unsaved")
    log_in(page, base_url)
    seen = dialogs_of(page)
    page.goto(base_url + "/agent/articles/new")
    page.get_by_role("link", name="Articles", exact=True).click()  # nothing typed: leaves without asking
    expect(page).to_have_url(base_url + "/agent/")
    assert seen == []

    page.goto(base_url + "/agent/articles/new")
    page.locator("#title").press_sequentially("Half-written article", delay=10)  # typing is a user gesture
    shot("typed")
    page.get_by_role("link", name="Articles", exact=True).click()
    assert wait_for(lambda: seen == ["beforeunload"]), f"no warning before leaving: {seen}"
    expect(page).to_have_url(base_url + "/agent/articles/new")  # dismissing the warning kept the page
    expect(page.locator("#title")).to_have_value("Half-written article")

    page.get_by_role("button", name="Save draft").click()  # saving is not leaving
    expect(page.locator(".flash")).to_have_text("Draft saved.")
    shot("saved")
    page.get_by_role("link", name="Articles", exact=True).click()
    expect(page).to_have_url(base_url + "/agent/")
    assert seen == ["beforeunload"]


def test_an_uploaded_image_goes_in_at_the_cursor_and_customers_see_it_once_published(page, base_url, browser):
    from playwright.sync_api import expect

    shot = Shots(page, "editor-image")
    log_in(page, base_url)
    page.goto(base_url + "/agent/articles/new")
    page.locator("#title").fill("Where to find your settings")
    body = page.locator("#body_md")
    body.press_sequentially("Open the menu.\n\nThen choose Settings.", delay=2)
    body.evaluate("el => el.setSelectionRange(16, 16)")  # the cursor after "Open the menu.\n\n"
    page.locator("#image-file").set_input_files(
        files=[{"name": "settings.png", "mimeType": "image/png", "buffer": images.png(40, 30)}])
    page.locator("#image-alt").fill("The settings screen")
    page.get_by_role("button", name="Upload image").click()
    expect(page.locator("#image-status")).to_have_text("Inserted settings.png at the cursor.")
    expect(body).to_have_value(re.compile(
        r"^Open the menu\.\n\n!\[The settings screen\]\(" + MEDIA_URL + r"settings\.png\)\n\nThen choose Settings\.$"))
    preview_image = page.locator("#preview img")
    expect(preview_image).to_have_attribute("alt", "The settings screen")
    page.wait_for_function("() => { const i = document.querySelector('#preview img');"
                           " return i && i.complete && i.naturalWidth === 40; }")
    shot("inserted")

    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("Published")
    context, customer = open_page(browser)
    try:
        customer.goto(base_url + "/en/articles/where-to-find-your-settings")
        customer.wait_for_function("() => { const i = document.querySelector('.article-body img');"
                                   " return i && i.complete && i.naturalWidth === 40; }")
        Shots(customer, "editor-image-portal")("customer-sees-the-image")
        assert customer.problems == []
    finally:
        context.close()


def test_without_javascript_an_upload_opens_the_markdown_to_copy(nojs_page, base_url):
    from playwright.sync_api import expect

    page = nojs_page
    log_in(page, base_url)
    page.goto(base_url + "/agent/articles/new")
    page.locator("#title").fill("Kept while uploading")
    page.locator("#image-file").set_input_files(
        files=[{"name": "shop.jpg", "mimeType": "image/jpeg", "buffer": images.JPEG_3X2}])
    page.locator("#image-alt").fill("Our shop")
    with page.context.expect_page() as opened:
        page.get_by_role("button", name="Upload image").click()
    result = opened.value
    result.wait_for_load_state()
    expect(result.locator("#markdown")).to_have_value(re.compile(r"^!\[Our shop\]\(" + MEDIA_URL + r"shop\.jpg\)$"))
    Shots(result, "nojs-editor-image")("markdown-to-copy")
    expect(page.locator("#title")).to_have_value("Kept while uploading")  # the editor was not left
