"""The insights pages in a real browser (Debian's Chromium driven by Playwright), on the sample data.

The app starts as the first `kb serve` does: starter articles and the sample (marked as such). An
admin opens every insights page with JavaScript on and off: every chart image loads (an SVG kb drew
on the server), nothing breaks the strict CSP, the sample is marked, and each page fits a 390 px
phone. A customer types a question into the contact form and sees suggested articles as they type.
Screenshots of every page go to test-artifacts/screenshots/insights-NN-<page>.png.
"""

from __future__ import annotations

import pytest

from kb.cli import first_start
from kb.agents import create_agent
from kb.db import session_scope
from kb.web import create_app
from tests.conftest import close_app, make_config
from tests.test_browser import AGENT_EMAIL, AGENT_PASSWORD, Shots, browser, log_in, open_page, serving  # noqa: F401

pytestmark = pytest.mark.browser
PAGES = (("overview", "/agent/insights"), ("searches", "/agent/insights/search"),
         ("articles", "/agent/insights/articles"), ("team", "/agent/insights/team"),
         ("overview-90-days-nb", "/agent/insights?days=90&lang=nb"))


@pytest.fixture(scope="module")
def sample_url(tmp_path_factory):
    """The app on its first start (starter articles and the sample), served, with an admin."""
    app = create_app(make_config(tmp_path_factory.mktemp("insights-browser"), TESTING=False, SAMPLE_DATA=True))
    first_start(app)  # as the first `kb serve`: starter articles, then the sample
    with session_scope(app) as session:
        create_agent(session, email=AGENT_EMAIL, name="Ingrid Admin", role="admin", password=AGENT_PASSWORD)
    with serving(app) as url:
        yield url
    close_app(app)


def chart_sizes(page) -> list[int]:
    """The drawn width of every chart image on the page (0 for one that did not load).

    The charts load lazily: each is scrolled into view and awaited first.
    """
    charts = page.locator(".insights-chart img")
    for n in range(charts.count()):
        charts.nth(n).scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete", arg=charts.nth(n).element_handle())
    return page.eval_on_selector_all(".insights-chart img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_every_insights_page_shows_charts_of_the_sample(browser, sample_url, javascript):  # noqa: F811
    context, page = open_page(browser, javascript=javascript)
    shots = Shots(page, "insights" if javascript else "insights-nojs")
    log_in(page, sample_url)
    for name, path in PAGES:
        response = page.goto(sample_url + path)
        assert response.status == 200, path
        page.wait_for_load_state("load")
        sizes = chart_sizes(page)
        assert sizes and all(width > 0 for width in sizes), (path, sizes)
        assert page.locator("table.insights-table tbody tr").count() > 0, path
        assert "sample" in page.locator("main").inner_text().lower(), path
        shots(name)
    assert page.problems == []
    context.close()


def test_insights_pages_fit_a_phone(browser, sample_url):  # noqa: F811
    context, page = open_page(browser, javascript=False, viewport={"width": 390, "height": 844})
    log_in(page, sample_url)
    shots = Shots(page, "insights-phone")
    for name, path in PAGES[:4]:
        page.goto(sample_url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
        shots(name)
    context.close()


def test_the_contact_form_suggests_articles_as_the_customer_types(browser, sample_url):  # noqa: F811
    context, page = open_page(browser)
    shots = Shots(page, "contact")
    page.goto(sample_url + "/en/contact")
    page.locator("#contact-question").press_sequentially("When will I get my money back for the boots I returned?")
    suggestions = page.locator(".contact-suggestions li")
    suggestions.first.wait_for()
    assert suggestions.count() >= 1
    shots("suggestions")
    assert page.problems == []
    context.close()
