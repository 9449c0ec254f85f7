"""Every portal page in every language, on a phone (390 px) and a desktop (1280 px), in Chromium.

Nothing may be wider than the screen or clip a button; screenshots of each page go to
test-artifacts/screenshots/portal/<device>-<lang>-<page>.png. Uses the app, server and browser
of tests/test_browser.py.
"""

from __future__ import annotations

import pytest

from tests.test_browser import SCREENSHOTS, base_url, browser, live_app, log_in, open_page  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

VIEWPORTS = {"mobile": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
PORTAL_PAGES = {"home": "/{lang}/", "search": "/{lang}/search?q=refund",
                "filtered": "/{lang}/search?q=refund&lang=zh", "no-results": "/{lang}/search?q=xylophone",
                "category": "/{lang}/categories/returns-refunds", "article": "/{lang}/articles/return-an-item",
                "404": "/{lang}/no-such-page", "500": "/{lang}/test-server-error"}
STATUS = {"404": 404, "500": 500}


def page_width(page) -> int:
    """How wide the page is: more than the viewport means it scrolls sideways."""
    return page.evaluate("document.documentElement.scrollWidth")


def assert_fits(page, viewport: dict, where: str) -> None:
    """No sideways scrolling, and every visible button lies wholly inside the screen."""
    assert page_width(page) <= viewport["width"], f"{where} is {page_width(page)} px wide"
    for button in page.locator("button:visible").all():
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], f"{where}: a button is clipped"


@pytest.mark.parametrize("lang", ["en", "zh", "nb"])
@pytest.mark.parametrize("device", VIEWPORTS)
def test_portal_pages_fit_the_screen_in_every_language(browser, base_url, device, lang):
    viewport = VIEWPORTS[device]
    context, page = open_page(browser, viewport=viewport)
    shots = SCREENSHOTS / "portal"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        for name, path in PORTAL_PAGES.items():
            response = page.goto(base_url + path.format(lang=lang))
            assert response.status == STATUS.get(name, 200), name
            assert page.evaluate("document.documentElement.lang") == lang
            page.screenshot(path=str(shots / f"{device}-{lang}-{name}.png"), full_page=True)
            assert_fits(page, viewport, f"{path.format(lang=lang)} at {viewport['width']} px")
            # The console reports an error page's own status; anything else is a fault of the page.
            assert [p for p in page.problems if not p.startswith("Failed to load resource")] == [], name
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/agent/", "/agent/admin/agents", "/agent/articles/new", "/agent/media", "/agent/mail",
                                  "/agent/articles/1/revisions", "/agent/recovery/approvals"])
def test_agent_pages_fit_a_phone(browser, base_url, path):
    viewport = VIEWPORTS["mobile"]
    context, page = open_page(browser, viewport=viewport)
    try:
        log_in(page, base_url)
        page.goto(base_url + path)
        name = path.strip("/").replace("/", "-")
        page.screenshot(path=str(SCREENSHOTS / f"mobile-{name}.png"), full_page=True)
        assert page_width(page) <= viewport["width"], f"{path} is {page_width(page)} px wide"
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/agent/admin/recovery", "/agent/admin/recovery/gestures/1",
                                  "/agent/admin/recovery/bounds/new"])
def test_gesture_and_bound_pages_fit_a_phone(browser, base_url, live_app, path):
    from kb.db import session_scope
    from kb.recovery import catalog

    with session_scope(live_app) as session:  # something to list: a long name and a bound on it
        if not catalog.list_gesture_types(session):
            gesture = catalog.create_gesture_type(session, {
                "name": "Refund of shipping and a handwritten apology card", "kind": "shipping_refund",
                "currency": "EUR", "needs_reference": "1", "active": "1",
                "template": "Dear {name}, we refunded {amount} {currency} (reference {reference})."})
            catalog.create_bound(session, {"scope": "customer_90d", "gesture_type": str(gesture.id),
                                           "max_amount": "1234567.89", "max_count": "10", "approver_role": "support"})
    viewport = VIEWPORTS["mobile"]
    context, page = open_page(browser, viewport=viewport)
    try:
        log_in(page, base_url)
        page.goto(base_url + path)
        page.screenshot(path=str(SCREENSHOTS / f"mobile-{path.strip('/').replace('/', '-')}.png"), full_page=True)
        assert_fits(page, viewport, path)
    finally:
        context.close()
