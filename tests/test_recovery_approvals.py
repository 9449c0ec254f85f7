"""Approval above the bounds on real parts: the aiosmtpd sink, a webhook server in a thread, the job
runner driven by the test (run_due), the Flask test client with CSRF on, and PostgreSQL for two
approvers at once. Offers are made with kb.recovery.offers directly (the offering page is apart).
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from decimal import Decimal
from email import message_from_bytes
from email.policy import default as default_policy
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from kb import jobs
from kb.db import session_scope
from kb.followup.models import Case, CaseEvent, Customer, CustomerIdentity
from kb.jobs.models import Job
from kb.models import Agent, utcnow
from kb.recovery import approval_links, approvals, offers
from kb.recovery.models import Bound, GestureType, RecoveryEntry
from tests.agent_helpers import login, make_agent, token
from tests.conftest import csrf_token_from
from tests.webhookserver import webhook_server  # noqa: F401  (the fixture)

pytestmark = pytest.mark.filterwarnings("error")
SAM, ADA, ALEX, SUE, EDITH = ("sam@kb.example", "ada@kb.example", "alex@kb.example", "sue@kb.example",
                              "edith@kb.example")
BASE = "https://help.example.com"
REASON = "Parcel arrived broken, second time"


@pytest.fixture
def app(app_factory, smtp_sink, webhook_server):
    """An app mailing the sink and posting to the webhook server, with the team of this file."""
    app = app_factory(**smtp_sink.settings(), ALERT_WEBHOOK_URL=webhook_server.url, BASE_URL=BASE,
                      JOBS_RETRY_SECONDS=0.01)
    team(app, (SAM, "Sam Support", "support"), (ADA, "Ada Admin", "admin"), (ALEX, "Alex Admin", "admin"),
         (SUE, "Sue Support", "support"), (EDITH, "Edith Editor", "editor"))
    with session_scope(app) as session:
        customer = Customer(name="Bob Buyer")
        session.add(customer)
        session.flush()
        session.add(CustomerIdentity(customer_id=customer.id, kind="email", value="bob@customer.example",
                                     display="bob@customer.example"))
        session.add(GestureType(name="Voucher", kind="fixed_credit", currency="EUR", template="Sorry!"))
    return app


def team(app, first, *others) -> None:
    """Agents with the test password, hashed once (hashing is slow on purpose)."""
    make_agent(app, first[0], name=first[1], role=first[2])
    with session_scope(app) as session:
        password_hash = agent(session, first[0]).password_hash
        session.add_all(Agent(email=email, name=name, role=role, password_hash=password_hash)
                        for email, name, role in others)


def bound(app, approver_role: str = "admin", max_amount: str = "50") -> None:
    """A per-incident bound on every gesture."""
    with session_scope(app) as session:
        session.add(Bound(scope="per_incident", max_amount=Decimal(max_amount), approver_role=approver_role))


def offer(app, amount: str = "80", by: str = SAM, minutes_ago: float = 0) -> int:
    """A pending offer on a new case of Bob's, asked for approval as the offering page does; its id."""
    now = utcnow() - timedelta(minutes=minutes_ago)
    with session_scope(app) as session:
        customer = session.scalar(sa.select(Customer).where(Customer.name == "Bob Buyer"))
        case = Case(open_key=f"test:{utcnow().timestamp()}:{amount}:{minutes_ago}", customer_id=customer.id,
                    source="manual")
        session.add(case)
        session.flush()
        result = offers.offer(session, case=case, agent=agent(session, by), amount=amount, reason=REASON,
                              gesture_type=session.scalar(sa.select(GestureType)), settings=app.config,
                              message="We are sorry: here is a voucher.", now=now)
        assert result.state == "pending"
        approvals.request(session, result.entry, app.config, now=now)
        return result.entry.id


def agent(session, email: str) -> Agent:
    return session.scalar(sa.select(Agent).where(Agent.email == email))


def state(app, offer_id: int) -> str:
    with session_scope(app) as session:
        return offers.state_of(session, offer_id)


def job_states(app, kind: str) -> dict[str, str]:
    with session_scope(app) as session:
        return dict(session.execute(sa.select(Job.key, Job.state).where(Job.kind == kind)).all())


def run_jobs(app) -> None:
    """Run what is due, then what those jobs scheduled (the fan-out to each approver)."""
    jobs.run_due(app)
    jobs.run_due(app)


def mails(sink) -> dict[str, object]:
    """The sink's emails by recipient (each approver gets their own)."""
    found = {}
    for mail in sink.messages:
        assert len(mail.rcpt_tos) == 1, mail.rcpt_tos
        found.setdefault(mail.rcpt_tos[0], []).append(message_from_bytes(mail.data, policy=default_policy))
    return found


def links(message) -> dict[str, str]:
    """The approve and decline links of an email, as paths for the test client."""
    text = message.get_content()
    found = dict(re.findall(r"^(Approve|Decline): (\S+)\r?$", text, re.M))
    assert set(found) == {"Approve", "Decline"}, text
    return {action.lower(): urlsplit(url).path + "?" + urlsplit(url).query for action, url in found.items()}


def logged_in(app, email: str) -> FlaskClient:
    client = app.test_client()
    assert login(client, email).status_code == 302
    return client


def link_for(app, offer_id: int, action: str, email: str, **kw) -> str:
    """A link as an email to ``email`` carries it (a path with its token)."""
    with session_scope(app) as session:
        agent_id = agent(session, email).id
    url = approval_links.make_urls("", app.config["SECRET_KEY"], offer_id, agent_id, **kw)[action]
    return url


def confirm(client, link: str, note: str = ""):
    """Open the link's page and press its one button."""
    page = client.get(link)
    assert page.status_code == 200, page.text
    action = re.search(r'id="confirm-form" action="([^"]+)"', page.text).group(1)
    t = re.search(r'name="t" value="([^"]+)"', page.text).group(1)
    return client.post(action, data={"csrf_token": csrf_token_from(page.text), "t": t, "note": note})


# --- the request: emails and the webhook --------------------------------------------------------------

def test_each_approver_gets_an_email_with_links_that_work_and_the_webhook_gets_the_facts(app, smtp_sink,
                                                                                        webhook_server):
    bound(app)
    offer_id = offer(app)
    run_jobs(app)
    by_rcpt = mails(smtp_sink)
    assert sorted(by_rcpt) == [ADA, ALEX]  # the admins; not the offering agent, support or the editor
    message = by_rcpt[ADA][0]
    assert message["Subject"] == "[kb] Approval needed: Sam Support offered Voucher (80.00 EUR) to Bob Buyer <bob@customer.example>"
    text = message.get_content()
    for fact in ("Who offered: Sam Support <sam@kb.example>", "Amount: 80.00 EUR", f"Reason: {REASON}",
                 "- per incident, all gestures: at most 50.00 EUR, 80.00 EUR with this offer: 30.00 EUR over",
                 "We are sorry: here is a voucher.", f"All offers waiting: {BASE}/agent/recovery/approvals"):
        assert fact in text
    assert links(message)["approve"] != links(by_rcpt[ALEX][0])["approve"]  # signed for each approver

    client = logged_in(app, ADA)
    for action, link in links(message).items():
        page = client.get(link)
        assert page.status_code == 200 and f"{action.capitalize()} this offer?" in page.text
        assert "Bob Buyer" in page.text and "30.00 EUR over" in page.text
    assert state(app, offer_id) == "pending"  # opening a link decides nothing

    post = webhook_server.wait_for(1)[0]["json"]
    assert (post["event"], post["offer_id"], post["amount"], post["currency"], post["reason"]) == (
        "approval", offer_id, "80.00", "EUR", REASON)
    assert post["agent"] == {"name": "Sam Support", "email": SAM}
    assert post["exceeded"] == ["per incident, all gestures: at most 50.00 EUR, 80.00 EUR with this offer: 30.00 EUR over"]
    assert client.get(urlsplit(post["approve_url"]).path + "?" + urlsplit(post["approve_url"]).query).status_code == 200
    assert post["decline_url"].startswith(f"{BASE}/agent/recovery/approvals/{offer_id}/decline?t=")


def test_approving_from_the_email_needs_a_login_a_csrf_post_and_then_sends_and_tells_the_agent(app, smtp_sink):
    bound(app)
    offer_id = offer(app)
    run_jobs(app)
    link = links(mails(smtp_sink)[ADA][0])["approve"]
    client = app.test_client()
    to_login = client.get(link)
    assert to_login.status_code == 302 and "/agent/login" in to_login.location
    back = login(client, ADA, next=parse_qs(urlsplit(to_login.location).query)["next"][0])
    assert back.location == link
    action = f"/agent/recovery/approvals/{offer_id}/approve"
    assert client.post(action, data={"t": link.split("t=", 1)[1]}).status_code == 400  # no CSRF token
    assert state(app, offer_id) == "pending"

    done = confirm(client, link, note="Fine, it happened twice")
    assert done.status_code == 303 and done.location.endswith("/agent/recovery/approvals")
    assert "approved" in client.get(done.location).text.lower()
    assert state(app, offer_id) == "approved"
    with session_scope(app) as session:
        row = offers.history(session, offer_id)[-1]
        assert (row.kind, row.approver_id, row.reason) == ("approval", agent(session, ADA).id, "Fine, it happened twice")
        notes = session.scalars(sa.select(CaseEvent.note).where(CaseEvent.kind == "recovery")).all()
        assert any(note.startswith("Approved: Voucher 80.00 EUR") for note in notes)
    assert job_states(app, "recovery.send") == {f"offer:{offer_id}": "pending"}
    assert job_states(app, approvals.ESCALATE) == {f"offer:{offer_id}": "cancelled"}
    smtp_sink.messages.clear()
    jobs.run_due(app)
    told = mails(smtp_sink)[SAM][0]
    assert told["Subject"] == "[kb] Offer approved: Voucher (80.00 EUR)"
    assert "Ada Admin approved your offer" in told.get_content()


# --- refusals ------------------------------------------------------------------------------------------

def test_forged_tampered_expired_and_other_agents_links_are_refused(app):
    bound(app)
    offer_id, other_id = offer(app), offer(app, "90")
    client = logged_in(app, ADA)
    good = link_for(app, offer_id, "approve", ADA)
    path, t = good.split("?t=")
    forged = approval_links.make_urls("", "another-secret-" * 3, offer_id, 2)["approve"]
    cases = {
        "forged": (forged, 400, "signature does not match"),
        "tampered": (f"{path}?t={t[:-3]}{'A' if t[-3] != 'A' else 'B'}{t[-2:]}", 400, "signature does not match"),
        "cut short": (f"{path}?t={t[:20]}", 400, "signature does not match"),
        "no token": (path, 400, "signature does not match"),
        "another offer": (f"/agent/recovery/approvals/{other_id}/approve?t={t}", 400, "another offer or action"),
        "another action": (f"/agent/recovery/approvals/{offer_id}/decline?t={t}", 400, "another offer or action"),
        "expired": (link_for(app, offer_id, "approve", ADA, now=utcnow() - timedelta(hours=73)), 410, "expired"),
        "another agent's": (link_for(app, offer_id, "approve", ALEX), 403, "sent to another agent"),
    }
    for name, (link, status, says) in cases.items():
        page = client.get(link)
        assert (page.status_code, says in page.text) == (status, True), name
    csrf = token(client, "/agent/recovery/approvals")
    for name in ("tampered", "expired", "another agent's"):
        link = cases[name][0]
        refused = client.post(link.split("?")[0], data={"csrf_token": csrf, "t": link.split("t=")[1]})
        assert refused.status_code == cases[name][1], name
    assert (state(app, offer_id), state(app, other_id)) == ("pending", "pending")
    assert client.get(good).status_code == 200


def test_a_replayed_link_says_who_decided_and_when_and_changes_nothing(app):
    bound(app)
    offer_id = offer(app)
    link = link_for(app, offer_id, "decline", ADA)
    client = logged_in(app, ADA)
    page = client.get(link)
    assert confirm(client, link).status_code == 303
    again = client.get(link)
    assert again.status_code == 409
    assert re.search(r"Ada Admin declined this offer on \d{4}-\d\d-\d\d \d\d:\d\d UTC", again.text)
    replay = client.post(link.split("?")[0], data={"csrf_token": csrf_token_from(page.text), "t": link.split("t=")[1]})
    assert replay.status_code == 409
    alex = logged_in(app, ALEX)  # a second approver, later, from the queue
    late = alex.post(f"/agent/recovery/approvals/{offer_id}/approve",
                     data={"csrf_token": token(alex, "/agent/recovery/approvals")})
    assert late.status_code == 409 and "Ada Admin declined" in late.text
    with session_scope(app) as session:
        assert [row.kind for row in offers.history(session, offer_id)] == ["offer", "decline"]
    assert job_states(app, "recovery.send") == {}


def test_an_editor_the_offering_agent_and_support_under_an_admin_bound_cannot_decide(app):
    bound(app)
    own_id = offer(app, by=ADA)
    sams_id = offer(app)
    team_link = approval_links.make_urls("", app.config["SECRET_KEY"], sams_id, approval_links.ANY_APPROVER)
    editor = logged_in(app, EDITH)
    assert editor.get(team_link["approve"]).status_code == 403
    assert "Editors cannot approve" in editor.get(team_link["approve"]).text
    assert editor.post(f"/agent/recovery/approvals/{sams_id}/approve",
                       data={"csrf_token": token(editor, "/agent/")}).status_code == 403
    assert editor.get("/agent/recovery/approvals").status_code == 403

    ada = logged_in(app, ADA)
    own = ada.get(link_for(app, own_id, "approve", ADA))
    assert own.status_code == 403 and "You made this offer" in own.text
    queue = ada.get("/agent/recovery/approvals")
    assert f'id="approve-{own_id}"' not in queue.text and f'id="approve-{sams_id}"' in queue.text
    assert ada.post(f"/agent/recovery/approvals/{own_id}/approve",
                    data={"csrf_token": csrf_token_from(queue.text)}).status_code == 403

    sue = logged_in(app, SUE)
    queue = sue.get("/agent/recovery/approvals")
    assert queue.status_code == 200 and "An admin decides this offer." in queue.text and "approve-" not in queue.text
    assert sue.post(f"/agent/recovery/approvals/{sams_id}/approve",
                    data={"csrf_token": csrf_token_from(queue.text)}).status_code == 403
    assert (state(app, own_id), state(app, sams_id)) == ("pending", "pending")


# --- escalation and the queue ----------------------------------------------------------------------------

def test_escalation_after_the_minutes_goes_to_every_admin_only_while_the_offer_waits(app, smtp_sink, webhook_server):
    bound(app, approver_role="support")
    waiting_id = offer(app, "60", minutes_ago=31)  # its escalation is due
    decided_id = offer(app, "70", minutes_ago=31)
    recent_id = offer(app, "75")  # its escalation is not due yet
    with session_scope(app) as session:  # decided without the page, so only the handler's check stops it
        offers.approve(session, decided_id, agent(session, SUE))
    run_jobs(app)
    escalations = {rcpt: [m for m in found if "Still waiting" in m["Subject"]]
                   for rcpt, found in mails(smtp_sink).items()}
    assert {rcpt: len(found) for rcpt, found in escalations.items()} == {ADA: 1, ALEX: 1, SUE: 0}
    message = escalations[ADA][0]
    assert message["Subject"].startswith("[kb] Still waiting after 31 min: Sam Support offered Voucher (60.00 EUR)")
    assert "waited 31 minutes" in message.get_content()
    assert "/approvals/%d/approve" % waiting_id in message.get_content()
    asks = [m for found in mails(smtp_sink).values() for m in found if "Approval needed" in m["Subject"]]
    assert len(asks) == 6  # the waiting and the recent offer, each to Ada, Alex and Sue (not Sam)
    events = sorted((p["json"]["event"], p["json"]["offer_id"]) for p in webhook_server.wait_for(3))
    assert events == [("approval", waiting_id), ("approval", recent_id), ("approval_escalation", waiting_id)]
    escalated = [p["json"] for p in webhook_server.posts if p["json"]["event"] == "approval_escalation"]
    assert escalated[0]["waited_minutes"] == 31 and "Still waiting after 31 min" in escalated[0]["text"]
    assert job_states(app, approvals.ESCALATE)[f"offer:{recent_id}"] == "pending"


def test_the_queue_lists_the_oldest_first_counts_them_in_the_menu_and_declines_with_a_note(app):
    bound(app)
    newer_id, older_id = offer(app, "80", minutes_ago=5), offer(app, "90", minutes_ago=65)
    client = logged_in(app, ADA)
    queue = client.get("/agent/recovery/approvals")
    assert queue.text.index(f'id="offer-{older_id}"') < queue.text.index(f'id="offer-{newer_id}"')
    assert re.search(r'id="approval-count"[^>]*>2<', queue.text)
    assert "1 h 5 min" in queue.text and "40.00 EUR over" in queue.text
    done = client.post(f"/agent/recovery/approvals/{older_id}/decline",
                       data={"csrf_token": csrf_token_from(queue.text), "note": "Too much for a late parcel"})
    assert done.status_code == 303
    after = client.get(done.location)
    assert f"Offer {older_id}: Declined." in after.text and f'id="offer-{older_id}"' not in after.text
    assert re.search(r'id="approval-count"[^>]*>1<', after.text)
    too_long = client.post(f"/agent/recovery/approvals/{newer_id}/approve",
                           data={"csrf_token": csrf_token_from(after.text), "note": "x" * 201})
    assert too_long.status_code == 422 and state(app, newer_id) == "pending"
    with session_scope(app) as session:
        row = offers.history(session, older_id)[-1]
        assert (row.kind, row.state, row.reason) == ("decline", "declined", "Too much for a late parcel")
    assert job_states(app, "recovery.send") == {}
    assert 'id="nav-approvals"' not in logged_in(app, EDITH).get("/agent/").text


@pytest.mark.postgres
def test_two_approvers_pressing_at_once_make_one_decision(app_factory, pg_database_url):
    app = app_factory(DATABASE_URL=pg_database_url)
    team(app, (SAM, "Sam Support", "support"), (ADA, "Ada Admin", "admin"), (ALEX, "Alex Admin", "admin"))
    with session_scope(app) as session:
        customer = Customer(name="Bob Buyer")
        session.add_all([customer, GestureType(name="Voucher", kind="fixed_credit", currency="EUR", template="x")])
    bound(app)
    offer_id = offer(app)
    clients = [logged_in(app, email) for email in (ADA, ALEX)]
    forms = [{"csrf_token": token(c, "/agent/recovery/approvals")} for c in clients]
    barrier, statuses = threading.Barrier(2), []

    def press(client, form):
        barrier.wait(10)
        statuses.append(client.post(f"/agent/recovery/approvals/{offer_id}/approve", data=form).status_code)

    threads = [threading.Thread(target=press, args=pair) for pair in zip(clients, forms)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [303, 409]
    with session_scope(app) as session:
        assert [row.kind for row in offers.history(session, offer_id)] == ["offer", "approval"]
        assert session.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.kind == "recovery.send")) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(RecoveryEntry)) == 2


def test_any_text_in_the_note_or_the_token_gets_an_answer_never_a_500(app):
    from tests.test_autoreply_compose import hostile_strings
    from tests.test_followup_hostile import SPECIAL, query, send

    values = SPECIAL + list(hostile_strings(6, seed=8))
    bound(app)
    client = logged_in(app, ADA)
    csrf = token(client, "/agent/recovery/approvals")
    for value in values:
        offer_id = offer(app)
        path = f"/agent/recovery/approvals/{offer_id}/decline"
        assert client.get(f"{path}?{query({'t': value})}").status_code == 400
        if value:  # an empty token is the queue's button: the session and CSRF decide alone
            assert send(client, path, {"t": value, "note": "x"}, csrf).status_code == 400
        decided = send(client, path, {"note": value}, csrf)
        assert decided.status_code == (422 if len(value.strip()) > 200 else 303), repr(value[:40])
    assert client.get("/agent/recovery/approvals").status_code == 200
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).where(RecoveryEntry.kind == "decline")) == sum(
            len(v.strip()) <= 200 for v in values)
