"""The whole follow-up loop in a real browser (Debian's Chromium driven by Playwright).

A customer votes "No" with a comment and an address; an agent sees the case in the queue,
acknowledges it, sends a follow-up, resolves it with a root cause; the customer answers the
re-survey from the link in its email; the report counts the case. The app runs with its job
runner thread on, as `kb serve` does, and sends to an aiosmtpd sink. Screenshots of every step
go to test-artifacts/screenshots/followup-NN-<step>.png.
"""

from __future__ import annotations

import email
import email.policy
import re

import pytest
import sqlalchemy as sa

from kb import content
from kb.agents import create_agent
from kb.db import session_scope
from kb.followup.models import Case, Survey
from kb.web import create_app
from tests.conftest import close_app, make_config
from tests.mailservers.smtp import SmtpSink, module_sink  # noqa: F401 (the module-scoped "sink" fixture)
from tests.test_browser import AGENT_EMAIL, AGENT_PASSWORD, Shots, browser, log_in, open_page, serving  # noqa: F401

pytestmark = pytest.mark.browser
CUSTOMER = "ola.nordmann@example.no"
TEAM = "team@fjellstad.example"


@pytest.fixture(scope="module")
def loop_app(tmp_path_factory, sink):
    """The app with the starter articles, an admin, its job runner on and surveys due at once."""
    tmp = tmp_path_factory.mktemp("followup-browser")
    app = create_app(make_config(tmp, TESTING=False, JOBS_RUNNER=True, JOBS_POLL_SECONDS=0.2,
                                 SMTP_HOST=sink.host, SMTP_PORT=sink.port, SMTP_SECURITY="none",
                                 TEAM_ADDRESS=TEAM, RESURVEY_DELAY_HOURS=0, SAMPLE_DATA=False))
    assert content.bootstrap(app) is not None
    with session_scope(app) as session:
        create_agent(session, email=AGENT_EMAIL, name="Ingrid Agent", role="admin", password=AGENT_PASSWORD)
    yield app
    close_app(app)


@pytest.fixture(scope="module")
def loop_url(loop_app):
    """The app served, KB_BASE_URL fixed to it for the emails' links."""
    with serving(loop_app, set_base_url=True) as url:
        yield url


def mail_to(sink: SmtpSink, address: str, count: int = 1, timeout: float = 60) -> list[email.message.EmailMessage]:
    """Wait for ``count`` messages to ``address`` at the sink, parsed."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = [email.message_from_bytes(m.data, policy=email.policy.default)
                 for m in list(sink.messages) if address in m.rcpt_tos]
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) >= count, f"expected {count} emails to {address}, got {len(found)}"
            return found
        time.sleep(0.2)


def the_case(app) -> Case:
    """The one case in the database."""
    with session_scope(app) as session:
        cases = list(session.scalars(sa.select(Case)))
        assert len(cases) == 1
        return cases[0]


def test_the_loop_closes_in_a_browser(browser, loop_app, loop_url, sink):  # noqa: F811
    from playwright.sync_api import expect

    context, customer = open_page(browser)
    shot = Shots(customer, "followup")
    customer.goto(loop_url + "/en/articles/reset-password")
    form = customer.locator("#feedback form").first
    form.locator("#vote-comment").fill("The reset email never arrives.")
    form.locator("#vote-reason").select_option("not_answered")
    form.locator("#vote-email").fill(CUSTOMER)
    shot("customer-votes-no")
    form.get_by_role("button", name="No", exact=True).click()
    expect(customer.locator(".flash")).to_be_visible()
    shot("customer-voted")

    alert = mail_to(sink, TEAM)[0]  # within the minute, by the runner thread
    assert "The reset email never arrives." in alert.get_body(("plain",)).get_content()

    agent_context, agent = open_page(browser)
    agent_shot = Shots(agent, "followup-agent")
    log_in(agent, loop_url)
    agent.goto(loop_url + "/agent/followups")
    case_id = the_case(loop_app).id
    row = agent.locator(f"#case-{case_id}")
    expect(row).to_contain_text(CUSTOMER)
    agent_shot("queue")
    row.locator("a").first.click()
    expect(agent.locator("body")).to_contain_text("The reset email never arrives.")
    agent.locator("#ack-button").click()
    expect(agent.locator("body")).to_contain_text("acknowledged")
    agent_shot("acknowledged")

    agent.locator("#message-body").fill("Sorry about that, Ola. Check your spam folder; "
                                        "I have also sent a new link.")
    agent.locator("#send-message").click()
    follow_up = mail_to(sink, CUSTOMER)[0]
    assert "Check your spam folder" in follow_up.get_body(("plain",)).get_content()
    assert "Auto-Submitted" not in follow_up
    agent_shot("message-sent")

    resolve = agent.locator("#resolve-form")
    resolve.locator("#root-cause").select_option("article")
    resolve.locator("#resolve-button").click()
    expect(agent.locator("body")).to_contain_text("resolved")
    agent_shot("resolved")

    survey = mail_to(sink, CUSTOMER, count=2)[1]  # RESURVEY_DELAY_HOURS=0: due at once
    links = re.findall(r"https?://\S+/survey/[\w.\-]+", survey.get_body(("plain",)).get_content())
    assert links, "the survey email has no survey link"
    customer.goto(links[0])
    shot("survey-page")
    with session_scope(loop_app) as session:  # opening the link (what a scanner does) records nothing
        assert session.scalar(sa.select(Survey.score)) is None
    customer.locator("input[name=score][value='5']").check()
    customer.locator("#survey-comment").fill("Quick and kind, thank you.")
    customer.get_by_role("button", name="Send my answer").click()
    expect(customer.locator("body")).to_contain_text(re.compile("thank", re.I))
    shot("survey-answered")
    assert the_case(loop_app).score_after == 5

    agent.goto(loop_url + "/agent/followups/report")
    expect(agent.locator("table").first).to_be_visible()
    expect(agent.locator("svg").first).to_be_visible()
    agent_shot("report")
    assert "article" in agent.locator("body").inner_text()
    agent_context.close()
    context.close()
