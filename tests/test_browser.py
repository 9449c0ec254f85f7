"""End-to-end flows in a real browser: Debian's Chromium driven by Playwright.

The app runs in a thread on a free port with the indexer thread on, as in production, so a
publish reaches search by itself. Screenshots of every step go to test-artifacts/screenshots/,
and of every portal page in each language on a phone (390 px) and a desktop (1280 px).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from kb import content
from kb.agents import create_agent
from kb.db import session_scope
from kb.models import Article, SearchLog, Vote
from kb.web import create_app
from tests.conftest import REPO, close_app, make_config

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
AGENT_EMAIL, AGENT_PASSWORD = "ingrid@fjellstad.example", "correct horse battery"
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless; skipped loudly when it is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests skipped: {CHROMIUM} is missing; install Debian's `chromium` package "
                    "(apt-get install chromium) or run `bash scripts/test` as root")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def live_app(tmp_path_factory):
    """The app on its own database with the starter articles and one agent, indexer thread on."""
    tmp = tmp_path_factory.mktemp("browser")
    app = create_app(make_config(tmp, TESTING=False, INDEXER=True, INDEXER_POLL_SECONDS=0.2))
    app.add_url_rule("/<lang:lang_code>/test-server-error", "test_server_error", _server_error)
    assert content.bootstrap(app) is not None
    with session_scope(app) as session:
        create_agent(session, email=AGENT_EMAIL, name="Ingrid Agent", role="admin", password=AGENT_PASSWORD)
    yield app
    close_app(app)


def _server_error(lang_code: str):
    """A page that fails, to see the 500 page as a visitor does."""
    raise RuntimeError("a deliberate failure for the browser tests")


@contextlib.contextmanager
def serving(app, *, set_base_url: bool = False):
    """Serve ``app`` from a thread on a free port (threaded, like a real server); yields its URL.

    ``set_base_url`` also makes it KB_BASE_URL, for the links in the emails the app sends."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    if set_base_url:
        app.config["BASE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture(scope="module")
def base_url(live_app):
    """The live app, served."""
    with serving(live_app) as url:
        yield url


class Shots:
    """Numbered screenshots of one flow: test-artifacts/screenshots/<flow>-NN-<step>.png."""

    def __init__(self, page, flow: str):
        self.page, self.flow, self.count = page, flow, 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for old in SCREENSHOTS.glob(f"{flow}-*.png"):
            old.unlink()

    def __call__(self, step: str) -> None:
        """Save a full-page screenshot of the current step."""
        self.count += 1
        self.page.screenshot(path=str(SCREENSHOTS / f"{self.flow}-{self.count:02d}-{step}.png"), full_page=True)


def open_page(browser, *, javascript: bool = True, viewport: dict | None = None):
    """A fresh context (own cookies) and page; CSP violations and script errors are collected."""
    context = browser.new_context(java_script_enabled=javascript, viewport=viewport or {"width": 1200, "height": 900},
                                  locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.problems = []
    page.on("console", lambda msg: msg.type == "error" and page.problems.append(msg.text))
    page.on("pageerror", lambda exc: page.problems.append(str(exc)))
    return context, page


@pytest.fixture
def page(browser):
    """A JavaScript-enabled page; fails the test if the site logged script or CSP errors."""
    context, page = open_page(browser)
    yield page
    problems = page.problems
    context.close()
    assert problems == [], "the browser console reported errors"


@pytest.fixture
def nojs_page(browser):
    """A page with JavaScript switched off."""
    context, page = open_page(browser, javascript=False)
    yield page
    context.close()


def votes_for(app, slug: str) -> list[tuple[bool, str]]:
    """The stored votes of an article as (helpful, comment)."""
    with session_scope(app) as session:
        rows = session.execute(sa.select(Vote.helpful, Vote.comment).join(Article).where(Article.slug == slug))
        return [tuple(row) for row in rows]


def test_customer_searches_opens_an_article_and_votes(page, base_url, live_app):
    from playwright.sync_api import expect

    shot = Shots(page, "customer")
    page.goto(base_url + "/")
    expect(page.get_by_role("heading", name="Hi, how can we help?")).to_be_visible()
    shot("home")

    page.locator("#home-q").press_sequentially("reset my pa", delay=40)
    suggestions = page.locator("#home-q-suggestions [role=option]")
    expect(suggestions.first).to_be_visible()
    expect(page.locator("#home-q-suggestions")).to_contain_text("How do I reset my password?")
    shot("instant-suggestions")

    page.locator("#home-q").fill("I forgot my password")
    page.keyboard.press("Escape")
    page.locator("#home-q").press("Enter")
    expect(page).to_have_url(re.compile(r"/search\?q=I\+forgot\+my\+password"))
    first = page.locator("ol.results li.result").first
    expect(first.locator("h2 a")).to_have_text("How do I reset my password?")
    expect(first.locator(".snippet mark").first).to_be_visible()
    shot("results")

    first.locator("h2 a").click()  # the link says which search and result it was (the search report's clicks)
    expect(page).to_have_url(re.compile(re.escape(base_url + "/en/articles/reset-password") + r"\?search=\d+&pos=1$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("How do I reset my password?")
    expect(page.locator("nav.breadcrumb")).to_contain_text("Account")
    shot("article")

    page.locator("#vote-comment").fill("Clear steps, thanks.")
    page.get_by_role("button", name="Yes", exact=True).click()
    expect(page.locator(".flash")).to_have_text("Thanks for your feedback!")
    expect(page.locator("#feedback")).to_contain_text("You have already told us")
    shot("voted")
    assert votes_for(live_app, "reset-password") == [(True, "Clear steps, thanks.")]


def log_in(page, base_url: str, email: str = AGENT_EMAIL, password: str = AGENT_PASSWORD) -> None:
    """Log in (as the test agent unless told) through the login form (anonymous /agent/ redirects there)."""
    page.goto(base_url + "/agent/")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.get_by_role("button", name="Log in").click()


def search_until_found(page, base_url: str, query: str, title: str, within: float = 10.0) -> float:
    """Search the portal until ``title`` is among the results; returns the seconds it took."""
    start = time.monotonic()
    while True:
        page.goto(f"{base_url}/search?q={query}")
        if page.locator("ol.results h2 a", has_text=title).count():
            return time.monotonic() - start
        assert time.monotonic() - start < within, f"{title!r} not found by {query!r} within {within} s"
        time.sleep(0.2)


def test_agent_writes_with_live_preview_publishes_and_finds_it(page, base_url, live_app):
    from playwright.sync_api import expect

    shot = Shots(page, "agent")
    page.goto(base_url + "/agent/articles/new")
    expect(page).to_have_url(re.compile(r"/agent/login"))
    shot("login")
    page.locator("#email").fill(AGENT_EMAIL)
    page.locator("#password").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".agent-name")).to_have_text("Ingrid Agent")
    shot("logged-in")

    page.get_by_role("link", name="New article", exact=True).click()
    page.locator("#title").fill("Renting snowshoes for the winter")
    page.locator("#category").fill("Products")
    page.locator("#tags").fill("snowshoes, rental")
    page.locator("#body_md").press_sequentially(
        "## Snowshoe rental\n\nRent **snowshoes** in any store for 3 days.\n\n- Bring ID\n", delay=5)
    preview = page.locator("#preview")
    expect(preview.locator("h2")).to_have_text("Snowshoe rental")
    expect(preview.locator("strong")).to_have_text("snowshoes")
    expect(preview.locator("li")).to_have_text("Bring ID")
    shot("live-preview")

    page.locator("#body_md").press_sequentially("- Return them clean\n", delay=5)
    expect(preview.locator("li")).to_have_count(2)
    shot("preview-updated")

    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".flash")).to_contain_text("Published")
    expect(page.locator(".status")).to_have_text("published")
    shot("published")

    took = search_until_found(page, base_url, "snowshoe+rental", "Renting snowshoes for the winter")
    # The spec asks for 1 s; the measured time also includes page loads, so allow some slack.
    assert took < 2, f"publishing took {took:.1f} s to reach search"
    shot("found-on-portal")
    page.locator("ol.results h2 a", has_text="Renting snowshoes for the winter").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Renting snowshoes for the winter")
    expect(page.locator(".article-body strong")).to_have_text("snowshoes")
    shot("article-on-portal")


def test_search_and_vote_work_without_javascript(nojs_page, base_url, live_app):
    from playwright.sync_api import expect

    page = nojs_page
    shot = Shots(page, "nojs-customer")
    page.goto(base_url + "/")
    page.locator("#home-q").fill("refund")
    shot("home")
    assert page.locator("#home-q-suggestions").count() == 0  # the enhancement never ran
    page.locator("form.big-search").get_by_role("button", name="Search").click()
    results = page.locator("ol.results li.result h2 a")
    expect(results.first).to_be_visible()
    shot("results")

    results.first.click()
    expect(page).to_have_url(re.compile(r"/en/articles/"))
    slug = page.url.split("?")[0].rsplit("/", 1)[1]
    with session_scope(live_app) as session:  # the opened result is recorded without JavaScript
        assert session.scalar(sa.select(SearchLog.click_position).order_by(SearchLog.id.desc()).limit(1)) == 1
    shot("article")
    page.locator("#vote-comment").fill("Missing the bank transfer case.")
    page.get_by_role("button", name="No", exact=True).click()
    expect(page.locator(".flash")).to_have_text("Thanks for your feedback!")
    shot("voted")
    assert (False, "Missing the bank transfer case.") in votes_for(live_app, slug)


def test_the_preview_button_works_without_javascript(nojs_page, base_url):
    from playwright.sync_api import expect

    page = nojs_page
    shot = Shots(page, "nojs-agent")
    log_in(page, base_url)
    page.goto(base_url + "/agent/articles/new")
    page.locator("#title").fill("A draft previewed without JavaScript")
    page.locator("#body_md").fill("Plain **HTML** preview <script>alert(1)</script>")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview strong")).to_have_text("HTML")
    assert page.locator("#preview script").count() == 0
    expect(page.locator("#title")).to_have_value("A draft previewed without JavaScript")
    shot("preview")


def test_the_language_switch_works_without_javascript(nojs_page, base_url):
    from playwright.sync_api import expect

    page = nojs_page
    page.goto(base_url + "/en/search?q=refund")
    page.locator(".lang-switch").get_by_role("link", name="中文").click()
    expect(page).to_have_url(re.compile(r"/zh/search\?q=refund$"))
    expect(page.locator("html")).to_have_attribute("lang", "zh")
    expect(page.locator("ol.results li.result").first).to_be_visible()
    page.goto(base_url + "/")  # the choice is remembered for addresses without a language
    expect(page).to_have_url(base_url + "/zh/")
