"""The sample shop's service recovery: starter gesture types and bounds, and a few offers on sample cases.

``load`` runs from the follow-up sample (kb.followup.sample, `kb sample load` and the first `kb serve`)
after its cases exist; ``remove`` runs from `kb sample remove` before the cases go. Every row is
marked ``sample``. The offers are measured by ``bounds.evaluate`` like real ones and written with the
ledger's own shape, but directly: no job is scheduled, so nothing is sent or asked of an approver.
Two inactive sample agents (on the reserved .invalid domain) made them, as the ledger names an agent.

Removal deletes the sample ledger rows (the rows about an offer first, then the offers), the sample
bounds, gesture types and agents. What real rows lean on stays: a sample offer that a real row
answers (say an admin approved it), the sample gesture type a real offer or bound uses (unmarked),
and a sample agent that real rows name.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.followup.models import Case, Customer
from kb.models import Agent, Base
from kb.recovery import bounds as kb_bounds
from kb.recovery import events, sample_data
from kb.recovery.models import CENT, Bound, GestureType, RecoveryEntry
from kb.recovery.wording import fill, template_for

MARKER = " (sample)"  # as kb.followup.sample_builder marks sample customers
NO_LOGIN = "sample:no-login"  # not a password hash: no password matches it


def has_recovery_data(session: so.Session) -> bool:
    """Whether the database holds any gesture type, bound or ledger row (sample or real)."""
    return any(session.scalar(sa.select(model.id).limit(1)) is not None
               for model in (GestureType, Bound, RecoveryEntry))


def load(session: so.Session, settings: Mapping[str, Any], now: datetime) -> Counter[str]:
    """Add the starter gesture types and bounds, and the sample offers; the caller commits.

    Does nothing when the database has gesture types, bounds or ledger rows already.
    """
    if has_recovery_data(session):
        return Counter()
    counts: Counter[str] = Counter()
    gestures = {}
    for name, kind, currency, needs_reference, (en, zh, nb) in sample_data.GESTURES:
        gestures[name] = GestureType(name=name, kind=kind, currency=currency, needs_reference=needs_reference,
                                     template=en + sample_data.EN_END, sample=True, created_at=now,
                                     templates={"zh": zh + sample_data.ZH_END, "nb": nb + sample_data.NB_END})
    session.add_all(gestures.values())
    session.flush()
    for scope, gesture, max_amount, max_count, role in sample_data.BOUNDS:
        session.add(Bound(scope=scope, gesture_type_id=gestures[gesture].id if gesture else None, sample=True,
                          max_amount=max_amount, max_count=max_count, approver_role=role, created_at=now))
    session.flush()
    counts.update(gesture_types=len(gestures), bounds=len(sample_data.BOUNDS))
    before = session.scalar(sa.select(sa.func.count(Agent.id)))
    agents = {key: _agent(session, name, email, now) for key, (name, email) in sample_data.AGENTS.items()}
    counts["agents"] = session.scalar(sa.select(sa.func.count(Agent.id))) - before
    for agent, customer, gesture, amount, reference, reason, ago, sent_after in sample_data.OFFERS:
        case = _case_of(session, customer)
        if case is None:
            continue
        at = now - timedelta(minutes=ago)
        offer = _offer(session, settings, case, agents[agent], gestures[gesture], amount, reference, reason, at)
        rows = [offer]
        if offer.state == "approved_auto" and sent_after is not None:
            rows.append(_sent(session, offer, at + timedelta(minutes=sent_after)))
        for row in rows:  # each on its case's history and the customer's timeline, as kb records real ones
            counts["ledger_rows"] += 1
            counts["events"] += events.record_entry(session, row) is not None
    return counts


def _agent(session: so.Session, name: str, email: str, now: datetime) -> Agent:
    """The sample agent with this address (inactive; kept from an earlier sample if real rows name it)."""
    agent = session.scalar(sa.select(Agent).where(Agent.email == email))
    if agent is None:
        agent = Agent(email=email, name=name, role="support", password_hash=NO_LOGIN, active=False, created_at=now)
        session.add(agent)
        session.flush()
    return agent


def _case_of(session: so.Session, customer_name: str) -> Case | None:
    """The latest sample case of the sample customer with this name."""
    return session.scalar(sa.select(Case).join(Customer, Case.customer_id == Customer.id).where(
        Case.sample.is_(True), Customer.name == customer_name + MARKER).order_by(Case.opened_at.desc()).limit(1))


def _offer(session: so.Session, settings: Mapping[str, Any], case: Case, agent: Agent, gesture: GestureType,
           amount, reference: str, reason: str, at: datetime) -> RecoveryEntry:
    """A sample offer, measured against the bounds as kb.recovery.offers.offer measures one."""
    customer = session.get(Customer, case.customer_id)
    verdict = kb_bounds.evaluate(session, case=case, agent=agent, gesture_type=gesture, amount=amount,
                                 settings=settings, now=at)
    message = fill(template_for(gesture.templates, gesture.template, customer.lang), {
        "name": customer.name.removesuffix(MARKER), "amount": str(amount.quantize(CENT)), "currency": gesture.currency,
        "reference": reference, "agent": agent.name.removesuffix(MARKER), "gesture": gesture.name})
    entry = RecoveryEntry(
        kind="offer", state="pending" if verdict.exceeded else "approved_auto", case_id=case.id,
        customer_id=case.customer_id, agent_id=agent.id, gesture_type_id=gesture.id, amount=amount,
        currency=gesture.currency, reason=reason, message=message, reference=reference, created_at=at, sample=True,
        bounds={"checked": [check.snapshot() for check in verdict.checks],
                "approver_role": verdict.approver_role if verdict.exceeded else ""})
    session.add(entry)
    session.flush()
    return entry


def _sent(session: so.Session, offer: RecoveryEntry, at: datetime) -> RecoveryEntry:
    """The sample "send" row: the message went out (as the send job would have recorded it)."""
    row = RecoveryEntry(kind="send", offer_id=offer.id, state="sent", case_id=offer.case_id,
                        customer_id=offer.customer_id, agent_id=offer.agent_id, gesture_type_id=offer.gesture_type_id,
                        amount=offer.amount, currency=offer.currency, reference=offer.reference, bounds=offer.bounds,
                        created_at=at, sample=True)
    session.add(row)
    session.flush()
    return row


def _kept_offers(session: so.Session) -> set[int]:
    """Sample offers a real ledger row belongs to or corrects: the append-only ledger keeps them."""
    real = sa.select(RecoveryEntry.offer_id, RecoveryEntry.corrects_id).where(RecoveryEntry.sample.is_(False))
    return {value for row in session.execute(real) for value in row if value is not None}


def _delete_rows(session: so.Session, kept: set[int]) -> int:
    """Delete the sample ledger rows not kept: an offer's rows first, then the offers (their foreign keys)."""
    deleted = 0
    for about_an_offer in (True, False):
        query = sa.select(RecoveryEntry).where(RecoveryEntry.sample.is_(True),
                                               RecoveryEntry.offer_id.is_not(None) if about_an_offer
                                               else RecoveryEntry.offer_id.is_(None))
        for row in session.scalars(query):
            if (row.offer_id if about_an_offer else row.id) not in kept:
                session.delete(row)  # the ledger lets sample rows go (kb.recovery.models, migration 0010)
                deleted += 1
        session.flush()
    return deleted


def _used(session: so.Session, column: sa.Column, value: int) -> bool:
    """Whether any row still names ``value`` through a foreign key to ``column``."""
    for table in Base.metadata.sorted_tables:
        for key in table.foreign_keys:
            if key.column is column and session.scalar(
                    sa.select(sa.literal(1)).select_from(table).where(key.parent == value).limit(1)) is not None:
                return True
    return False


def remove(session: so.Session) -> Counter[str]:
    """Delete the sample ledger rows, bounds and gesture types nothing real leans on; the caller commits.

    Runs before the sample cases go (their foreign keys); ``remove_agents`` runs after them.
    """
    kept = _kept_offers(session)
    counts = Counter(ledger_rows=_delete_rows(session, kept), kept_offers=len(kept))
    counts["bounds"] = session.execute(sa.delete(Bound).where(Bound.sample.is_(True))
                                       .execution_options(synchronize_session=False)).rowcount
    for gesture in session.scalars(sa.select(GestureType).where(GestureType.sample.is_(True))):
        if _used(session, GestureType.__table__.c.id, gesture.id):
            gesture.sample = False  # a real offer or bound uses it: it stays, as the shop's own
            counts["kept_gesture_types"] += 1
        else:
            session.delete(gesture)
            counts["gesture_types"] += 1
    session.flush()
    return counts


def remove_agents(session: so.Session) -> Counter[str]:
    """Delete the sample agents once no row names them (untouched: a password set since makes one real)."""
    counts: Counter[str] = Counter()
    for _name, email in sample_data.AGENTS.values():
        agent = session.scalar(sa.select(Agent).where(Agent.email == email, Agent.password_hash == NO_LOGIN))
        if agent is not None and not _used(session, Agent.__table__.c.id, agent.id):
            session.delete(agent)
            counts["agents"] += 1
    session.flush()
    return counts
