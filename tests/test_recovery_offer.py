"""Offering a gesture from a case: the form (with and without JavaScript), the customer's email sent once
by the job runner and threaded on the case (aiosmtpd sink), approval above a bound, cancelling, and the
ledger rows on the case's history and the customer's timeline."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from email import message_from_bytes, policy
from html import unescape

import pytest
import sqlalchemy as sa

from kb import jobs
from kb.db import session_scope
from kb.followup import signals
from kb.followup.models import Case, CaseEvent
from kb.jobs.models import Job
from kb.models import Agent, utcnow
from kb.recovery import approvals, offering, offers, sending
from kb.recovery.models import Bound, GestureType, RecoveryEntry
from tests.agent_helpers import ADMIN, EDITOR, login, make_agent, token
from tests.concurrency import at_once
from tests.test_browser import SCREENSHOTS, base_url, browser, live_app, log_in, open_page  # noqa: F401  (fixtures)
from tests.test_followup_hostile import SPECIAL, VALUES, query, send

SUPPORT, OTHER = "sam@example.com", "olga@example.com"
THREAD = "<orig-42@customer.example>"


@pytest.fixture
def mail_app(app_factory, smtp_sink):
    """An app sending through the SMTP sink, with a support agent and an admin."""
    app = app_factory(**smtp_sink.settings(SUPPORT_NAME="Fjellstad Support", BASE_URL="https://help.example.com",
                                           JOBS_RETRY_SECONDS=0.01))
    make_agent(app, SUPPORT, name="Sam Support", role="support")
    make_agent(app, ADMIN, name="Ada Admin", role="admin")
    return app


def support_client(app, email: str = SUPPORT):
    """A test client logged in as ``email``."""
    client = app.test_client()
    assert login(client, email).status_code == 302
    return client


def open_case(app, key: str = "mail:7:writeback", *, address: str = "ann@example.org", lang: str = "",
              **kwargs) -> int:
    """A case opened by the customer writing back to an email (so it has a thread); its id."""
    with session_scope(app) as session:
        result = signals.record_signal(session, key=key, source="writeback", settings=app.config, address=address,
                                       name="Ann", words="Still broken", thread_message_id=THREAD,
                                       thread_subject="My parcel is late", lang=lang, **kwargs)
        session.commit()
        return result.case.id


def add_gesture(app, name: str = "Goodwill credit", *, kind: str = "fixed_credit", limit: str | None = "25",
                **fields) -> int:
    """A gesture type (with a per-incident bound of ``limit`` when given); its id."""
    fields.setdefault("template", "Hello {name}, here is {amount} {currency} from {agent}.")
    with session_scope(app) as session:
        gesture = GestureType(name=name, kind=kind, currency="" if kind == "apology" else "EUR", **fields)
        session.add(gesture)
        session.flush()
        if limit is not None:
            session.add(Bound(scope="per_incident", gesture_type_id=gesture.id, max_amount=Decimal(limit)))
        session.commit()
        return gesture.id


def offer_form(client, case_id: int, **query_args) -> tuple[dict, str]:
    """The offer form's CSRF token and nonce, and the page's HTML (opened with ``query_args``)."""
    page = client.get(f"/agent/followups/{case_id}", query_string=query_args)
    assert page.status_code == 200
    nonce = re.search(r'id="offer-form".*?name="nonce" value="([0-9a-f]+)"', page.text, re.S).group(1)
    return {"csrf_token": token(client, f"/agent/followups/{case_id}"), "nonce": nonce}, page.text


def message_in(html: str) -> str:
    """The text of the offer form's message field."""
    return unescape(re.search(r'<textarea name="message" id="offer-message"[^>]*>(.*?)</textarea>', html, re.S).group(1))


def ledger(app) -> list[tuple[str, str, Decimal]]:
    """(kind, state, amount) of every ledger row, oldest first."""
    with session_scope(app) as session:
        return [tuple(r) for r in session.execute(sa.select(RecoveryEntry.kind, RecoveryEntry.state,
                                                            RecoveryEntry.amount).order_by(RecoveryEntry.id))]


def job_states(app, kind: str) -> list[tuple[str, str]]:
    """(key, state) of the jobs of ``kind``."""
    with session_scope(app) as session:
        return [tuple(r) for r in session.execute(sa.select(Job.key, Job.state).where(Job.kind == kind).order_by(Job.id))]


def make_due(app) -> None:
    """The send jobs due now (their retry wait, or their lease, over)."""
    with session_scope(app) as session:
        past = utcnow() - timedelta(seconds=1)
        session.execute(sa.update(Job).where(Job.kind == sending.KIND).values(run_at=past, lease_until=sa.case((Job.lease_until.is_(None), None),
                                                                                else_=past)))
        session.commit()


def to_customer(sink, address: str = "ann@example.org") -> list:
    """The emails the sink received for the customer, parsed."""
    return [message_from_bytes(m.data, policy=policy.default) for m in sink.messages if m.rcpt_tos == [address]]


def test_an_offer_within_bounds_reaches_the_customer_once_threaded_and_is_on_the_ledger(mail_app, smtp_sink):
    app, case_id = mail_app, open_case(mail_app)
    gesture_id = add_gesture(app)
    client = support_client(app)
    form, html = offer_form(client, case_id, gesture=gesture_id, amount="20")
    assert message_in(html) == "Hello Ann, here is 20 EUR from Sam Support."
    data = {**form, "gesture": gesture_id, "amount": "20", "reason": "late delivery", "reference": "",
            "message": "Hello Ann, here is **20 EUR** from Sam Support.", "action": "offer"}
    response = client.post(f"/agent/followups/{case_id}/offer", data=data, follow_redirects=True)
    assert "Sent to the customer" in response.text
    again = client.post(f"/agent/followups/{case_id}/offer", data=data, follow_redirects=True)  # a double submit
    assert "This offer was made already" in again.text
    assert ledger(app) == [("offer", "approved_auto", Decimal("20.00"))]
    jobs.run_due(app)
    jobs.run_due(app)  # once more: nothing is sent twice
    mail = to_customer(smtp_sink)
    assert len(mail) == 1
    sent = mail[0]
    assert (sent["In-Reply-To"], sent["References"], sent["Subject"]) == (THREAD, THREAD, "Re: My parcel is late")
    assert sent["Auto-Submitted"] is None and sent["Content-Language"] == "en"
    assert re.fullmatch(r"<recovery\.\d+\.[0-9a-f]{32}@help\.example\.com>", sent["Message-ID"])
    text = sent.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html_part = sent.get_body(("html",)).get_content()
    assert "Hello Ann, here is **20 EUR** from Sam Support." in text and "-- \nSam Support\nFjellstad Support" in text
    assert "<strong>20 EUR</strong>" in html_part
    assert ledger(app) == [("offer", "approved_auto", Decimal("20.00")), ("send", "sent", Decimal("20.00"))]
    with session_scope(app) as session:
        case = session.get(Case, case_id)
        assert case.state == "contacted" and case.first_contact_at is not None
        notes = [e.note for e in session.scalars(sa.select(CaseEvent).where(CaseEvent.kind == "recovery"))]
        customer_id = case.customer_id
    assert notes == ["Offered: Goodwill credit 20.00 EUR", "Sent to the customer: Goodwill credit 20.00 EUR"]
    page = client.get(f"/agent/followups/{case_id}").text
    assert re.search(r'id="offer-state-\d+">sent<', page) and "service recovery: <strong" in page
    assert "Sent to the customer: Goodwill credit 20.00 EUR" in page
    timeline = client.get(f"/agent/customers/{customer_id}").text
    assert "Offered: Goodwill credit 20.00 EUR" in timeline and "Sent to the customer: Goodwill credit 20.00 EUR" in timeline


def test_an_offer_above_a_bound_waits_asks_for_approval_and_shows_the_decision(mail_app, smtp_sink):
    app, case_id = mail_app, open_case(mail_app)
    gesture_id = add_gesture(app)
    client = support_client(app)
    form, _html = offer_form(client, case_id)
    data = {**form, "gesture": gesture_id, "amount": "40", "reason": "late", "message": "Here is 40 EUR."}
    response = client.post(f"/agent/followups/{case_id}/offer", data=data, follow_redirects=True)
    assert "Waiting for approval: above the per-incident bound of 25.00 EUR (approver: admin)." in response.text
    assert ledger(app) == [("offer", "pending", Decimal("40.00"))]
    with session_scope(app) as session:
        offer_id = session.scalar(sa.select(RecoveryEntry.id))
    key = f"offer:{offer_id}"
    assert job_states(app, approvals.ASK) == [(key, "pending")]
    assert job_states(app, approvals.ESCALATE) == [(key, "pending")]
    assert job_states(app, sending.KIND) == []  # nothing to send until it is approved
    assert re.search(rf'id="offer-state-{offer_id}">pending<', response.text)
    assert "above the per-incident bound of 25.00 EUR" in response.text
    with session_scope(app) as session:  # an admin approves (the approval pages do this, and schedule the send)
        admin = session.scalar(sa.select(Agent).where(Agent.email == ADMIN))
        result = offers.approve(session, offer_id, admin)
        sending.schedule_send(session, result.entry)  # the approval row: the job is still the offer's
        jobs.cancel(session, approvals.ASK, key)  # the approvers' email is another part's; this test is the customer's
        session.commit()
    page = client.get(f"/agent/followups/{case_id}").text
    row = page[page.index(f'id="offer-{offer_id}"'):]
    assert re.search(rf'id="offer-state-{offer_id}">approved<', row) and "Ada Admin" in row[:row.index("</tr>")]
    jobs.run_due(app)
    assert len(to_customer(smtp_sink)) == 1
    assert [kind for kind, _state, _amount in ledger(app)] == ["offer", "approval", "send"]


@pytest.mark.parametrize(("lang", "greeting", "template"), [
    ("zh", "Ann，您好：", "{name}您好，我们为您退还 {amount} {currency}。"),
    ("nb", "Hei Ann,", "Hei {name}, her er {amount} {currency} tilbake."),
])
def test_the_message_is_prefilled_and_sent_in_the_customer_s_language(mail_app, smtp_sink, lang, greeting, template):
    app, case_id = mail_app, open_case(mail_app, lang=lang)
    own = add_gesture(app, "Refund of shipping", kind="shipping_refund",
                      template="Hello {name}, {amount} {currency} back.", templates={lang: template})
    plain = add_gesture(app, "Sorry", kind="apology", template="", limit=None)
    client = support_client(app)
    _form, html = offer_form(client, case_id, gesture=own, amount="12.5")
    amount = "12,50" if lang == "nb" else "12.50"
    assert message_in(html) == template.replace("{name}", "Ann").replace("{amount}", amount).replace("{currency}", "EUR")
    _form, html = offer_form(client, case_id, gesture=plain)  # kb's own words, translated
    assert message_in(html).startswith(greeting)
    form, _html = offer_form(client, case_id)
    client.post(f"/agent/followups/{case_id}/offer", data={**form, "gesture": plain, "message": "谢谢 / takk"})
    jobs.run_due(app)
    [sent] = to_customer(smtp_sink)
    assert sent["Content-Language"] == lang


def test_without_javascript_prepare_fills_the_message_and_a_refused_offer_keeps_the_form(app, client):
    make_agent(app, SUPPORT, name="Sam Support", role="support")
    login(client, SUPPORT)
    case_id = open_case(app)
    with session_scope(app) as session:
        session.get(Case, case_id).root_cause = "delivery"
        session.commit()
    coupon = add_gesture(app, "Coupon", kind="discount_percent", needs_reference=True,
                         template="Use {reference} for {amount}{currency} off, {name}.")
    form, html = offer_form(client, case_id)
    assert 'id="offer-reason" maxlength="200" value="delivery"' in html  # the root cause by default
    assert 'src="/static/offer.js"' in html and "<script>" not in html
    data = {**form, "gesture": coupon, "amount": "10", "reference": "SORRY10", "reason": "delivery",
            "message": "", "action": "prepare"}
    prepared = client.post(f"/agent/followups/{case_id}/offer", data=data)
    assert prepared.status_code == 200 and message_in(prepared.text) == "Use SORRY10 for 10% off, Ann."
    assert 'data-prepared="yes"' in prepared.text and ledger(app) == []
    refused = client.post(f"/agent/followups/{case_id}/offer",
                          data={**data, "reference": " ", "message": "My own words", "action": "offer"})
    assert refused.status_code == 422 and "Paste the coupon code or refund reference." in refused.text
    assert message_in(refused.text) == "My own words" and 'data-prepared="yes"' not in refused.text
    assert ledger(app) == []


def test_an_editor_cannot_offer_and_a_case_kb_cannot_email_is_refused(app, client):
    make_agent(app, SUPPORT, name="Sam Support", role="support")
    make_agent(app, EDITOR, role="editor")
    gesture_id, case_id = add_gesture(app), open_case(app)
    login(client, EDITOR)
    csrf = token(client, "/agent/")
    assert client.post(f"/agent/followups/{case_id}/offer", data={"csrf_token": csrf, "gesture": gesture_id,
                                                                  "amount": "5", "message": "Hi"}).status_code == 403
    with session_scope(app) as session:
        editor = session.scalar(sa.select(Agent).where(Agent.email == EDITOR))
        with pytest.raises(offers.NotAllowed):
            offering.make_offer(session, case=session.get(Case, case_id), agent=editor,
                                gesture_type=session.get(GestureType, gesture_id), amount="5", reason="",
                                message="Hi", settings=app.config)
        phone_case = signals.record_signal(session, key="manual:1", source="manual", settings=app.config,
                                           phone="+47 22 33 44 55", words="Called").case
        session.get(Case, case_id).sample = True
        session.commit()
        phone_id = phone_case.id
    support = support_client(app)
    for target, words in ((case_id, "sample case"), (phone_id, "no email address")):
        page = support.get(f"/agent/followups/{target}").text
        assert words in page[page.index('id="offer-refused"'):] and 'id="offer-form"' not in page
        data = {"csrf_token": token(support, f"/agent/followups/{target}"), "gesture": gesture_id, "amount": "5",
                "message": "Hi"}
        assert words in support.post(f"/agent/followups/{target}/offer", data=data, follow_redirects=True).text
    assert ledger(app) == []


def test_an_offer_not_yet_sent_is_cancelled_by_its_maker_or_an_admin_and_sends_nothing(mail_app, smtp_sink):
    app, case_id = mail_app, open_case(mail_app)
    make_agent(app, OTHER, name="Olga Other", role="support")
    gesture_id = add_gesture(app)
    client = support_client(app)
    offer_ids = []
    for amount in ("10", "40"):  # one within the bound, one waiting for approval
        form, _html = offer_form(client, case_id)
        client.post(f"/agent/followups/{case_id}/offer", data={**form, "gesture": gesture_id, "amount": amount,
                                                               "message": "Sorry"})
        with session_scope(app) as session:
            offer_ids.append(session.scalar(sa.select(sa.func.max(RecoveryEntry.id))))
    within, waiting = offer_ids
    other = support_client(app, OTHER)
    assert f'id="cancel-offer-{within}"' not in other.get(f"/agent/followups/{case_id}").text
    csrf = token(other, f"/agent/followups/{case_id}")
    assert other.post(f"/agent/followups/{case_id}/offers/{within}/cancel", data={"csrf_token": csrf}).status_code == 403
    page = client.get(f"/agent/followups/{case_id}").text
    assert f'id="cancel-offer-{within}"' in page and f'id="cancel-offer-{waiting}"' in page
    csrf = token(client, f"/agent/followups/{case_id}")
    done = client.post(f"/agent/followups/{case_id}/offers/{within}/cancel", data={"csrf_token": csrf},
                       follow_redirects=True)
    assert "Cancelled: nothing will be sent." in done.text
    assert re.search(rf'id="offer-state-{within}">cancelled<', done.text)
    admin = support_client(app, ADMIN)
    csrf = token(admin, f"/agent/followups/{case_id}")
    assert admin.post(f"/agent/followups/{case_id}/offers/{waiting}/cancel", data={"csrf_token": csrf}).status_code == 303
    assert admin.post(f"/agent/followups/{case_id}/offers/999/cancel", data={"csrf_token": csrf}).status_code == 404
    assert job_states(app, sending.KIND) == [(f"offer:{within}", "cancelled")]
    assert job_states(app, approvals.ASK) == [(f"offer:{waiting}", "cancelled")]
    jobs.run_due(app)
    assert to_customer(smtp_sink) == []
    assert [(k, s) for k, s, _a in ledger(app)] == [("offer", "approved_auto"), ("offer", "pending"),
                                                     ("cancel", "cancelled"), ("cancel", "cancelled")]
    assert "Cancelled: Goodwill credit 10.00 EUR" in client.get(f"/agent/followups/{case_id}").text


def test_a_sent_offer_cannot_be_cancelled_and_a_cancelled_one_is_not_sent_by_its_job(mail_app, smtp_sink):
    app, case_id = mail_app, open_case(mail_app)
    gesture_id = add_gesture(app)
    with session_scope(app) as session:
        sam = session.scalar(sa.select(Agent).where(Agent.email == SUPPORT))
        case, gesture = session.get(Case, case_id), session.get(GestureType, gesture_id)
        first = offering.make_offer(session, case=case, agent=sam, gesture_type=gesture, amount="5", reason="",
                                    message="One", settings=app.config).entry.id
        second = offering.make_offer(session, case=case, agent=sam, gesture_type=gesture, amount="5", reason="",
                                     message="Two", settings=app.config).entry.id
        # Cancelled behind the job's back (its job left pending): the job must still send nothing.
        offers.cancel(session, second, sam)
        session.commit()
    jobs.run_due(app)
    assert [m.get_body(("plain",)).get_content().splitlines()[0] for m in to_customer(smtp_sink)] == ["One"]
    with session_scope(app) as session:
        sam = session.scalar(sa.select(Agent).where(Agent.email == SUPPORT))
        result = offering.cancel_offer(session, session.get(Case, case_id), first, sam)
        assert not result.changed and result.state == "sent" and "Too late" in result.message


def test_one_offer_form_sent_twice_at_once_makes_one_offer(app_factory, shared_db_url):
    """Two workers handle the same submit at the same moment (SQLite and PostgreSQL)."""
    app = app_factory(DATABASE_URL=shared_db_url)
    agent_id = make_agent(app, SUPPORT, name="Sam Support", role="support")
    case_id, gesture_id = open_case(app), add_gesture(app)

    def submit(session):
        return offering.make_offer(session, case=session.get(Case, case_id), agent=session.get(Agent, agent_id),
                                   gesture_type=session.get(GestureType, gesture_id), amount="5", reason="",
                                   message="Sorry", settings=app.config, nonce="ab" * 16).created

    assert sorted(at_once(app, [submit, submit])) == [False, True]
    assert ledger(app) == [("offer", "approved_auto", Decimal("5.00"))]
    assert len(job_states(app, sending.KIND)) == 1


def test_smtp_failing_in_the_middle_is_retried_and_the_customer_gets_one_email(mail_app, smtp_sink):
    app, case_id = mail_app, open_case(mail_app)
    gesture_id = add_gesture(app)
    client = support_client(app)
    form, _html = offer_form(client, case_id)
    client.post(f"/agent/followups/{case_id}/offer", data={**form, "gesture": gesture_id, "amount": "5",
                                                           "message": "Sorry"})
    smtp_sink.refuse = "451 4.3.0 try later"
    assert jobs.run_due(app)["retry"] == 1
    assert to_customer(smtp_sink) == [] and [k for k, _s, _a in ledger(app)] == ["offer"]
    smtp_sink.refuse = None

    def crash_after_sending(step, job):
        if step == "sent":  # the email went out; the ledger's send row has not been written yet
            raise RuntimeError("database connection lost")

    make_due(app)
    assert jobs.run_due(app, hook=crash_after_sending)["retry"] == 1
    assert len(to_customer(smtp_sink)) == 1 and [k for k, _s, _a in ledger(app)] == ["offer"]
    make_due(app)
    assert jobs.run_due(app)["done"] == 1
    assert len(to_customer(smtp_sink)) == 1  # the retry only wrote the ledger
    assert [k for k, _s, _a in ledger(app)] == ["offer", "send"]


OFFER_FIELDS = ["gesture", "amount", "reference", "reason", "message", "nonce", "action"]


def test_any_text_in_the_offer_forms_and_query_gets_an_answer(app, client):
    make_agent(app, SUPPORT, name="Sam Support", role="support")
    login(client, SUPPORT)
    case_id = open_case(app)
    gesture_id = add_gesture(app, needs_reference=True, limit="1000000")
    url = f"/agent/followups/{case_id}"
    csrf = token(client, url)
    good = {"gesture": str(gesture_id), "amount": "1", "reference": "R1", "reason": "x", "message": "Hi",
            "action": "offer"}
    for name in ("gesture", "amount", "reference", "reason"):  # the query that prepares a message
        for value in VALUES:
            response = client.get(f"{url}?{query({**good, name: value})}")
            assert response.status_code < 500, (name, repr(value[:80]), response.status_code)
    for name in OFFER_FIELDS:
        for value in VALUES if name in ("amount", "reference", "reason", "message") else SPECIAL:
            response = send(client, f"{url}/offer", {**good, name: value}, csrf)
            assert response.status_code < 500, (name, repr(value[:80]), response.status_code)
    for value in VALUES:
        response = send(client, f"{url}/offers/1/cancel", {"note": value}, csrf)
        assert response.status_code < 500, (repr(value[:80]), response.status_code)
    page = client.get(url)
    assert page.status_code == 200 and "<script>alert(1)</script>" not in page.text
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(RecoveryEntry)) > 1


def test_in_a_browser_the_message_fills_as_the_agent_chooses_and_keeps_their_edits(browser, live_app, base_url):
    """With JavaScript: the template fills on choosing and on typing the amount; edited text stays. Fits a phone."""
    case_id = open_case(live_app, "mail:browser:offer")
    credit = add_gesture(live_app, "Browser credit", template="Hi {name}, {amount} {currency} from {agent}.")
    add_gesture(live_app, "Browser apology", kind="apology", template="Sorry, {name}.", limit=None)
    with session_scope(live_app) as session:  # an offer on the list, as the page shows them
        offers.offer(session, case=session.get(Case, case_id), agent=session.scalar(sa.select(Agent)),
                     gesture_type=session.get(GestureType, credit), amount="30", reason="late", message="Hi",
                     settings=live_app.config)
        session.commit()
    context, page = open_page(browser, viewport={"width": 390, "height": 844})
    try:
        log_in(page, base_url)
        page.goto(f"{base_url}/agent/followups/{case_id}#offers")
        message = page.locator("#offer-message")
        page.locator("#offer-gesture").select_option(label="Browser credit (EUR)")
        page.locator("#offer-amount").fill("15")
        assert message.input_value() == "Hi Ann, 15 EUR from Ingrid Agent."
        page.locator("#offer-gesture").select_option(label="Browser apology")
        assert message.input_value() == "Sorry, Ann."
        message.fill("My own words")
        page.locator("#offer-gesture").select_option(label="Browser credit (EUR)")
        assert message.input_value() == "My own words"
        assert "pending" in page.locator("#offer-list").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "recovery-offer-form-mobile.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.problems == []
    finally:
        context.close()


@pytest.mark.postgres
def test_two_agents_offering_to_one_customer_at_once_stay_within_the_budget(app_factory, pg_database_url,
                                                                            monkeypatch):
    """Two agents press Offer at the same moment on two cases of one customer (real requests, PostgreSQL)."""
    import threading
    import time

    from kb.recovery import bounds

    measure = bounds.evaluate

    def slow_evaluate(*args, **kwargs):  # widen the window between measuring the spend and committing
        verdict = measure(*args, **kwargs)
        time.sleep(0.2)
        return verdict

    monkeypatch.setattr(bounds, "evaluate", slow_evaluate)
    app = app_factory(DATABASE_URL=pg_database_url)
    make_agent(app, SUPPORT, name="Sam Support", role="support")
    make_agent(app, OTHER, name="Olga Support", role="support")
    gesture_id = add_gesture(app, limit=None)
    with session_scope(app) as session:
        session.add(Bound(scope="customer_90d", max_amount=Decimal("30")))  # room for one offer of 20, not two
        session.commit()
    clients = [support_client(app, SUPPORT), support_client(app, OTHER)]
    for round_ in range(4):
        first = open_case(app, key=f"round:{round_}", address=f"c{round_}@example.org")
        with session_scope(app) as session:
            second = Case(customer_id=session.get(Case, first).customer_id, open_key=f"test:{round_}",
                          source="manual")
            session.add(second)
            session.commit()
            cases = (first, second.id)
        forms = [offer_form(client, case_id)[0] for client, case_id in zip(clients, cases)]
        barrier, statuses = threading.Barrier(2), []

        def press(client, case_id, form):
            barrier.wait(10)
            statuses.append(client.post(f"/agent/followups/{case_id}/offer", data={
                **form, "gesture": gesture_id, "amount": "20", "message": "Sorry", "action": "offer"}).status_code)

        threads = [threading.Thread(target=press, args=args) for args in zip(clients, cases, forms)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert statuses == [303, 303]
        with session_scope(app) as session:
            states = sorted(session.scalars(sa.select(RecoveryEntry.state).where(
                RecoveryEntry.kind == "offer", RecoveryEntry.case_id.in_(cases))))
        assert states == ["approved_auto", "pending"]  # never both within the 30 EUR budget
