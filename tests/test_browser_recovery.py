"""Service recovery in a real browser (Debian's Chromium driven by Playwright).

A support agent offers a gesture within the bounds from a case, and the customer's email arrives
threaded; a second gesture above the per-incident bound waits; the admin opens the approve link
from the email kb sent them, logs in, confirms with one click, and the customer gets that one too.
The case, the customer's timeline and /agent/recovery show both. The app runs with its job runner
thread on, as `kb serve` does, and sends to an aiosmtpd sink. Screenshots of every step go to
test-artifacts/screenshots/recovery-NN-<step>.png.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from kb import content
from kb.agents import create_agent
from kb.db import session_scope
from kb.followup import signals
from kb.recovery import catalog
from kb.recovery.models import RecoveryEntry
from kb.web import create_app
from tests.conftest import close_app, make_config
from tests.test_browser import AGENT_EMAIL, AGENT_PASSWORD, Shots, browser, log_in, open_page, serving  # noqa: F401
from tests.mailservers.smtp import module_sink  # noqa: F401 (the module-scoped "sink" fixture)
from tests.test_browser_followup import mail_to

pytestmark = pytest.mark.browser
CUSTOMER = "kari.nordmann@example.no"
SUPPORT_EMAIL, SUPPORT_PASSWORD = "sam@fjellstad.example", "support horse battery"
THREAD = "<parcel-late-1@example.no>"


@pytest.fixture(scope="module")
def recovery_app(tmp_path_factory, sink):  # noqa: F811
    """The app with an admin, a support agent, two gesture types, a 25 EUR per-incident bound and one case."""
    tmp = tmp_path_factory.mktemp("recovery-browser")
    app = create_app(make_config(tmp, TESTING=False, JOBS_RUNNER=True, JOBS_POLL_SECONDS=0.2,
                                 SMTP_HOST=sink.host, SMTP_PORT=sink.port, SMTP_SECURITY="none",
                                 TEAM_ADDRESS="team@fjellstad.example", SAMPLE_DATA=False))
    assert content.bootstrap(app) is not None
    with session_scope(app) as session:
        create_agent(session, email=AGENT_EMAIL, name="Ingrid Admin", role="admin", password=AGENT_PASSWORD)
        create_agent(session, email=SUPPORT_EMAIL, name="Sam Support", role="support", password=SUPPORT_PASSWORD)
        for name, kind in (("Refund of shipping", "shipping_refund"), ("Store credit", "fixed_credit")):
            catalog.create_gesture_type(session, {
                "name": name, "kind": kind, "currency": "EUR", "active": "on",
                "template": "Hello {name}, sorry about the late parcel. We give you {gesture}: {amount} {currency}."})
        catalog.create_bound(session, {"scope": "per_incident", "max_amount": "25", "approver_role": "admin"})
        signals.record_signal(session, key="writeback:browser-1", source="writeback", settings=app.config,
                              address=CUSTOMER, name="Kari Nordmann", words="My parcel is two weeks late.",
                              channel="email", thread_message_id=THREAD, thread_subject="Where is my parcel?")
    yield app
    close_app(app)


@pytest.fixture(scope="module")
def recovery_url(recovery_app):
    """The app served, KB_BASE_URL fixed to it for the emails' links."""
    with serving(recovery_app, set_base_url=True) as url:
        yield url


def offer(page, gesture: str, amount: str) -> None:
    """Fill the case page's offer form and press Offer (the message is prepared by the page's script)."""
    form = page.locator("#offer-form")
    form.locator("#offer-gesture").select_option(label=f"{gesture} (EUR)")
    form.locator("#offer-amount").fill(amount)
    form.locator("#offer-amount").dispatch_event("change")
    from playwright.sync_api import expect

    expect(form.locator("#offer-message")).to_have_value(re.compile(rf"Kari Nordmann.*{gesture}: {amount}"))
    form.locator("#offer-submit").click()


def offer_ids(app) -> list[int]:
    """The ids of the offer rows on the ledger, oldest first."""
    with session_scope(app) as session:
        return list(session.scalars(sa.select(RecoveryEntry.id).where(RecoveryEntry.kind == "offer")
                                    .order_by(RecoveryEntry.id)))


def test_offers_within_and_above_the_bound_and_an_approval_from_the_email(browser, recovery_app,  # noqa: F811
                                                                          recovery_url, sink):  # noqa: F811
    from playwright.sync_api import expect

    context, agent = open_page(browser)
    shot = Shots(agent, "recovery")
    log_in(agent, recovery_url, SUPPORT_EMAIL, SUPPORT_PASSWORD)
    agent.goto(recovery_url + "/agent/followups")
    agent.locator("table a").first.click()
    expect(agent.locator("#offers")).to_be_visible()
    shot("case-before")

    offer(agent, "Refund of shipping", "9.90")
    expect(agent.locator("body")).to_contain_text("Sent to the customer")
    first = mail_to(sink, CUSTOMER)[0]  # the runner thread sends it
    assert "Refund of shipping: 9.90 EUR" in first.get_body(("plain",)).get_content()
    assert first["In-Reply-To"] == THREAD and THREAD in first["References"]
    assert "Auto-Submitted" not in first
    shot("within-bounds-sent")

    offer(agent, "Store credit", "40")
    expect(agent.locator("body")).to_contain_text("Waiting for approval")
    within, above = offer_ids(recovery_app)
    expect(agent.locator(f"#offer-state-{above}")).to_have_text("pending")
    shot("above-bound-waits")

    request = mail_to(sink, AGENT_EMAIL)[0]  # the approver's email, with links signed for her
    text = request.get_body(("plain",)).get_content()
    approve = re.search(r"^Approve: (\S+?)\r?$", text, re.M)
    assert approve, text
    approve = approve.group(1)
    admin_context, admin = open_page(browser)
    admin_shot = Shots(admin, "recovery-admin")
    admin.goto(approve)  # not logged in: the login page, and back to the confirmation after it
    admin.locator("#email").fill(AGENT_EMAIL)
    admin.locator("#password").fill(AGENT_PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    expect(admin.locator("#offer-facts")).to_contain_text("Store credit")
    admin_shot("confirmation-page")
    with session_scope(recovery_app) as session:  # opening the link decided nothing
        assert session.scalar(sa.select(sa.func.count()).where(RecoveryEntry.kind == "approval")) == 0
    admin.locator("#confirm-button").click()
    expect(admin.locator("body")).to_contain_text(re.compile("approved", re.I))
    admin_shot("approved")

    second = mail_to(sink, CUSTOMER, count=2)[1]
    assert "Store credit: 40 EUR" in second.get_body(("plain",)).get_content()
    assert second["In-Reply-To"] == THREAD
    agent.reload()
    expect(agent.locator(f"#offer-state-{within}")).to_have_text("sent")
    expect(agent.locator(f"#offer-state-{above}")).to_have_text("sent")
    expect(agent.locator("#offer-list")).to_contain_text("Ingrid Admin")
    shot("case-both-sent")

    agent.goto(recovery_url + "/agent/customers")
    agent.locator("table a").first.click()
    timeline = agent.locator("body")
    expect(timeline).to_contain_text("Offered: Refund of shipping 9.90 EUR")
    expect(timeline).to_contain_text("Approved: Store credit 40.00 EUR")
    shot("timeline")

    agent.goto(recovery_url + "/agent/recovery")
    expect(agent.locator("body")).to_contain_text("Sam Support")
    expect(agent.locator("body")).to_contain_text("49.90")  # 9.90 + 40 EUR this week
    shot("recovery-overview")
    admin_context.close()
    context.close()
    assert len([m for m in sink.messages if CUSTOMER in m.rcpt_tos]) == 2  # once each
