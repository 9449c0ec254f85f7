"""Customers: identities, race-safe creation, the multichannel timeline, merge and undo, search and pages."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from kb.autoreply.models import MailRecord
from kb.db import session_scope
from kb.errors import ValidationError
from kb.followup import cases, customers, merging
from kb.followup.models import Case, CaseEvent, Customer, CustomerIdentity, CustomerMerge, Signal, Survey
from kb.followup.signals import record_signal
from kb.followup.timeline import timeline
from tests.agent_helpers import login, make_agent, post_form, token

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def at(minutes: int) -> datetime:
    """A fixed moment, ``minutes`` after T0: the timeline's order must not depend on the clock."""
    return T0 + timedelta(minutes=minutes)


def mail(session, n: int, address: str, *, state: str = "person", minute: int, resolution: str | None = None,
         subject: str = "Question", matches=(), reply_to: str = "") -> MailRecord:
    """An email kb received from ``address`` and what it decided."""
    record = MailRecord(dedupe_key=f"<{n}@x>", message_id=f"<{n}@x>", from_addr=address, reply_to=reply_to or address,
                        subject=subject, text=f"Text of email {n}", state=state, reason=f"reason {n}",
                        matches=list(matches), created_at=at(minute), resolution=resolution,
                        resolved_at=at(minute + 1) if resolution else None)
    session.add(record)
    session.flush()
    return record


def signal(session, settings, key: str, address: str, *, minute: int, source: str = "vote", words: str = "",
           **kwargs):
    """record_signal at a fixed moment: its signal, and the case when it opened one, dated ``minute``."""
    result = record_signal(session, key=key, source=source, settings=settings, address=address, words=words, **kwargs)
    result.signal.created_at = at(minute)
    if result.case.opened_at > at(minute):
        result.case.opened_at = at(minute)
    session.flush()
    return result


def event(session, case: Case | None, kind: str, *, minute: int, customer: Customer | None = None, **values):
    """A case event (state change, message or note) at a fixed moment."""
    row = CaseEvent(case_id=case.id if case else None, customer_id=case.customer_id if case else customer.id,
                    kind=kind, created_at=at(minute), **values)
    session.add(row)
    session.flush()
    return row


def seed_history(session, settings, address: str, *, base: int, n: int) -> Customer:
    """One customer with an entry of every kind, ``base`` minutes in; returns the customer."""
    mail(session, n, address.upper(), state="replied", minute=base, resolution="solved", subject=f"Parcel {n}",
         matches=[{"article_id": 1, "title": "Track your parcel"}])
    mail(session, n + 1, address.replace("@", "+tag@"), minute=base + 2, resolution="still_need_help",
         subject=f"Still lost {n}")
    result = signal(session, settings, f"vote:{n}", address, minute=base + 4, words=f"Not helpful {n}",
                    reason="out_of_date")
    case = result.case
    customer = session.get(Customer, case.customer_id)
    event(session, case, "state", minute=base + 5, from_state="new", to_state="acknowledged")
    event(session, case, "message", minute=base + 6, note=f"We are on it {n}", channel="email")
    event(session, case, "state", minute=base + 7, from_state="contacted", to_state="resolved")
    event(session, None, "note", minute=base + 8, customer=customer, channel="phone", note=f"Called {n}",
          outcome="fixed")
    session.add(Survey(case_id=case.id, address=address, state="answered", score=4, comment=f"Better {n}",
                       sent_at=at(base + 9), answered_at=at(base + 10)))
    case.state, case.open_key, case.resolved_at = "resolved", None, at(base + 7)
    session.flush()
    return customer


def keys(session, customer) -> list[str]:
    """The timeline's entries as comparable keys, in order."""
    return [entry.key for entry in timeline(session, customer)]


def snapshot(session, customer) -> list[tuple]:
    """Everything the timeline shows of each entry, in order."""
    return [(e.key, e.when, e.kind, e.channel, e.title, e.text, e.detail, e.case_id, e.mail_id)
            for e in timeline(session, customer)]


# --- identities ---------------------------------------------------------------------------------

def test_identities_are_normalised_so_one_person_is_one_customer(session):
    first = customers.customer_for_address(session, "Ann.Lee+orders@Example.COM", "Ann Lee")
    again = customers.customer_for_address(session, "ann.lee@example.com")
    assert first.id == again.id and first.name == "Ann Lee"
    assert customers.normalize("email", "Ann.Lee+x@Example.com") == "ann.lee@example.com"
    assert customers.normalize("phone", "+47 22-33 44 55") == "+4722334455"
    phone = customers.add_identity(session, first, "phone", "+47 (22) 33 44 55")
    session.flush()
    assert phone.value == "+4722334455"
    assert customers.find_by_identity(session, "phone", "+47 22334455").id == first.id
    with pytest.raises(ValidationError, match="already"):
        customers.add_identity(session, first, "email", "ANN.LEE@example.com")
    other = customers.customer_for_address(session, "bob@example.com")
    with pytest.raises(ValidationError, match="merge the two customers instead"):
        customers.add_identity(session, other, "phone", "+4722334455")
    with pytest.raises(ValidationError):
        customers.customer_for_address(session, "not an address")


@pytest.mark.postgres
def test_two_threads_creating_one_customer_at_once_on_postgresql_make_one(app_factory, pg_database_url):
    app = app_factory(DATABASE_URL=pg_database_url)
    for round_ in range(5):
        barrier, ids, errors = threading.Barrier(2), [], []

        def create(spelling: str) -> None:
            try:
                with app.app_context(), session_scope(app) as s:
                    barrier.wait(timeout=10)
                    ids.append(customers.customer_for_address(s, spelling, "Race").id)
            except Exception as exc:  # a failure must fail the test, not vanish in the thread
                errors.append(exc)

        threads = [threading.Thread(target=create, args=(f"race{round_}@example.com",)),
                   threading.Thread(target=create, args=(f"Race{round_}+x@Example.com",))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors and len(ids) == 2 and ids[0] == ids[1]
    with session_scope(app) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Customer)) == 5
        assert s.scalar(sa.select(sa.func.count()).select_from(CustomerIdentity)) == 5


# --- timeline -----------------------------------------------------------------------------------

def test_the_timeline_lists_every_kind_of_entry_newest_first(app, session):
    customer = seed_history(session, app.config, "ann@example.com", base=0, n=1)
    manual = signal(session, app.config, "manual:1", "ann@example.com", minute=20, source="manual",
                    channel="phone", words="Called about a refund")
    mail(session, 99, "someone.else@example.com", minute=30)  # another customer's email stays off
    via_from = mail(session, 98, "ann@example.com", minute=15, subject="Sent from Ann, answers elsewhere",
                    reply_to="assistant@elsewhere.example")
    assert via_from.sender_key == "assistant@elsewhere.example"  # found by its From: address
    session.commit()
    entries = timeline(session, customer)
    kinds = [e.kind for e in entries]
    # at one moment, what follows comes first: the case a signal opened, the reply to an email
    assert kinds == ["case", "signal", "email", "survey_answered", "survey_sent", "note", "state", "message", "state",
                     "case", "vote", "click", "email", "click", "autoreply", "email"]
    assert [e.when for e in entries] == sorted((e.when for e in entries), reverse=True)
    by_kind = {e.kind: e for e in entries}
    assert by_kind["autoreply"].text == "Articles: Track your parcel"
    assert [e.title for e in entries if e.kind == "click"] == ["Clicked “Still need help”", "Clicked “Solved”"]
    assert entries[2].title == "Sent from Ann, answers elsewhere"
    email_2 = entries[kinds.index("email", 3)]
    assert email_2.detail == "kb decided: person (reason 2)" and email_2.text == "Text of email 2"
    assert by_kind["vote"].text == "Not helpful 1" and "out of date" in by_kind["vote"].title
    assert by_kind["survey_answered"].title == "Survey answered: 4 out of 5" and by_kind["survey_answered"].text == "Better 1"
    assert by_kind["note"].channel == "phone" and "fixed" in by_kind["note"].title and by_kind["note"].case_id is None
    assert by_kind["message"].text == "We are on it 1"
    assert by_kind["signal"].text == "Called about a refund" and by_kind["signal"].case_id == manual.case.id
    assert all(e.mail_id for e in entries if e.kind in ("email", "autoreply", "click"))
    assert "Text of email 99" not in str(entries)


def test_the_timeline_is_paged(app, session):
    customer = customers.customer_for_address(session, "many@example.com")
    for i in range(12):
        event(session, None, "note", minute=i, customer=customer, channel="chat", note=f"note {i}")
    session.commit()
    first, second = timeline(session, customer, limit=5), timeline(session, customer, limit=5, offset=5)
    rest = timeline(session, customer, limit=5, offset=10)
    assert [e.text for e in first + second + rest] == [f"note {i}" for i in range(11, -1, -1)]


# --- merging ------------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db(request, app, app_factory):
    """A session on SQLite (the usual app) or on PostgreSQL."""
    if request.param == "postgres":
        app = app_factory(DATABASE_URL=request.getfixturevalue("pg_database_url"))
    with session_scope(app) as s:
        yield app, s


def test_merging_keeps_every_timeline_entry_and_undo_restores_them_exactly(any_db):
    app, session = any_db
    ann = seed_history(session, app.config, "ann@example.com", base=0, n=1)
    other = seed_history(session, app.config, "ann.work@example.org", base=3, n=10)
    session.commit()
    before_ann, before_other = snapshot(session, ann), snapshot(session, other)
    assert len(before_ann) == len(before_other) == 13

    record = merging.merge(session, ann, other, None)
    session.commit()
    merged_view = snapshot(session, ann)
    assert sorted(merged_view, key=lambda e: e[0]) == sorted(before_ann + before_other, key=lambda e: e[0])
    assert [e[1] for e in merged_view] == sorted((e[1] for e in merged_view), reverse=True)
    assert session.get(Customer, other.id).merged_into_id == ann.id
    assert customers.find_by_identity(session, "email", "ann.work@example.org").id == ann.id
    assert customers.live(session, other.id).id == ann.id
    assert set(record.moved) == {"customer_identities", "cases", "signals", "case_events"}
    assert all(record.moved[table] for table in record.moved)

    merging.undo(session, record.id, None)
    session.commit()
    assert snapshot(session, ann) == before_ann and snapshot(session, other) == before_other
    assert session.get(Customer, other.id).merged_into_id is None
    assert customers.find_by_identity(session, "email", "ann.work@example.org").id == other.id

    again = merging.undo(session, record.id, None)  # twice: harmless
    session.commit()
    assert again.undone_at is not None
    assert snapshot(session, ann) == before_ann and snapshot(session, other) == before_other


@pytest.mark.postgres
def test_two_agents_merging_one_customer_at_once_on_postgresql_make_one_merge(app_factory, pg_database_url):
    app = app_factory(DATABASE_URL=pg_database_url)
    with session_scope(app) as s:
        a, b, c = (customers.customer_for_address(s, f"{n}@example.com").id for n in "abc")
        cases.add_note(s, agent_id=None, text="note of b", channel="chat", customer_id=b)
    barrier, outcomes = threading.Barrier(2), []

    def merge_into(kept_id: int) -> None:
        try:
            with session_scope(app) as s:
                kept, merged = s.get(Customer, kept_id), s.get(Customer, b)
                barrier.wait(timeout=10)
                merging.merge(s, kept, merged, None)
            outcomes.append(kept_id)
        except ValidationError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=merge_into, args=(kept,)) for kept in (a, c)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [o for o in outcomes if isinstance(o, int)]
    assert len(outcomes) == 2 and len(winners) == 1, outcomes
    assert "merged a moment ago" in next(o for o in outcomes if isinstance(o, str))
    with session_scope(app) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(CustomerMerge)) == 1
        assert s.get(Customer, b).merged_into_id == winners[0]
        assert {e.customer_id for e in s.scalars(sa.select(CaseEvent))} == {winners[0]}


def test_two_open_cases_never_share_an_open_key_through_a_merge(app, session):
    kept = signal(session, app.config, "vote:1", "kim@example.com", minute=0).case
    moved = signal(session, app.config, "vote:2", "kim@home.example", minute=1).case
    kim, home = kept.customer_id, moved.customer_id
    session.commit()
    record = merging.merge(session, session.get(Customer, kim), session.get(Customer, home), None)
    session.commit()
    assert session.get(Case, kept.id).open_key == f"customer:{kim}"
    assert session.get(Case, moved.id).open_key == f"case:{moved.id}" and session.get(Case, moved.id).customer_id == kim
    # a new signal from the merged address joins the kept customer's open case
    joined = signal(session, app.config, "writeback:3", "kim@home.example", minute=2, source="writeback")
    assert joined.case.id == kept.id
    session.commit()
    merging.undo(session, record.id, None)
    session.commit()
    assert session.get(Case, moved.id).open_key == f"customer:{home}" and session.get(Case, moved.id).customer_id == home
    assert session.get(Case, kept.id).open_key == f"customer:{kim}"
    # the signal that arrived after the merge was never moved: it stays with the kept customer
    assert session.get(Signal, joined.signal.id).customer_id == kim


def test_an_open_case_moved_to_a_customer_without_one_takes_their_key(app, session):
    quiet = customers.customer_for_address(session, "quiet@example.com")
    case = signal(session, app.config, "vote:5", "loud@example.com", minute=0).case
    loud = session.get(Customer, case.customer_id)
    session.commit()
    merging.merge(session, quiet, loud, None)
    session.commit()
    assert session.get(Case, case.id).open_key == f"customer:{quiet.id}"
    assert signal(session, app.config, "vote:6", "quiet@example.com", minute=1).case.id == case.id


def test_merges_that_cannot_be_undone_cleanly_are_refused(app, session):
    a, b, c = (customers.customer_for_address(session, f"{n}@example.com") for n in "abc")
    session.commit()
    with pytest.raises(ValidationError, match="into itself"):
        merging.merge(session, a, a, None)
    merging.merge(session, b, a, None)
    session.commit()
    a, b, c = (session.get(Customer, x.id) for x in (a, b, c))
    with pytest.raises(ValidationError, match=f"#{a.id} was already merged into customer #{b.id}"):
        merging.merge(session, c, a, None)
    with pytest.raises(ValidationError, match="merge into that one instead"):
        merging.merge(session, a, c, None)


def test_a_chain_of_merges_undone_out_of_order_gives_each_customer_its_own_back(app, session):
    a = seed_history(session, app.config, "a@example.com", base=0, n=1)
    b = seed_history(session, app.config, "b@example.com", base=1, n=10)
    c = seed_history(session, app.config, "c@example.com", base=2, n=20)
    session.commit()
    before = {x.id: snapshot(session, x) for x in (a, b, c)}
    first = merging.merge(session, b, a, None)
    session.commit()
    second = merging.merge(session, session.get(Customer, c.id), session.get(Customer, b.id), None)
    session.commit()
    assert len(snapshot(session, c)) == 3 * 13
    assert customers.live(session, a.id).id == c.id
    merging.undo(session, first.id, None)  # the first merge, while its rows sit with C
    session.commit()
    assert snapshot(session, session.get(Customer, a.id)) == before[a.id]
    assert session.get(Customer, a.id).merged_into_id is None
    assert len(snapshot(session, session.get(Customer, c.id))) == 2 * 13
    merging.undo(session, second.id, None)
    session.commit()
    for x in (a, b, c):
        assert snapshot(session, session.get(Customer, x.id)) == before[x.id]


# --- search -------------------------------------------------------------------------------------

def test_search_finds_customers_by_address_name_or_phone(session):
    ann = customers.customer_for_address(session, "ann.lee@example.com", "Ann Lee")
    bob = customers.customer_for_address(session, "bob@shop.example", "Bob Stone")
    customers.add_identity(session, bob, "phone", "+47 22 33 44 55")
    gone = customers.customer_for_address(session, "gone@example.com", "Ann Gone")
    session.flush()
    merging.merge(session, ann, gone, None)
    session.commit()

    def ids(q):
        return [c.id for c in customers.find_customers(session, q)]

    assert ids("ANN.lee") == [ann.id]
    assert ids("shop.EXAMPLE") == [bob.id]
    assert ids("stone") == [bob.id]
    assert ids("ann") == [ann.id]  # Ann Gone was merged away: her address is Ann's now
    assert ids("gone@") == [ann.id]
    assert ids("22 33 44") == [bob.id] and ids("+4722") == [bob.id]
    assert ids("%") == [] and ids("_") == []  # LIKE wildcards are taken literally
    assert set(ids("")) == {ann.id, bob.id}
    assert ids("nobody") == []


# --- pages --------------------------------------------------------------------------------------

@pytest.fixture
def support(app, client):
    """A logged-in support agent."""
    make_agent(app, "sam@example.com", role="support")
    login(client, "sam@example.com")
    return client


def test_editors_may_not_see_customers_and_anonymous_users_must_log_in(app, client, session):
    customer = customers.customer_for_address(session, "ann@example.com")
    session.commit()
    for url in ("/agent/customers", f"/agent/customers/{customer.id}"):
        assert client.get(url).location.startswith("/agent/login?next=")
    make_agent(app, role="editor")
    login(client)
    assert client.get("/agent/customers").status_code == 403
    assert client.get(f"/agent/customers/{customer.id}").status_code == 403
    response = client.post(f"/agent/customers/{customer.id}/notes",
                           data={"csrf_token": token(client, "/agent/"), "channel": "phone", "note": "x"})
    assert response.status_code == 403
    assert "Customers</a>" not in client.get("/agent/").text


def test_support_finds_a_customer_and_sees_the_timeline(app, support, session):
    customer = seed_history(session, app.config, "ann@example.com", base=0, n=1)
    customer.name = "Ann <Lee>"
    session.commit()
    listing = support.get("/agent/customers?q=ANN@EX")
    assert listing.status_code == 200 and "Ann &lt;Lee&gt;" in listing.text and 'Customers</a>' in listing.text
    assert "ann@example.com" not in support.get("/agent/customers?q=nobody").text
    page = support.get(f"/agent/customers/{customer.id}").text
    for text in ("Parcel 1", "kb decided: replied (reason 1)", "Auto-reply sent", "Clicked “Solved”", "Voted “No”", "Survey answered: 4 out of 5",
                 "Message sent to the customer", "Note (phone): fixed", "Called 1", "/agent/followups/"):
        assert text in page, text
    assert page.index("Survey answered") < page.index("Voted") < page.index("Parcel 1")


def test_adding_identities_and_notes_through_the_page(support, session):
    ann = customers.customer_for_address(session, "ann@example.com")
    customers.customer_for_address(session, "bob@example.com")
    session.commit()
    url = f"/agent/customers/{ann.id}"
    response = post_form(support, f"{url}/identities", {"kind": "phone", "value": "+47 22 33 44 55"}, form_page=url)
    assert response.status_code == 302
    refused = post_form(support, f"{url}/identities", {"kind": "email", "value": "Bob@example.com"}, form_page=url)
    assert refused.status_code == 422 and "merge the two customers instead" in refused.text
    response = post_form(support, f"{url}/notes", {"channel": "in_person", "note": "Came to the shop <b>",
                                                   "outcome": "refunded"}, form_page=url)
    assert response.status_code == 302
    page = support.get(url).text
    assert "+47 22 33 44 55" in page and "Note (in person): refunded" in page and "Came to the shop &lt;b&gt;" in page
    empty = post_form(support, f"{url}/notes", {"channel": "phone", "note": "  "}, form_page=url)
    assert empty.status_code == 422 and "Write what happened" in empty.text
    no_csrf = support.post(f"{url}/notes", data={"channel": "phone", "note": "x"})
    assert no_csrf.status_code == 400


def test_merge_and_undo_through_the_pages(support, session):
    ann = customers.customer_for_address(session, "ann@example.com", "Ann")
    work = customers.customer_for_address(session, "ann@work.example", "Ann at work")
    cases.add_note(session, agent_id=None, text="Called from work", channel="phone", customer_id=work.id)
    session.commit()
    url = f"/agent/customers/{ann.id}"
    found = support.get(f"{url}?merge_q=work.example").text
    confirm_url = f"/agent/customers/{ann.id}/merge/{work.id}"
    assert confirm_url in found
    confirm = support.get(confirm_url)
    assert confirm.status_code == 200 and "ann@work.example" in confirm.text
    response = post_form(support, f"{url}/merge", {"merged_id": str(work.id)}, form_page=confirm_url)
    assert response.status_code == 302
    redirected = support.get(f"/agent/customers/{work.id}")
    assert redirected.status_code == 302 and redirected.location == url
    page = support.get(url).text
    assert "Called from work" in page and "ann@work.example" in page and "Undo</button>" in page
    refused = support.get(f"/agent/customers/{ann.id}/merge/{work.id}")
    assert refused.status_code == 422 and f"was already merged into customer #{ann.id}" in refused.text
    assert 'action="/agent/customers/' not in refused.text.split("<main", 1)[1]  # no Merge button then
    twice = post_form(support, f"{url}/merge", {"merged_id": str(work.id)}, form_page=url, follow_redirects=True)
    assert "was already merged" in twice.text
    merge_id = session.scalar(sa.text("SELECT id FROM customer_merges"))
    assert post_form(support, f"/agent/customers/merges/{merge_id}/undo", {}, form_page=url).status_code == 302
    assert "Called from work" not in support.get(url).text
    assert "Called from work" in support.get(f"/agent/customers/{work.id}").text
    again = post_form(support, f"/agent/customers/merges/{merge_id}/undo", {}, form_page=url, follow_redirects=True)
    assert "undone already" in again.text
    assert support.get(f"/agent/customers/{ann.id}/merge/{ann.id}").status_code == 422
    assert support.get("/agent/customers/99999").status_code == 404


def test_the_timeline_page_links_to_older_entries(support, session):
    customer = customers.customer_for_address(session, "chatty@example.com")
    for i in range(205):
        event(session, None, "note", minute=i, customer=customer, channel="chat", note=f"note number {i}.")
    session.commit()
    url = f"/agent/customers/{customer.id}"
    first = support.get(url).text
    assert first.count('class="timeline-note"') == 200 and "note number 204." in first and "note number 4." not in first
    assert f"{url}?page=1" in first and "Newer entries" not in first
    older = support.get(f"{url}?page=1").text
    assert older.count('class="timeline-note"') == 5 and "note number 4." in older and "note number 5." not in older
    assert "Older entries" not in older and f"{url}?page=0" in older
    assert support.get(f"{url}?page={'9' * 5000}").status_code == 200
