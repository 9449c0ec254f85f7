"""The agents' /agent/mail page: every decision the auto-responder recorded, with scores and "why"."""

from __future__ import annotations

import pytest

from kb import agents
from kb.autoreply import ledger
from kb.autoreply.matcher import Match
from kb.models import ROLES, Agent
from tests.agent_helpers import login, make_agent


def record(session, n: int, outcome: str, reason: str, matches=(), *, subject="Question"):
    """Claim email ``n`` and record ``outcome`` for it."""
    rec = ledger.claim(session, dedupe_key=f"<{n}@x>", message_id=f"<{n}@x>", folder="INBOX", uidvalidity=1,
                       uid=n, from_addr=f"customer{n}@example.org", reply_to=f"customer{n}@example.org",
                       subject=subject, text=f"Text of email {n}")
    return ledger.record_decision(session, rec, outcome, reason, matches, "en")


def seed(session, make_article):
    """One replied (then solved), one left for a person, one skipped."""
    article = make_article("Track your parcel")
    replied = record(session, 1, "reply", "confident: best score 0.610",
                     [Match(str(article.id), 0.61, ["parcel", "track"])], subject="Where is <my> parcel?")
    ledger.begin_sending(session, replied, "<r1@kb>")
    ledger.finish_sent(session, replied)
    ledger.resolve(session, replied.id, "solved")
    record(session, 2, "person", "low-score: best score 0.050 is under the threshold 0.200")
    record(session, 3, "skip", "auto-submitted: auto-replied")


def test_anonymous_visitors_are_sent_to_login(client):
    response = client.get("/agent/mail")
    assert response.status_code == 302 and response.location.startswith("/agent/login")


def test_support_agents_see_every_decision_with_scores_and_why(app, client, session, make_article):
    seed(session, make_article)
    make_agent(app, role="support")
    login(client)
    page = client.get("/agent/mail")
    assert page.status_code == 200
    text = page.text
    # newest first
    assert text.index("customer3@example.org") < text.index("customer2@example.org") < text.index("customer1@example.org")
    assert "Where is &lt;my&gt; parcel?" in text  # escaped
    assert 'href="/en/articles/track-your-parcel"' in text and "0.61" in text and "why: parcel, track" in text
    assert "low-score: best score 0.050" in text and "auto-submitted: auto-replied" in text
    assert "Solved" in text and "Text of email 2" in text
    assert "3 emails" in text


def test_the_page_filters_by_state(app, client, session, make_article):
    seed(session, make_article)
    make_agent(app, role="support")
    login(client)
    text = client.get("/agent/mail?state=person").text
    assert "customer2@example.org" in text
    assert "customer1@example.org" not in text and "customer3@example.org" not in text
    assert "person (1)" in text and "replied (1)" in text
    assert "No email in this state." in client.get("/agent/mail?state=retry").text
    assert "3 emails" in client.get("/agent/mail?state=bogus").text  # unknown filter: everything


def test_an_empty_ledger_says_so(app, client):
    make_agent(app)
    login(client)
    assert "No email yet." in client.get("/agent/mail").text


def test_editors_see_the_decisions_without_anything_the_customer_wrote(app, client, session, make_article):
    seed(session, make_article)
    record(session, 4, "person", "sender-cap: customer4@example.org already got 1 auto-reply(s)",
           subject="My secret order")
    make_agent(app)  # an editor
    login(client)
    text = client.get("/agent/mail").text
    for private in ("customer1@example.org", "customer4@example.org", "Where is", "My secret order", "Text of email"):
        assert private not in text, private
    assert "sender-cap" in text and "low-score" in text and "Solved" in text and "0.61" in text
    assert "shown to support agents and admins only" in text


@pytest.mark.parametrize("role", ["support", "admin"])
def test_support_agents_and_admins_see_the_customers_text(app, client, session, make_article, role):
    seed(session, make_article)
    make_agent(app, role=role)
    login(client)
    text = client.get("/agent/mail").text
    assert "customer2@example.org" in text and "Text of email 2" in text and "only" not in text


def test_who_may_read_customer_mail_is_one_rule():
    assert [role for role in ROLES if agents.can(Agent(role=role, active=True), "read_customer_mail")] == [
        "support", "admin"]
    assert not agents.can(Agent(role="admin", active=False), "read_customer_mail")
    assert not agents.can(None, "read_customer_mail")


def test_without_a_mailbox_the_page_says_how_to_set_one_up(app, client):
    make_agent(app)
    login(client)
    text = client.get("/agent/mail").text
    assert "No mailbox is set up yet" in text
    for setting in ("KB_IMAP_HOST", "KB_IMAP_USER", "KB_IMAP_PASSWORD", "KB_SMTP_HOST", "KB_BASE_URL"):
        assert f"<code>{setting}</code>" in text, setting
    assert "The auto-responder" in text and "README" in text
    assert "<code>kb autoreply --once --dry-run</code>" in text


def test_with_a_mailbox_the_setup_help_is_gone(app_factory):
    app = app_factory(IMAP_HOST="imap.example.com")
    make_agent(app)
    client = app.test_client()
    login(client)
    assert "No mailbox is set up yet" not in client.get("/agent/mail").text
