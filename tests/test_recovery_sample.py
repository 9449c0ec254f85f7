"""The sample shop's service recovery: starter gesture types, bounds and offers, and their exact removal.

The removal runs on SQLite and PostgreSQL, whose triggers let sample ledger rows go and no others.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from kb.db import session_scope
from kb.followup.models import Case, CaseEvent, Customer
from kb.jobs.models import Job
from kb.models import Agent
from kb.recovery import catalog, offers, sample_data
from kb.recovery.models import GESTURE_KINDS, Bound, GestureType, LedgerError, RecoveryEntry
from tests.test_followup_sample import load, real_signal, remove

pytestmark = pytest.mark.filterwarnings("error")


def test_load_gives_starter_gestures_bounds_and_offers_within_and_above_a_bound(app):
    counts = load(app)
    assert (counts["gesture_types"], counts["bounds"], counts["ledger_rows"], counts["agents"]) == (6, 5, 5, 2)
    with session_scope(app) as session:
        gestures = list(session.scalars(sa.select(GestureType)))
        assert {g.kind for g in gestures} == set(GESTURE_KINDS) - {"other"} and all(g.sample for g in gestures)
        for gesture in gestures:  # each passes the admin page's own checks, in every language
            values = {"name": gesture.name, "kind": gesture.kind, "currency": gesture.currency,
                      "template": gesture.template, "active": "1", **{f"template_{lang}": text
                                                                     for lang, text in gesture.templates.items()}}
            assert catalog.clean_gesture_type(session, values, gesture)["templates"].keys() == {"zh", "nb"}
        credit = next(g for g in gestures if g.name == "Store credit")
        assert (credit.kind, credit.currency, credit.needs_reference) == ("fixed_credit", "EUR", True)
        bounds = {(b.scope, b.gesture_type_id): b for b in session.scalars(sa.select(Bound))}
        assert all(b.sample and b.active for b in bounds.values())
        incident = bounds[("per_incident", None)]
        assert (incident.max_amount, incident.max_count, incident.approver_role) == (25, 2, "admin")
        rows = list(session.scalars(sa.select(RecoveryEntry).order_by(RecoveryEntry.id)))
        assert all(row.sample for row in rows)
        offered = [row for row in rows if row.kind == "offer"]
        states = sorted(offers.state_of(session, row.id) for row in offered)
        assert states == ["pending", "sent", "sent"]
        pending = next(row for row in offered if row.state == "pending")
        exceeded = [b for b in pending.bounds["checked"] if b["exceeded"]]
        assert [(b["scope"], b["max_amount"]) for b in exceeded] == [("per_incident", "25.00")]
        assert pending.bounds["approver_role"] == "admin" and pending.reference
        customer = session.get(Customer, pending.customer_id)
        assert customer.lang == "zh" and pending.message.startswith("王芳您好") and "30.00 EUR" in pending.message
        for row in rows:  # every row is on its case's history, and the sends came after their offers
            assert session.scalar(sa.select(sa.func.count(CaseEvent.id)).where(
                CaseEvent.case_id == row.case_id, CaseEvent.kind == "recovery", CaseEvent.sample)) >= 1
            assert session.get(Case, row.case_id).sample
            assert row.offer_id is None or row.created_at > session.get(RecoveryEntry, row.offer_id).created_at
        nb = next(row for row in offered if session.get(Customer, row.customer_id).lang == "nb")
        assert nb.message.startswith("Hei Lars Nilsen") and "{" not in nb.message
        agents = list(session.scalars(sa.select(Agent)))
        assert len(agents) == 2 and not any(a.active for a in agents)
        assert all(a.email.endswith("@sample.invalid") for a in agents)
        assert session.scalar(sa.select(sa.func.count(Job.id))) == 0  # nothing sent, no approver asked


def test_the_sample_offers_cannot_be_edited_either(app):
    load(app)
    with session_scope(app) as session:
        row = session.scalar(sa.select(RecoveryEntry).limit(1))
        row.amount = 1
        with pytest.raises(LedgerError):
            session.flush()
        session.rollback()


def test_a_shop_with_gesture_types_of_its_own_gets_none_of_the_sample_ones(app):
    with session_scope(app) as session:
        catalog.create_gesture_type(session, {"name": "Our apology", "kind": "apology", "template": "Sorry, {name}."})
    counts = load(app)
    assert counts["cases"] >= 6 and counts["gesture_types"] == counts["ledger_rows"] == 0
    with session_scope(app) as session:
        assert [g.name for g in session.scalars(sa.select(GestureType))] == ["Our apology"]
        assert session.scalar(sa.select(sa.func.count(Agent.id))) == 0
    assert remove(app)["gesture_types"] == 0
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count(GestureType.id))) == 1


def test_remove_deletes_the_sample_ledger_and_keeps_what_real_rows_lean_on(app_factory, shared_db_url):
    app = app_factory(DATABASE_URL=shared_db_url)
    loaded = load(app)
    real_case = real_signal(app, "vote:real-1", "real.person@example.com")
    with session_scope(app) as session:
        admin = Agent(email="ada@example.com", name="Ada", role="admin", password_hash="x")
        session.add(admin)
        session.flush()
        gestures = {g.name: g for g in session.scalars(sa.select(GestureType))}
        real_offer = offers.offer(session, case=session.get(Case, real_case), agent=admin,
                                  gesture_type=gestures["Store credit"], amount="10", reason="delivery",
                                  message="Sorry!", reference="REAL-1", settings=app.config).entry
        pending = session.scalar(sa.select(RecoveryEntry).where(RecoveryEntry.state == "pending"))
        approval = offers.approve(session, pending.id, admin).entry
        real_bound = catalog.create_bound(session, {"scope": "per_incident", "gesture_type": str(gestures["Small gift"].id),
                                                    "max_count": "1", "approver_role": "support"})
        real_ids = {real_offer.id, approval.id}
        kept_offer, kept_case, real_bound_id = pending.id, pending.case_id, real_bound.id
    removed = remove(app)
    assert (removed["kept_offers"], removed["kept_cases"], removed["kept_gesture_types"]) == (1, 1, 2)
    assert removed["ledger_rows"] == loaded["ledger_rows"] - 1 and removed["bounds"] == loaded["bounds"]
    assert (removed["gesture_types"], removed["agents"]) == (4, 1)
    with session_scope(app) as session:
        left = {row.id: row for row in session.scalars(sa.select(RecoveryEntry))}
        assert set(left) == real_ids | {kept_offer}  # the approved sample offer stays with its approval
        assert [row.id for row in left.values() if row.sample] == [kept_offer]
        assert not session.get(Case, kept_case).sample and {c.id for c in session.scalars(sa.select(Case))} == {
            real_case, kept_case}
        assert [b.id for b in session.scalars(sa.select(Bound))] == [real_bound_id]
        kept = {g.name: g.sample for g in session.scalars(sa.select(GestureType))}
        assert kept == {"Store credit": False, "Small gift": False}
        assert sorted(a.email for a in session.scalars(sa.select(Agent))) == [
            "ada@example.com", sample_data.AGENTS["nora"][1]]  # her offer is still on the ledger
    again = remove(app)  # a second remove finds nothing to delete, and keeps what it kept
    assert (again["ledger_rows"], again["bounds"], again["gesture_types"], again["agents"]) == (0, 0, 0, 0)
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count(RecoveryEntry.id))) == 3
