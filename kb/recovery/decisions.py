"""Approving or declining an offer that waits, and the queue of those that wait.

``decide`` is what the approvals page and its emailed links call: the decision itself is
``offers.approve``/``offers.decline`` (one decision per offer, however many approvers click at
once); on top of it come the case's history (events.record_entry), the sending of an approved
offer (sending.schedule_send), the end of the escalation (jobs.cancel) and an email to the agent
who made the offer. All in the caller's transaction: the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb import jobs
from kb.errors import FieldError
from kb.followup.models import Customer
from kb.models import Agent, utcnow
from kb.recovery import approval_compose, approvals, events, offers, sending
from kb.recovery.models import GestureType, RecoveryEntry

ACTIONS = ("approve", "decline")
MAX_NOTE = 200  # the ledger's reason column


def decide(session: so.Session, offer_id: int, agent: Agent, action: str, *, settings: Mapping[str, Any],
           note: str = "", now: datetime | None = None) -> offers.DecisionResult:
    """Approve or decline a pending offer as ``agent``; NotAllowed, NotFound or FieldError when it may not.

    When the offer was decided already, nothing changes and the result says so (``changed`` False).
    """
    if action not in ACTIONS:
        raise FieldError({"action": "Choose approve or decline."})
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise FieldError({"note": f"Keep the note to {MAX_NOTE} characters."})
    decide_as = offers.approve if action == "approve" else offers.decline
    result = decide_as(session, offer_id, agent, settings, note=note, now=now)
    if result.changed:
        entry = offers.get_offer(session, offer_id)
        events.record_entry(session, result.entry)
        if result.state == "approved":
            sending.schedule_send(session, entry)
        jobs.cancel(session, approvals.ESCALATE, f"offer:{offer_id}")
        jobs.schedule(session, approvals.DECIDED, f"offer:{offer_id}", payload={"offer_id": offer_id})
    return result


@dataclass(frozen=True)
class Decided:
    """Who ended an offer's wait, and when."""

    state: str
    who: str
    at: datetime
    note: str


def decided(session: so.Session, offer_id: int) -> Decided | None:
    """Who decided (or cancelled) the offer and when; None while it waits."""
    row = approvals.decision_of(session, offer_id)
    if row is None:
        return None
    agent = session.get(Agent, row.approver_id or row.agent_id)
    return Decided(row.state, agent.name if agent else "someone", row.created_at, row.reason)


@dataclass(frozen=True)
class Waiting:
    """One offer in the approvals queue."""

    entry: RecoveryEntry
    agent: str
    gesture: str
    amount: str
    customer: str
    exceeded: list[str]
    waited_seconds: float
    approver_role: str


def _pending_offers():
    """Offers whose latest row (other than a correction) leaves them pending."""
    later = sa.orm.aliased(RecoveryEntry)
    moved_on = sa.exists().where(later.offer_id == RecoveryEntry.id, later.kind.not_in(("correction",)))
    return sa.and_(RecoveryEntry.kind == "offer", RecoveryEntry.state == "pending", ~moved_on)


def pending_count(session: so.Session) -> int:
    """How many offers wait for a decision (one COUNT)."""
    return session.scalar(sa.select(sa.func.count()).select_from(RecoveryEntry).where(_pending_offers())) or 0


def waiting(session: so.Session, limit: int = 200, now: datetime | None = None) -> list[Waiting]:
    """The offers that wait for a decision, oldest first, with what an approver must know."""
    now = now or utcnow()
    rows = session.scalars(sa.select(RecoveryEntry).where(_pending_offers())
                           .order_by(RecoveryEntry.created_at, RecoveryEntry.id).limit(limit)).all()
    found = []
    for entry in rows:
        agent, gesture = session.get(Agent, entry.agent_id), session.get(GestureType, entry.gesture_type_id)
        customer = session.get(Customer, entry.customer_id) if entry.customer_id else None
        found.append(Waiting(
            entry=entry, agent=agent.name if agent else "", gesture=gesture.name if gesture else "",
            amount=approval_compose.money(entry.amount, entry.currency, gesture.kind if gesture else ""),
            customer=customer.name if customer else "", exceeded=approval_compose.exceeded_lines(entry, gesture),
            waited_seconds=max((now - entry.created_at).total_seconds(), 0.0),
            approver_role=(entry.bounds or {}).get("approver_role") or "admin"))
    return found
