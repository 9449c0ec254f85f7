"""The agents' follow-up pages: the queue, a case's page and actions, opening a case by hand, and
messages to the customer sent by the job runner, threaded on their email (aiosmtpd sink)."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
import sqlalchemy as sa

from kb import jobs
from kb.db import get_db, session_scope
from kb.followup import cases, hours, queue, signals
from kb.followup.models import Case, CaseEvent, Signal
from kb.jobs.models import Job
from kb.models import utcnow
from tests.agent_helpers import ADMIN, EDITOR, login, make_agent, token
from tests.test_browser import SCREENSHOTS, base_url, browser, live_app, log_in, open_page  # noqa: F401  (fixtures)

SUPPORT = "sam@example.com"
OTHER = "olga@example.com"


def open_case(app, key: str, *, minutes_ago: float = 0, source: str = "vote", **kwargs) -> int:
    """Record a signal (opening a case) and date the case ``minutes_ago``; returns the case id."""
    with app.app_context(), session_scope(app) as session:
        result = signals.record_signal(session, key=key, source=source, settings=app.config, **kwargs)
        result.case.opened_at = utcnow() - timedelta(minutes=minutes_ago)
        session.commit()
        return result.case.id


def case_state(app, case_id: int) -> Case:
    """A fresh copy of the case."""
    with session_scope(app) as session:
        case = session.get(Case, case_id)
        session.expunge(case)
        return case


def events(app, case_id: int, kind: str | None = None) -> list[CaseEvent]:
    """The case's history (optionally of one kind), detached."""
    with session_scope(app) as session:
        found = [e for e in cases.history(session, session.get(Case, case_id)) if kind is None or e.kind == kind]
        session.expunge_all()
        return found


def post(client, url: str, data: dict, page: str):
    """POST a form with a CSRF token from ``page``."""
    return client.post(url, data={**data, "csrf_token": token(client, page)})


def row_order(html: str) -> list[int]:
    """The case ids of the queue's rows, in order."""
    return [int(n) for n in re.findall(r'<tr id="case-(\d+)"', html)]


@pytest.fixture
def support(app, client):
    """A support agent, logged in; returns the agent's id."""
    agent_id = make_agent(app, SUPPORT, name="Sam Support", role="support")
    login(client, SUPPORT)
    return agent_id


def test_the_queue_lists_the_oldest_unacknowledged_case_first_with_its_wait(app, client, support):
    newer = open_case(app, "vote:1", minutes_ago=3, address="a@example.org", name="Ann", words="Too vague")
    older = open_case(app, "vote:2", minutes_ago=12.5, address="b@example.org")
    acked = open_case(app, "vote:3", minutes_ago=60 * 26, address="c@example.org")
    with session_scope(app) as session:
        cases.change_state(session, session.get(Case, acked), "acknowledge", agent_id=support)
        session.commit()
    page = client.get("/agent/followups")
    assert page.status_code == 200
    assert row_order(page.text) == [older, newer, acked]  # the acknowledged one waited longest, yet comes last
    row = page.text[page.text.index(f'id="case-{older}"'):page.text.index(f'id="case-{newer}"')]
    assert "12 min" in row and "b@example.org" in row and "“No” vote" in row and "new" in row
    assert "Ann &lt;a@example.org&gt;" in page.text
    assert "1 d 2 h" in page.text


def test_the_queue_filters_by_state_assignee_category_and_source(app, client, support):
    other = make_agent(app, OTHER, name="Olga", role="support")
    vote = open_case(app, "vote:1", address="a@example.org")
    manual = open_case(app, "manual:1", source="manual", address="b@example.org")
    done = open_case(app, "vote:3", address="c@example.org")
    with session_scope(app) as session:
        cases.assign(session, session.get(Case, vote), support, agent_id=support)
        cases.assign(session, session.get(Case, manual), other, agent_id=support)
        cases.change_state(session, session.get(Case, done), "resolve", agent_id=support, settings=app.config,
                           root_cause="delivery")
        session.commit()
    assert set(row_order(client.get("/agent/followups").text)) == {vote, manual}  # open states by default
    assert row_order(client.get("/agent/followups?state=resolved").text) == [done]
    assert set(row_order(client.get("/agent/followups?state=all").text)) == {vote, manual, done}
    assert row_order(client.get("/agent/followups?assignee=me").text) == [vote]
    assert row_order(client.get(f"/agent/followups?assignee={other}").text) == [manual]
    assert row_order(client.get("/agent/followups?assignee=nobody&state=all").text) == [done]
    assert row_order(client.get("/agent/followups?state=all&category=delivery").text) == [done]
    assert row_order(client.get("/agent/followups?state=all&category=billing").text) == []
    assert row_order(client.get("/agent/followups?source=manual").text) == [manual]
    # unknown values fall back to the defaults rather than failing
    assert set(row_order(client.get("/agent/followups?state=x&assignee=y&source=z").text)) == {vote, manual}


def test_the_queue_is_paginated(app, client, support):
    ids = [open_case(app, f"vote:{n}", minutes_ago=100 - n, address=f"c{n}@example.org") for n in range(5)]
    with session_scope(app) as session:
        first = queue.list_cases(session, queue.Filters(), agent_id=support, page=1, per_page=2)
        last = queue.list_cases(session, queue.Filters(), agent_id=support, page=3, per_page=2)
    assert (first.total, first.pages) == (5, 3)
    assert [r.case.id for r in first.rows] == ids[:2] and [r.case.id for r in last.rows] == ids[4:]
    for n in range(5, 52):
        open_case(app, f"vote:{n}", address=f"c{n}@example.org")
    page = client.get("/agent/followups?source=vote")
    assert len(row_order(page.text)) == queue.PER_PAGE and 'id="page-next"' in page.text
    assert "page=2" in page.text and "source=vote" in page.text
    assert len(row_order(client.get("/agent/followups?source=vote&page=2").text)) == 52 - queue.PER_PAGE


def test_the_agent_menu_counts_open_unacknowledged_cases_with_one_query(app, client, support):
    for n in range(3):
        open_case(app, f"vote:{n}", address=f"c{n}@example.org")
    with session_scope(app) as session:
        cases.change_state(session, session.get(Case, 1), "acknowledge", agent_id=support)
        session.commit()
    statements = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    engine = get_db(app).engine
    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        page = client.get("/agent/mail")
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)
    assert re.search(r'id="followup-count"[^>]*>2<', page.text)
    assert sum("count(" in s.lower() and "cases" in s for s in statements) == 1


def test_editors_cannot_see_follow_ups_and_have_no_menu_entry(app, client):
    case_id = open_case(app, "vote:1", address="a@example.org", words="private words")
    make_agent(app, EDITOR, role="editor")
    login(client, EDITOR)
    assert "nav-followups" not in client.get("/agent/").text
    csrf = token(client, "/agent/")
    for url in ("/agent/followups", f"/agent/followups/{case_id}", "/agent/followups/new"):
        assert client.get(url).status_code == 403, url
    for action in ("acknowledge", "assign", "note", "message", "resolve", "reopen"):
        response = client.post(f"/agent/followups/{case_id}/{action}", data={"csrf_token": csrf, "text": "x"})
        assert response.status_code == 403, action
    assert client.post("/agent/followups/new", data={"csrf_token": csrf}).status_code == 403
    assert case_state(app, case_id).state == "new" and events(app, case_id, "note") == []


def test_admins_see_follow_ups(app, client):
    open_case(app, "vote:1", address="a@example.org")
    make_agent(app, ADMIN, role="admin")
    login(client, ADMIN)
    page = client.get("/agent/followups")
    assert page.status_code == 200 and 'id="nav-followups"' in page.text and 'id="case-1"' in page.text


def test_the_case_page_shows_signals_history_deadline_and_scores(app, client, support, monkeypatch):
    case_id = open_case(app, "survey:1", source="survey", address="ann@example.org", name="Ann",
                        words="The parcel <b>never</b> came", reason="hard_to_follow", score=2)
    page = client.get(f"/agent/followups/{case_id}")
    assert page.status_code == 200
    text = page.text
    assert "The parcel &lt;b&gt;never&lt;/b&gt; came" in text and "Low survey score" in text
    assert "<td>hard to follow</td>" in text  # the reason in words
    assert re.search(r'id="score-before">2<', text) and re.search(r'id="score-after">—<', text)
    opened = case_state(app, case_id).opened_at
    deadline = hours.ack_deadline(app.config, opened)
    assert deadline.strftime("%Y-%m-%d %H:%M") in text[text.index('id="ack-deadline"'):]
    assert f'href="/agent/customers/{case_state(app, case_id).customer_id}"' in text
    assert "Outside business hours" not in text
    monkeypatch.setattr(hours, "in_business_hours", lambda settings, when: False)
    assert "Outside business hours: the clock waits" in client.get(f"/agent/followups/{case_id}").text


def test_acknowledging_records_who_and_when_and_a_second_click_says_who_was_first(app, client, support):
    case_id = open_case(app, "vote:1", address="a@example.org")
    page = f"/agent/followups/{case_id}"
    assert 'id="ack-button"' in client.get(page).text
    response = post(client, f"{page}/acknowledge", {}, page)
    assert response.status_code == 303 and response.location == page
    again = post(client, f"{page}/acknowledge", {}, page)  # a double submit
    assert again.status_code == 303
    assert "Already acknowledged by Sam Support" in client.get(page).text
    state_events = events(app, case_id, "state")
    assert [(e.from_state, e.to_state, e.agent_id) for e in state_events] == [("new", "acknowledged", support)]
    assert case_state(app, case_id).acknowledged_at is not None and state_events[0].created_at is not None


def test_two_agents_acknowledging_at_once_make_one_change(app, client, support):
    case_id = open_case(app, "vote:1", address="a@example.org")
    make_agent(app, OTHER, name="Olga", role="support")
    second = app.test_client()
    login(second, OTHER)
    page = f"/agent/followups/{case_id}"
    csrf_first, csrf_second = token(client, page), token(second, page)  # both have the page open
    client.post(f"{page}/acknowledge", data={"csrf_token": csrf_first})
    second.post(f"{page}/acknowledge", data={"csrf_token": csrf_second})
    assert "Already acknowledged by Sam Support" in second.get(page).text
    assert len(events(app, case_id, "state")) == 1


def test_assigning_to_me_another_agent_and_nobody(app, client, support):
    other = make_agent(app, OTHER, name="Olga", role="support")
    case_id = open_case(app, "vote:1", address="a@example.org")
    page = f"/agent/followups/{case_id}"
    post(client, f"{page}/assign", {"assignee": "me"}, page)
    assert case_state(app, case_id).assignee_id == support
    post(client, f"{page}/assign", {"assignee": str(other)}, page)
    assert case_state(app, case_id).assignee_id == other
    assert re.search(r'id="case-assignee">Olga<', client.get(page).text)
    post(client, f"{page}/assign", {"assignee": ""}, page)
    assert case_state(app, case_id).assignee_id is None
    assert [(e.to_state, e.agent_id) for e in events(app, case_id, "assign")] == [
        (str(support), support), (str(other), support), ("", support)]
    assert "assigned to Olga" in client.get(page).text


def test_a_phone_call_is_logged_as_a_note_with_its_outcome_once(app, client, support):
    case_id = open_case(app, "vote:1", address="a@example.org")
    page = f"/agent/followups/{case_id}"
    data = {"channel": "phone", "outcome": "left a voicemail", "text": "Called about the refund."}
    assert post(client, f"{page}/note", data, page).status_code == 303
    post(client, f"{page}/note", data, page)  # a double submit
    notes = events(app, case_id, "note")
    assert [(n.channel, n.outcome, n.note, n.agent_id) for n in notes] == [
        ("phone", "left a voicemail", "Called about the refund.", support)]
    assert "left a voicemail" in client.get(page).text
    empty = post(client, f"{page}/note", {"channel": "phone", "text": " "}, page)
    assert empty.status_code == 422 and 'id="note-error"' in empty.text


def test_resolving_needs_a_root_cause_and_reopening_is_recorded(app, client, support):
    case_id = open_case(app, "vote:1", address="a@example.org")
    page = f"/agent/followups/{case_id}"
    refused = post(client, f"{page}/resolve", {"root_cause": "", "note": "fixed"}, page)
    assert refused.status_code == 422
    assert 'id="root-cause-error"' in refused.text and 'aria-invalid="true"' in refused.text
    assert case_state(app, case_id).state == "new"
    assert post(client, f"{page}/resolve", {"root_cause": "not-a-cause"}, page).status_code == 422
    done = post(client, f"{page}/resolve", {"root_cause": "delivery", "note": "Sent a new parcel."}, page)
    assert done.status_code == 303
    case = case_state(app, case_id)
    assert (case.state, case.root_cause) == ("resolved", "delivery") and case.resolved_at is not None
    assert 'id="reopen-form"' in client.get(page).text
    post(client, f"{page}/reopen", {"note": "It broke again."}, page)
    assert case_state(app, case_id).state == "reopened"
    changes = [(e.to_state, e.agent_id, e.note) for e in events(app, case_id, "state")]
    assert changes == [("resolved", support, "Sent a new parcel."), ("reopened", support, "It broke again.")]


def message_form(client, page: str) -> dict:
    """The message form's CSRF token and nonce, as the browser would send them."""
    html = client.get(page).text
    nonce = re.search(r'name="nonce" value="([0-9a-f]+)"', html).group(1)
    return {"csrf_token": token(client, page), "nonce": nonce}


@pytest.fixture
def mail_app(app_factory, smtp_sink):
    """An app sending through the SMTP sink."""
    return app_factory(**smtp_sink.settings(SUPPORT_NAME="Fjellstad Support", BASE_URL="https://help.example.com"))


def test_a_message_from_a_case_reaches_the_customer_threaded_on_their_email(mail_app, smtp_sink):
    app, client = mail_app, mail_app.test_client()
    make_agent(app, SUPPORT, name="Sam Support", role="support")
    login(client, SUPPORT)
    case_id = open_case(app, "mail:7:writeback", source="writeback", address="ann@example.org", name="Ann",
                        words="Still broken", thread_message_id="<orig-42@customer.example>",
                        thread_subject="My parcel is late")
    page = f"/agent/followups/{case_id}"
    form = message_form(client, page)
    body = "Hello Ann,\n\nWe sent a **new parcel**.<script>alert(1)</script>"
    data = {**form, "body": body, "links": "https://help.example.com/en/articles/track-your-parcel\nnot a link"}
    assert client.post(f"{page}/message", data=data).status_code == 303
    client.post(f"{page}/message", data=data)  # a double submit
    assert len(events(app, case_id, "message")) == 1
    assert "queued" in client.get(page).text
    jobs.run_due(app)
    mail = [m for m in smtp_sink.wait_for(1) if m.rcpt_tos == ["ann@example.org"]]
    assert len(mail) == 1
    sent = message_from_bytes(mail[0].data, policy=policy.default)
    event = events(app, case_id, "message")[0]
    assert sent["In-Reply-To"] == "<orig-42@customer.example>"
    assert sent["References"] == "<orig-42@customer.example>"
    assert sent["Subject"] == "Re: My parcel is late"
    assert sent["Message-ID"] == event.message_id and event.message_id.endswith("@help.example.com>")
    assert sent["To"] == "Ann <ann@example.org>" and sent["From"] == "Fjellstad Support <support@kb.example>"
    assert sent["Auto-Submitted"] is None
    text = sent.get_body(("plain",)).get_content()
    html = sent.get_body(("html",)).get_content()
    assert "We sent a **new parcel**." in text and "https://help.example.com/en/articles/track-your-parcel" in text
    assert "Sam Support" in text and "not a link" not in text
    assert "<strong>new parcel</strong>" in html and "<script" not in html
    assert 'href="https://help.example.com/en/articles/track-your-parcel"' in html
    case = case_state(app, case_id)
    assert case.state == "contacted" and case.first_contact_at is not None
    assert re.search(rf'id="message-state-{event.id}">sent', client.get(page).text)
    jobs.run_due(app)
    assert len([m for m in smtp_sink.messages if m.rcpt_tos == ["ann@example.org"]]) == 1  # sent once


def test_a_message_without_a_thread_gets_a_subject_of_its_own(mail_app, smtp_sink):
    app, client = mail_app, mail_app.test_client()
    make_agent(app, SUPPORT, name="Sam Support", role="support")
    login(client, SUPPORT)
    case_id = open_case(app, "vote:1", address="ann@example.org", words="Out of date")
    page = f"/agent/followups/{case_id}"
    client.post(f"{page}/message", data={**message_form(client, page), "body": "We updated the article."})
    jobs.run_due(app)
    sent = message_from_bytes(smtp_sink.wait_for(1)[-1].data, policy=policy.default)
    assert sent["Subject"] == "Following up on your feedback" and sent["In-Reply-To"] is None


def test_a_failing_smtp_server_is_retried_and_the_page_says_so(app_factory, smtp_sink):
    app = app_factory(**smtp_sink.settings(JOBS_MAX_ATTEMPTS=2))
    client = app.test_client()
    make_agent(app, SUPPORT, name="Sam Support", role="support")
    login(client, SUPPORT)
    case_id = open_case(app, "vote:1", address="ann@example.org")
    page = f"/agent/followups/{case_id}"
    client.post(f"{page}/message", data={**message_form(client, page), "body": "Hello"})
    event_id = events(app, case_id, "message")[0].id
    smtp_sink.refuse = "451 4.3.0 try later"
    jobs.run_due(app)
    assert re.search(rf'id="message-state-{event_id}">queued \(last try: [^<]*451', client.get(page).text)
    assert case_state(app, case_id).state == "new"  # not contacted while it has not gone out

    def make_due():
        with session_scope(app) as session:
            session.execute(sa.update(Job).where(Job.kind == "followup.message").values(run_at=utcnow()))
            session.commit()

    make_due()
    jobs.run_due(app)  # the second and last attempt
    assert re.search(rf'id="message-state-{event_id}">failed \([^<]*451', client.get(page).text)


def test_a_retried_message_goes_out_once_the_server_is_back(app_factory, smtp_sink):
    app = app_factory(**smtp_sink.settings())
    client = app.test_client()
    make_agent(app, SUPPORT, name="Sam Support", role="support")
    login(client, SUPPORT)
    case_id = open_case(app, "vote:1", address="ann@example.org")
    page = f"/agent/followups/{case_id}"
    client.post(f"{page}/message", data={**message_form(client, page), "body": "Hello"})
    smtp_sink.refuse = "451 4.3.0 try later"
    jobs.run_due(app)
    smtp_sink.refuse = None
    with session_scope(app) as session:
        session.execute(sa.update(Job).where(Job.kind == "followup.message").values(run_at=utcnow()))
        session.commit()
    jobs.run_due(app)
    assert len(smtp_sink.wait_for(1)) == 1 and case_state(app, case_id).state == "contacted"


def test_a_case_without_an_email_address_offers_a_phone_note_instead(app, client, support):
    page = "/agent/followups/new"
    form = client.get(page).text
    nonce = re.search(r'name="nonce" value="([0-9a-f]+)"', form).group(1)
    data = {"phone": "+47 22 33 44 55", "name": "Per", "channel": "phone", "words": "The app crashes", "nonce": nonce}
    response = post(client, page, data, page)
    assert response.status_code == 303
    case_page = response.location
    html = client.get(case_page).text
    assert "No address: log a phone call as a note." in html and 'id="message-body"' not in html
    assert "phone: +47 22 33 44 55" in html
    case_id = int(case_page.rsplit("/", 1)[1])
    post(client, f"{case_page}/message", {"body": "Hi"}, case_page)
    assert events(app, case_id, "message") == []


def test_an_agent_opens_a_case_by_hand_once_however_often_the_form_is_sent(app, client, support, make_article):
    article = make_article("Track your parcel")
    page = "/agent/followups/new"
    nonce = re.search(r'name="nonce" value="([0-9a-f]+)"', client.get(page).text).group(1)
    data = {"email": "ann@example.org", "name": "Ann", "channel": "chat", "words": "Where is my parcel?",
            "article": f"https://help.example.com/en/articles/{article.slug}", "nonce": nonce}
    first, second = post(client, page, data, page), post(client, page, data, page)
    assert first.location == second.location
    with session_scope(app) as session:
        found = session.scalars(sa.select(Signal)).all()
        assert [(s.source, s.channel, s.words, s.agent_id, s.article_id) for s in found] == [
            ("manual", "chat", "Where is my parcel?", support, article.id)]
        assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 1
    assert "Where is my parcel?" in client.get(first.location).text


def test_opening_a_case_by_hand_says_what_is_missing(app, client, support):
    page = "/agent/followups/new"
    response = post(client, page, {"channel": "phone", "words": "", "article": "no-such-article"}, page)
    assert response.status_code == 422
    for field in ("new-email-error", "new-words-error", "new-article-error"):
        assert f'id="{field}"' in response.text
    bad = post(client, page, {"email": "not an address", "channel": "phone", "words": "x"}, page)
    assert bad.status_code == 422 and "name@example.com" in bad.text
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0


def test_a_reopened_case_waits_from_its_reopening(app, client, support):
    case_id = open_case(app, "vote:1", minutes_ago=60 * 24 * 3, address="a@example.org")
    fresh = open_case(app, "vote:2", minutes_ago=10, address="b@example.org")
    with session_scope(app) as session:
        case = session.get(Case, case_id)
        cases.change_state(session, case, "resolve", agent_id=support, settings=app.config, root_cause="product")
        cases.change_state(session, case, "reopen", agent_id=support)
        reopened = session.scalars(sa.select(CaseEvent).where(CaseEvent.to_state == "reopened")).one()
        reopened.created_at = utcnow() - timedelta(minutes=20, seconds=30)
        session.commit()
        since = reopened.created_at
    page = client.get("/agent/followups").text
    assert row_order(page) == [case_id, fresh]
    assert "20 min" in page[page.index(f'id="case-{case_id}"'):page.index(f'id="case-{fresh}"')]
    deadline = hours.ack_deadline(app.config, since).strftime("%Y-%m-%d %H:%M")
    case_page = client.get(f"/agent/followups/{case_id}").text
    assert deadline in case_page[case_page.index('id="ack-deadline"'):] and 'id="ack-button"' in case_page


def test_one_message_form_sent_twice_at_once_makes_one_message(app_factory, shared_db_url):
    """Two workers handle the same submit at the same moment (SQLite and PostgreSQL)."""
    import threading

    from kb.followup import messages
    from kb.models import Agent

    app = app_factory(DATABASE_URL=shared_db_url)
    agent_id = make_agent(app, SUPPORT, name="Sam Support", role="support")
    case_id = open_case(app, "vote:1", address="ann@example.org")
    barrier, outcomes, errors = threading.Barrier(2), [], []

    def submit():
        try:
            with session_scope(app) as session:
                case, agent = session.get(Case, case_id), session.get(Agent, agent_id)
                barrier.wait(5)
                _event, created = messages.send_message(session, case, agent, "Hello", app.config, nonce="ab" * 16)
                session.commit()
                outcomes.append(created)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and sorted(outcomes) == [False, True]
    assert len(events(app, case_id, "message")) == 1
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.kind == "followup.message")) == 1


@pytest.mark.parametrize("javascript", [True, False])
def test_the_case_page_in_a_browser_fits_a_phone_and_links_articles(browser, live_app, base_url, javascript):
    """With JavaScript the search box inserts an article link; without it the links field is there."""
    case_id = open_case(live_app, f"vote:browser:{javascript}", address=f"b{javascript}@example.org",
                        words="Delivery took " + "very " * 40 + "long")
    context, page = open_page(browser, javascript=javascript, viewport={"width": 390, "height": 844})
    try:
        log_in(page, base_url)
        for path in ("/agent/followups", f"/agent/followups/{case_id}", "/agent/followups/new"):
            page.goto(base_url + path)
            name = path.strip("/").replace("/", "-")
            page.screenshot(path=str(SCREENSHOTS / f"mobile-{name}-js-{javascript}.png"), full_page=True)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
        page.goto(f"{base_url}/agent/followups/{case_id}")
        assert page.locator("#message-links").is_visible()
        assert page.locator("#article-search").is_visible() == javascript
        if javascript:
            page.locator("#message-body").fill("See this: ")
            page.locator("#article-search").fill("delivery")
            page.locator("#article-results button").first.click()
            assert re.search(r"^See this: \[[^\]]+\]\(http://[^)]+/articles/[^)]+\)$", page.locator("#message-body").input_value())
        page.locator("#ack-button").click()
        assert page.locator("#case-state").inner_text() == "acknowledged"
        assert page.problems == []
    finally:
        context.close()


def test_the_subject_answers_the_customer_s_own_once():
    from kb.followup.messages import subject_for

    def untranslated(text, **values):
        return text % values if values else text

    assert subject_for(Case(thread_subject="Re: My parcel"), untranslated) == "Re: My parcel"
    assert subject_for(Case(thread_subject="My parcel\r\nBcc: x@evil.example"), untranslated).count("\n") == 0
    assert subject_for(Case(thread_subject=""), untranslated) == "Following up on your feedback"
