"""Service recovery's domain core: bounds, offers that wait above them, decisions, and the append-only ledger.

Concurrency runs on a real PostgreSQL server (tests/servers.py); the ledger's refusals run on both
SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from kb.db import get_db, session_scope
from kb.followup.models import Case, Customer
from kb.models import Agent, utcnow
from kb.recovery import bounds, offers
from kb.recovery.models import Bound, GestureType, LedgerError, RecoveryEntry
from tests.concurrency import at_once

pytestmark = pytest.mark.filterwarnings("error")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)  # a Wednesday
_n = itertools.count(1)


def agent(session, role: str = "support") -> Agent:
    """A new active agent of ``role``."""
    n = next(_n)
    row = Agent(email=f"agent{n}@example.org", name=f"Agent {n}", role=role, password_hash="x")
    session.add(row)
    session.flush()
    return row


def case(session, customer: Customer | None = None) -> Case:
    """A new open case of ``customer`` (a new one if not given)."""
    customer = customer or Customer(name=f"Customer {next(_n)}")
    session.add(customer)
    session.flush()
    row = Case(open_key=f"test:{next(_n)}", customer_id=customer.id, source="manual")
    session.add(row)
    session.flush()
    return row


def gesture(session, kind: str = "fixed_credit", currency: str = "EUR", **fields) -> GestureType:
    """A new gesture type."""
    row = GestureType(name=f"Gesture {next(_n)}", kind=kind, currency=currency, template="Sorry!", **fields)
    session.add(row)
    session.flush()
    return row


def bound(session, scope: str, **fields) -> Bound:
    """A new bound."""
    row = Bound(scope=scope, **fields)
    session.add(row)
    session.flush()
    return row


def settings(app, **overrides) -> dict:
    """The app's settings with some changed."""
    return {**app.config, **overrides}


def give(session, app, the_case, the_agent, the_gesture, amount, now=NOW, **config) -> offers.OfferResult:
    """Offer ``amount`` of ``the_gesture`` on ``the_case`` at ``now``."""
    return offers.offer(session, case=the_case, agent=the_agent, gesture_type=the_gesture, amount=amount,
                        reason="delivery", message="We are sorry about the late parcel.", reference="",
                        settings=settings(app, **config), now=now)


def ledger(session) -> list[tuple]:
    """Every ledger row as plain values, oldest first."""
    return [tuple(row) for row in session.execute(sa.select(*RecoveryEntry.__table__.columns).order_by(RecoveryEntry.id))]


# --- bounds --------------------------------------------------------------------------------------------

def test_within_the_incident_bound_is_ready_and_above_it_waits(app, session):
    eur, support = gesture(session), agent(session)
    limit = bound(session, "per_incident", max_amount=Decimal("50"))
    first_case, other_case = case(session), case(session)
    assert give(session, app, first_case, support, eur, "30").state == "approved_auto"
    second = give(session, app, first_case, support, eur, "30")
    assert second.state == "pending"
    assert [(b["id"], b["spent_amount"]) for b in second.exceeded] == [(limit.id, "30.00")]
    assert give(session, app, other_case, support, eur, "30").state == "approved_auto"  # another incident


def test_an_incident_count_bound_on_one_gesture_type_leaves_other_types_alone(app, session):
    eur, gift, support, the_case = gesture(session), gesture(session, "gift"), agent(session), case(session)
    bound(session, "per_incident", gesture_type_id=gift.id, max_count=1)
    assert give(session, app, the_case, support, gift, "5").state == "approved_auto"
    assert give(session, app, the_case, support, eur, "5").state == "approved_auto"
    assert give(session, app, the_case, support, gift, "5").state == "pending"


def test_an_overall_amount_bound_applies_per_currency(app, session):
    eur, nok, support, the_case = gesture(session), gesture(session, currency="NOK"), agent(session), case(session)
    bound(session, "per_incident", max_amount=Decimal("100"))
    assert give(session, app, the_case, support, eur, "80").state == "approved_auto"
    assert give(session, app, the_case, support, nok, "80").state == "approved_auto"
    assert give(session, app, the_case, support, eur, "30").state == "pending"


def test_the_agent_week_starts_again_at_the_boundary(app, session):
    eur, support = gesture(session), agent(session)
    bound(session, "agent_week", max_amount=Decimal("100"))
    sunday_evening = datetime(2026, 11, 29, 20, 0, tzinfo=timezone.utc)
    assert give(session, app, case(session), support, eur, "80", now=sunday_evening).state == "approved_auto"
    assert give(session, app, case(session), support, eur, "80", now=sunday_evening).state == "pending"
    monday = datetime(2026, 11, 30, 0, 0, tzinfo=timezone.utc)
    assert give(session, app, case(session), support, eur, "80", now=monday).state == "approved_auto"


@pytest.mark.parametrize("zone, second_state", [("Europe/Oslo", "approved_auto"), ("UTC", "pending")])
def test_the_agent_week_follows_the_time_zone(app, session, zone, second_state):
    """Sunday 23:30 UTC is already Monday 00:30 in Oslo: a new week there, the same week in UTC."""
    eur, support = gesture(session), agent(session)
    bound(session, "agent_week", max_amount=Decimal("100"))
    sunday_afternoon = datetime(2026, 11, 29, 15, 0, tzinfo=timezone.utc)
    sunday_2330_utc = datetime(2026, 11, 29, 23, 30, tzinfo=timezone.utc)
    give(session, app, case(session), support, eur, "80", now=sunday_afternoon, TIME_ZONE=zone)
    result = give(session, app, case(session), support, eur, "80", now=sunday_2330_utc, TIME_ZONE=zone)
    assert result.state == second_state


def test_the_week_starts_on_the_configured_day():
    config = {"TIME_ZONE": "Europe/Oslo", "RECOVERY_WEEK_START": "sunday"}
    start = bounds.week_start(config, datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc))
    assert start.isoformat() == "2026-11-22T00:00:00+01:00"
    assert bounds.week_start({**config, "RECOVERY_WEEK_START": "wednesday"}, NOW).isoformat() == "2026-11-25T00:00:00+01:00"


@pytest.mark.parametrize("days_ago, state", [(89, "pending"), (91, "approved_auto")])
def test_the_customer_bound_covers_90_rolling_days(app, session, days_ago, state):
    eur, first, second = gesture(session), agent(session), agent(session)
    bound(session, "customer_90d", max_count=1)
    earlier_case = case(session)
    give(session, app, earlier_case, first, eur, "10", now=NOW - timedelta(days=days_ago))
    later_case = case(session, session.get(Customer, earlier_case.customer_id))
    assert give(session, app, later_case, second, eur, "10").state == state


def test_a_merged_customers_earlier_gestures_count_towards_the_kept_ones_90_days(app, session):
    from kb.followup import merging

    eur, first, second = gesture(session), agent(session), agent(session)
    bound(session, "customer_90d", max_amount=Decimal("30"))
    merged_case, kept_case = case(session), case(session)
    give(session, app, merged_case, first, eur, "20", now=NOW - timedelta(days=3))
    kept, merged = (session.get(Customer, c.customer_id) for c in (kept_case, merged_case))
    assert give(session, app, kept_case, second, eur, "20", now=NOW - timedelta(days=2)).state == "approved_auto"
    merge = merging.merge(session, kept, merged, agent_id=None)
    assert give(session, app, kept_case, second, eur, "1").state == "pending"  # 20 + 20 + 1 > 30
    merging.undo(session, merge.id, agent_id=None)
    assert give(session, app, merged_case, first, eur, "10").state == "approved_auto"  # its own 20 + 10


def test_a_declined_offer_no_longer_counts_and_a_pending_one_does(app, session):
    eur, support, admin, the_case = gesture(session), agent(session), agent(session, "admin"), case(session)
    bound(session, "per_incident", max_amount=Decimal("50"))
    waiting = give(session, app, the_case, support, eur, "60")
    assert give(session, app, the_case, support, eur, "10").state == "pending"  # the waiting 60 counts
    offers.decline(session, waiting.entry.id, admin)
    assert give(session, app, the_case, support, eur, "10").state == "approved_auto"


# --- decisions and the ledger --------------------------------------------------------------------------

def test_approve_decline_and_cancel_append_rows_and_never_change_old_ones(app, session):
    eur, support, admin, the_case = gesture(session), agent(session), agent(session, "admin"), case(session)
    bound(session, "per_incident", max_amount=Decimal("10"))
    first, second = give(session, app, the_case, support, eur, "20"), give(session, app, the_case, support, eur, "20")
    session.commit()
    before = ledger(session)
    approved = offers.approve(session, first.entry.id, admin)
    declined = offers.decline(session, second.entry.id, admin)
    assert (approved.state, approved.changed, declined.state, declined.changed) == ("approved", True, "declined", True)
    again = offers.approve(session, second.entry.id, admin)
    assert (again.changed, again.entry, again.state) == (False, None, "declined")
    assert "already declined" in again.message
    cancelled = offers.cancel(session, first.entry.id, support)
    assert (cancelled.state, offers.state_of(session, first.entry.id)) == ("cancelled", "cancelled")
    assert offers.mark_sent(session, first.entry.id, support).changed is False
    session.commit()
    after = ledger(session)
    assert after[:len(before)] == before
    assert [(row.kind, row.state, row.offer_id, row.approver_id) for row in session.scalars(
        sa.select(RecoveryEntry).where(RecoveryEntry.id > before[-1][0]).order_by(RecoveryEntry.id))] == [
        ("approval", "approved", first.entry.id, admin.id), ("decline", "declined", second.entry.id, admin.id),
        ("cancel", "cancelled", first.entry.id, None)]


def test_an_editor_can_never_approve_and_support_only_where_the_bound_says(app, session):
    eur, support, editor, the_case = gesture(session), agent(session), agent(session, "editor"), case(session)
    other_support = agent(session)
    bound(session, "per_incident", max_amount=Decimal("10"), approver_role="support")
    bound(session, "per_incident", gesture_type_id=eur.id, max_amount=Decimal("100"))  # admin's
    small, large = give(session, app, the_case, support, eur, "20"), give(session, app, the_case, support, eur, "200")
    with pytest.raises(offers.NotAllowed):
        offers.approve(session, small.entry.id, editor)
    with pytest.raises(offers.NotAllowed):
        offers.approve(session, large.entry.id, other_support)  # above the admin's bound too
    assert offers.approve(session, small.entry.id, other_support).state == "approved"
    with pytest.raises(offers.NotAllowed):
        offers.cancel(session, large.entry.id, other_support)  # not the agent's offer
    assert offers.state_of(session, large.entry.id) == "pending"


def test_no_agent_decides_their_own_offer_not_even_an_admin(app, session):
    eur, admin, other_admin, the_case = gesture(session), agent(session, "admin"), agent(session, "admin"), case(session)
    bound(session, "per_incident", max_amount=Decimal("10"))
    own = give(session, app, the_case, admin, eur, "20")
    assert not offers.may_decide(admin, own.entry) and offers.may_decide(other_admin, own.entry)
    for decide in (offers.approve, offers.decline):
        with pytest.raises(offers.NotAllowed):
            decide(session, own.entry.id, admin)
    assert offers.approve(session, own.entry.id, other_admin).state == "approved"


def test_changing_a_bound_never_rewrites_the_bound_an_offer_was_measured_against(app, session):
    eur, support, the_case = gesture(session), agent(session), case(session)
    limit = bound(session, "per_incident", max_amount=Decimal("50"))
    result = give(session, app, the_case, support, eur, "60")
    session.commit()
    limit.max_amount = Decimal("500")
    session.commit()
    session.expire_all()
    kept = session.get(RecoveryEntry, result.entry.id).bounds["checked"]
    assert [(b["id"], b["max_amount"], b["exceeded"]) for b in kept] == [(limit.id, "50.00", True)]


def test_amounts_are_checked_per_kind(app, session):
    support, the_case = agent(session), case(session)
    percent, apology = gesture(session, "discount_percent", ""), gesture(session, "apology", "")
    assert give(session, app, the_case, support, apology, "").entry.amount == 0
    with pytest.raises(offers.FieldError):
        give(session, app, the_case, support, percent, "120")
    with pytest.raises(offers.FieldError):
        give(session, app, the_case, support, gesture(session), "lots")
    with pytest.raises(offers.FieldError):
        give(session, app, the_case, support, gesture(session, needs_reference=True), "5")


def test_a_correction_is_a_new_row_and_budgets_count_the_corrected_amount(app, session):
    eur, support, admin, the_case = gesture(session), agent(session), agent(session, "admin"), case(session)
    bound(session, "per_incident", max_amount=Decimal("50"))
    first = give(session, app, the_case, support, eur, "40")
    assert give(session, app, the_case, support, eur, "20").state == "pending"
    with pytest.raises(offers.NotAllowed):
        offers.correct(session, first.entry.id, support, amount="10", note="Refund was smaller")
    row = offers.correct(session, first.entry.id, admin, amount="10", note="Refund was smaller")
    assert (row.kind, row.corrects_id, row.amount, session.get(RecoveryEntry, first.entry.id).amount) == (
        "correction", first.entry.id, Decimal("10.00"), Decimal("40.00"))
    assert offers.state_of(session, first.entry.id) == "approved_auto"
    # 10 (corrected) + 20 (pending) + 15 = 45: within the 50
    assert give(session, app, the_case, support, eur, "15").state == "approved_auto"


def test_removing_the_sample_keeps_a_sample_case_with_a_gesture_on_the_ledger(app):
    from kb import content
    from kb.followup import sample

    assert content.bootstrap(app) is not None
    with session_scope(app) as session:
        sample.load_sample(session, app.config)
    with session_scope(app) as session:
        sample_case = session.scalar(sa.select(Case).where(Case.sample.is_(True)).order_by(Case.id).limit(1))
        offer_id = give(session, app, sample_case, agent(session), gesture(session), "10").entry.id
    with session_scope(app) as session:
        assert sample.remove_sample(session)["kept_cases"] == 1
    with session_scope(app) as session:
        kept = session.get(Case, session.get(RecoveryEntry, offer_id).case_id)
        assert kept is not None and not kept.sample


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_app(request, app_factory, tmp_path):
    """An app on SQLite or on a fresh PostgreSQL database."""
    if request.param == "postgres":
        return app_factory(DATABASE_URL=request.getfixturevalue("pg_database_url"))
    return app_factory(DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}")


def one_offer(app) -> int:
    """Commit one offer and return its id."""
    with session_scope(app) as session:
        result = give(session, app, case(session), agent(session), gesture(session), "10")
        return result.entry.id


def test_the_ledger_refuses_changes_through_the_orm(any_app):
    offer_id = one_offer(any_app)
    with session_scope(any_app) as session:
        session.get(RecoveryEntry, offer_id).amount = Decimal("1")
        with pytest.raises(LedgerError):
            session.flush()
        session.rollback()
        session.delete(session.get(RecoveryEntry, offer_id))
        with pytest.raises(LedgerError):
            session.flush()
        session.rollback()
        for statement in (sa.update(RecoveryEntry).values(amount=1), sa.delete(RecoveryEntry)):
            with pytest.raises(LedgerError):
                session.execute(statement)
    with session_scope(any_app) as session:
        assert session.get(RecoveryEntry, offer_id).amount == Decimal("10")


@pytest.mark.parametrize("statement", ["UPDATE recovery_entries SET amount = 1", "DELETE FROM recovery_entries"])
def test_the_database_refuses_update_and_delete_of_the_ledger(any_app, statement):
    offer_id = one_offer(any_app)
    engine = get_db(any_app).engine
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with engine.begin() as connection:
            connection.execute(sa.text(statement))
    with engine.connect() as connection:
        # (SQLite hands the amount back as a number, PostgreSQL as a Decimal: both equal 10)
        assert connection.execute(sa.text("SELECT id, amount FROM recovery_entries")).all() == [(offer_id, Decimal("10"))]


def test_the_database_lets_the_retention_scrub_blank_a_message_and_nothing_else(any_app):
    from kb import retention

    offer_id = one_offer(any_app)
    engine = get_db(any_app).engine
    for statement in ("UPDATE recovery_entries SET message = '', amount = 1",
                      "UPDATE recovery_entries SET message = 'Something else'"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with engine.begin() as connection:
                connection.execute(sa.text(statement))
    with session_scope(any_app) as session:
        session.get(RecoveryEntry, offer_id).message = "Changed"
        with pytest.raises(LedgerError):
            session.flush()
        session.rollback()
        assert retention.purge(session, utcnow() + timedelta(seconds=1))["offer_messages"] == 1
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT message, amount FROM recovery_entries")).all() == [("", Decimal("10"))]


# --- budgets under concurrency, on PostgreSQL ----------------------------------------------------------

ROUNDS, THREADS, BUDGET, EACH = 12, 4, Decimal("100"), "30"


def racing_offer(app, case_id: int, agent_id: int, gesture_id: int):
    """A call that offers EACH on the case, in the calling thread's session."""
    def call(session):
        return give(session, app, session.get(Case, case_id), session.get(Agent, agent_id),
                    session.get(GestureType, gesture_id), EACH).state
    return call


@pytest.mark.postgres
@pytest.mark.parametrize("scope", ["agent_week", "customer_90d"])
def test_concurrent_offers_never_exceed_a_budget(app_factory, pg_database_url, scope):
    app = app_factory(DATABASE_URL=pg_database_url)
    with session_scope(app) as session:
        gesture_id = gesture(session).id
        bound(session, scope, max_amount=BUDGET)
    for _ in range(ROUNDS):
        with session_scope(app) as session:  # one agent (or customer) per round, so each starts afresh
            one_agent, one_customer = agent(session), Customer(name="Racing")
            cases_agents = [(case(session, one_customer if scope == "customer_90d" else None).id,
                             one_agent.id if scope == "agent_week" else agent(session).id) for _ in range(THREADS)]
        states = at_once(app, [racing_offer(app, case_id, agent_id, gesture_id) for case_id, agent_id in cases_agents])
        assert sorted(states) == ["approved_auto"] * 3 + ["pending"]
    with session_scope(app) as session:
        auto = session.scalar(sa.select(sa.func.count()).where(RecoveryEntry.state == "approved_auto"))
        assert auto == ROUNDS * 3


@pytest.mark.postgres
def test_two_approvers_at_once_make_one_decision(app_factory, pg_database_url):
    app = app_factory(DATABASE_URL=pg_database_url)
    with session_scope(app) as session:
        bound(session, "per_incident", max_count=0)
        admins = [agent(session, "admin").id for _ in range(THREADS)]
    for _ in range(ROUNDS // 2):
        with session_scope(app) as session:
            offer_id = give(session, app, case(session), agent(session), gesture(session), "5").entry.id

        def decide(admin_id, offer_id=offer_id):
            def call(session):
                return offers.approve(session, offer_id, session.get(Agent, admin_id)).changed
            return call
        assert sorted(at_once(app, [decide(admin_id) for admin_id in admins])) == [False] * (THREADS - 1) + [True]
        with session_scope(app) as session:
            assert [row.kind for row in offers.history(session, offer_id)] == ["offer", "approval"]


def test_the_database_lets_only_sample_rows_go_and_a_case_history_holds_recovery_entries(any_app):
    from kb.recovery import events

    real_id = one_offer(any_app)
    with session_scope(any_app) as session:
        second_offer = give(session, any_app, case(session), agent(session, "admin"), gesture(session), "5")
        second_id = second_offer.entry.id
        event = events.record_entry(session, second_offer.entry)
        assert event.kind == "recovery" and re.fullmatch(r"Offered: Gesture \d+ 5\.00 EUR", event.note)
    engine = get_db(any_app).engine
    with engine.begin() as connection:  # a sample copy of a row may go, the rows themselves may not
        connection.execute(sa.text("INSERT INTO recovery_entries (kind, state, agent_id, gesture_type_id, amount, "
                                   "currency, reason, message, reference, bounds, sample, created_at) SELECT kind, "
                                   "state, agent_id, gesture_type_id, amount, currency, reason, message, reference, "
                                   "bounds, true, created_at FROM recovery_entries WHERE id = :id"), {"id": second_id})
        connection.execute(sa.text("DELETE FROM recovery_entries WHERE sample = true"))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM recovery_entries WHERE id = :id"), {"id": real_id})
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT id FROM recovery_entries ORDER BY id")).scalars().all() == [real_id, second_id]
