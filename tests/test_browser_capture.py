"""Knowledge capture in a real browser (Debian's Chromium driven by Playwright), with the mail worker running.

A customer's email goes to a person (pymap + the worker); an agent answers it from `/agent/mail` with
an article; the answer reaches the customer (aiosmtpd) threaded; then another customer asks the same
thing in other words, and kb answers that one by itself. Screenshots of every step go to
test-artifacts/screenshots/capture-NN-<step>.png.
"""

from __future__ import annotations


import pytest
import sqlalchemy as sa

from kb import jobs
from kb.db import session_scope
from kb.models import Article
from tests.agent_helpers import PASSWORD, make_agent
from tests.test_autoreply_worker import (articles_db, mail_app, make_email, records, running,  # noqa: F401
                                         wait_until)
from tests.test_browser import Shots, browser, log_in, open_page, serving  # noqa: F401

pytestmark = pytest.mark.browser
SUPPORT = "sam@kb.example"
FIRST = ("Zip stuck", "The zip on my new backpack got stuck after two weeks, what can I do?")
SECOND = ("Backpack zipper", "The zip of my backpack is stuck after a few weeks. What now?")


@pytest.fixture
def served(mail_app):
    """The mail app, served."""
    with serving(mail_app) as url:
        yield url


def test_an_answer_from_agent_mail_teaches_kb_to_answer_the_next_one(browser, mail_app, served,  # noqa: F811
                                                                     pymap_server, smtp_sink, running):  # noqa: F811
    from playwright.sync_api import expect

    make_agent(mail_app, SUPPORT, name="Sam Support", role="support")
    worker = running(wake_seconds=1)
    wait_until(lambda: worker.waiting, what="the worker to enter IDLE")
    pymap_server.append(make_email(*FIRST, sender="Kari Nordmann <kari@customer.example>",
                                   message_id="<zip-1@customer.example>"))
    [first] = wait_until(lambda: [r for r in records(mail_app) if r.state == "person"], timeout=20,
                         what="the first email handed to a person")
    assert smtp_sink.messages == []  # kb was not sure enough to answer it

    context, page = open_page(browser)
    shot = Shots(page, "capture")
    log_in(page, served, SUPPORT, PASSWORD)
    page.goto(served + "/agent/mail")
    shot("mail-person")
    page.locator(f"a.answer-link[href$='/mail/{first.id}/answer']").click()
    expect(page.locator("#question-heading")).to_have_text("Zip stuck")
    page.locator("#answer-q").fill("warranty repair")
    page.locator("#answer-search button, #answer-search [type=submit]").first.click()
    with session_scope(mail_app) as session:
        warranty = session.scalar(sa.select(Article).where(Article.slug == "warranty-and-repairs"))
    page.locator(f"#pick-{warranty.id}").check()
    page.locator("#answer-prepare").click()
    expect(page.locator("#answer-message")).to_contain_text("warranty-and-repairs")
    shot("answer-prepared")
    page.locator("#answer-send").click()
    expect(page.locator(".flash").first).to_contain_text("the articles learnt the question")
    shot("answered")

    jobs.run_due(mail_app)  # the app under test keeps its job runner off: send the answer now
    [answer] = smtp_sink.wait_for(1, timeout=10)
    assert b"In-Reply-To: <zip-1@customer.example>" in answer.data and b"Auto-Submitted" not in answer.data
    assert records(mail_app)[0].state == "answered"

    pymap_server.append(make_email(*SECOND, sender="Ola <ola@customer.example>"))
    wait_until(lambda: [r for r in records(mail_app) if r.state == "replied"], timeout=20,
               what="the second email answered by kb")
    replies = smtp_sink.wait_for(2, timeout=10)
    assert b"ola@customer.example" in replies[1].data and b"warranty-and-repairs" in replies[1].data
    second = records(mail_app)[1]
    assert second.matches[0]["slug"] == "warranty-and-repairs" and second.matches[0].get("example")
    page.goto(served + "/agent/mail")
    expect(page.locator("body")).to_contain_text("like the example")
    shot("kb-answered-the-paraphrase")
    context.close()
