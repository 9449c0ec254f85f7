"""Offer a gesture, and approve, decline, cancel or send it: each an appended ledger row.

An offer's states (the ``state`` of its latest row):
- ``approved_auto``: within every bound, ready to send (the sender appends ``sent``);
- ``pending``: above a bound, waiting for an approver of the bound's role;
- ``approved``: an approver said yes, ready to send; ``declined``: an approver said no;
- ``cancelled``: withdrawn before it was sent; ``sent``: the customer has it.
Declined and cancelled offers no longer count against budgets; all others do, at the amount of
their latest ``correction`` row if an admin corrected it (a correction leaves the state as it was).

Budgets hold under concurrency: the check and the insert of an offer run under locks per agent, per
customer and per case, taken in that order (so two offers never wait for each other in a circle):
PostgreSQL transaction-level advisory locks, or SQLite's one writer (BEGIN IMMEDIATE). A decision
runs under a lock per offer, so two approvers clicking at once make one decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.db import begin_write
from kb.errors import FieldError, KBError, NotFound
from kb.followup.models import Case
from kb.models import Agent, utcnow
from kb.recovery import bounds as kb_bounds
from kb.recovery.models import MONEY_KINDS, GestureType, RecoveryEntry

# Lock namespaces (the first key of pg_advisory_xact_lock(int, int)), in the order they are taken.
LOCK_AGENT, LOCK_CUSTOMER, LOCK_CASE, LOCK_OFFER = 0x6B620901, 0x6B620902, 0x6B620903, 0x6B620904
MAX_AMOUNT = Decimal("9999999999.99")
OPEN_STATES = ("pending",)  # an approver may still decide
SENDABLE = ("approved_auto", "approved")


class NotAllowed(KBError):
    """The agent's role does not allow this decision."""


@dataclass(frozen=True)
class OfferResult:
    """The offer row, its state, and the bounds it exceeded (empty when within bounds)."""

    entry: RecoveryEntry
    state: str
    exceeded: list[dict[str, Any]]


@dataclass(frozen=True)
class DecisionResult:
    """What a decision did: the row it appended (None if nothing changed), the offer's state, and why."""

    entry: RecoveryEntry | None
    state: str
    changed: bool
    message: str


def lock(session: so.Session, namespace: int, key: int) -> None:
    """Hold a lock on (namespace, key) until the transaction ends; on SQLite, the write lock."""
    begin_write(session)
    if session.connection().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(namespace, key)))


def clean_amount(gesture_type: GestureType, amount: Any) -> Decimal:
    """The offer's amount for this kind of gesture, or FieldError."""
    if gesture_type.kind == "apology":
        return Decimal("0")
    try:
        value = Decimal(str(amount).strip()).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise FieldError({"amount": "Write the amount as a number, such as 25 or 12.50."}) from None
    high = Decimal("100") if gesture_type.kind == "discount_percent" else MAX_AMOUNT
    if not value.is_finite() or value < 0 or value > high:
        raise FieldError({"amount": f"Write an amount from 0 to {high}."})
    if value == 0 and gesture_type.kind in MONEY_KINDS + ("discount_percent",):
        raise FieldError({"amount": "Write an amount above 0."})
    return value


def offer(session: so.Session, *, case: Case, agent: Agent, gesture_type: GestureType, amount: Any,
          reason: str, message: str, reference: str = "", settings: Mapping[str, Any],
          now: datetime | None = None) -> OfferResult:
    """Record an offer: within every bound it is ready to send, above one it waits for approval.

    The caller commits (which releases the locks).
    """
    if not gesture_type.active:
        raise FieldError({"gesture_type": "Choose an active gesture."})
    if not agent.active:
        raise NotAllowed("This agent is not active.")
    value = clean_amount(gesture_type, amount)
    if gesture_type.needs_reference and not reference.strip():
        raise FieldError({"reference": "Paste the coupon code or refund reference."})
    if not message.strip():
        raise FieldError({"message": "Write a message to the customer."})
    now = now or utcnow()
    lock(session, LOCK_AGENT, agent.id)
    if case.customer_id is not None:
        lock(session, LOCK_CUSTOMER, case.customer_id)
    lock(session, LOCK_CASE, case.id)
    verdict = kb_bounds.evaluate(session, case=case, agent=agent, gesture_type=gesture_type, amount=value,
                                 settings=settings, now=now)
    state = "pending" if verdict.exceeded else "approved_auto"
    entry = RecoveryEntry(
        kind="offer", state=state, case_id=case.id, customer_id=case.customer_id, agent_id=agent.id,
        gesture_type_id=gesture_type.id, amount=value, currency=gesture_type.currency or "",
        reason=reason.strip(), message=message.strip(), reference=reference.strip(), created_at=now,
        bounds={"checked": [check.snapshot() for check in verdict.checks],
                "approver_role": verdict.approver_role if verdict.exceeded else ""})
    session.add(entry)
    session.flush()
    return OfferResult(entry, state, [check.snapshot() for check in verdict.exceeded])


def get_offer(session: so.Session, offer_id: int) -> RecoveryEntry:
    """The offer row, or NotFound."""
    entry = session.get(RecoveryEntry, offer_id)
    if entry is None or entry.kind != "offer":
        raise NotFound("No such offer.")
    return entry


def history(session: so.Session, offer_id: int) -> list[RecoveryEntry]:
    """The offer and every row that belongs to it, oldest first."""
    return list(session.scalars(sa.select(RecoveryEntry).where(
        sa.or_(RecoveryEntry.id == offer_id, RecoveryEntry.offer_id == offer_id)).order_by(RecoveryEntry.id)))


def state_of(session: so.Session, offer_id: int) -> str:
    """The offer's state now: that of its latest row other than a correction."""
    return session.scalar(sa.select(RecoveryEntry.state).where(
        sa.or_(RecoveryEntry.id == offer_id, RecoveryEntry.offer_id == offer_id),
        RecoveryEntry.kind != "correction").order_by(RecoveryEntry.id.desc()).limit(1))


def may_decide(agent: Agent, entry: RecoveryEntry) -> bool:
    """Whether this agent may approve or decline the offer: an active admin, or the bound's approver role.

    Never the agent who made the offer: a bound is there so that a second person looks.
    """
    if not agent.active or agent.role == "editor" or agent.id == entry.agent_id:
        return False
    return agent.role == "admin" or agent.role == (entry.bounds or {}).get("approver_role")


def _append(session: so.Session, entry: RecoveryEntry, kind: str, state: str, agent: Agent,
            now: datetime, **values: Any) -> RecoveryEntry:
    """Append a row of ``kind`` to the offer, copying what the offer was."""
    values.setdefault("amount", entry.amount)
    row = RecoveryEntry(kind=kind, offer_id=entry.id, state=state, case_id=entry.case_id,
                        customer_id=entry.customer_id, agent_id=agent.id, gesture_type_id=entry.gesture_type_id,
                        currency=entry.currency, bounds=entry.bounds, created_at=now, **values)
    session.add(row)
    session.flush()
    return row


def _decide(session: so.Session, offer_id: int, agent: Agent, kind: str, state: str, allowed: tuple[str, ...],
            note: str, now: datetime | None, **values: Any) -> DecisionResult:
    """Append ``kind`` if the offer is in one of ``allowed`` states; else change nothing and say why."""
    entry = get_offer(session, offer_id)
    lock(session, LOCK_OFFER, entry.id)
    current = state_of(session, entry.id)
    if current not in allowed:
        return DecisionResult(None, current, False, f"Nothing changed: the offer is already {current}.")
    row = _append(session, entry, kind, state, agent, now or utcnow(), reason=note.strip(), **values)
    return DecisionResult(row, state, True, f"The offer is {state}.")


def approve(session: so.Session, offer_id: int, approver: Agent, settings: Mapping[str, Any] | None = None,
            *, note: str = "", now: datetime | None = None) -> DecisionResult:
    """Approve a pending offer (it becomes ready to send); NotAllowed unless the approver's role may."""
    if not may_decide(approver, get_offer(session, offer_id)):
        raise NotAllowed("Only an approver of this bound's role may approve this offer.")
    return _decide(session, offer_id, approver, "approval", "approved", OPEN_STATES, note, now,
                   approver_id=approver.id)


def decline(session: so.Session, offer_id: int, approver: Agent, settings: Mapping[str, Any] | None = None,
            *, note: str = "", now: datetime | None = None) -> DecisionResult:
    """Decline a pending offer (it no longer counts); NotAllowed unless the approver's role may."""
    if not may_decide(approver, get_offer(session, offer_id)):
        raise NotAllowed("Only an approver of this bound's role may decline this offer.")
    return _decide(session, offer_id, approver, "decline", "declined", OPEN_STATES, note, now,
                   approver_id=approver.id)


def cancel(session: so.Session, offer_id: int, agent: Agent, settings: Mapping[str, Any] | None = None,
           *, note: str = "", now: datetime | None = None) -> DecisionResult:
    """Withdraw an offer not yet sent: by the agent who made it or an admin."""
    entry = get_offer(session, offer_id)
    if not agent.active or (agent.id != entry.agent_id and agent.role != "admin"):
        raise NotAllowed("Only the agent who made the offer, or an admin, may cancel it.")
    return _decide(session, offer_id, agent, "cancel", "cancelled", OPEN_STATES + SENDABLE, note, now)


def mark_sent(session: so.Session, offer_id: int, agent: Agent, *, reference: str = "",
              now: datetime | None = None) -> DecisionResult:
    """Record that the customer was sent an approved offer (once: a second call changes nothing)."""
    return _decide(session, offer_id, agent, "send", "sent", SENDABLE, "", now, reference=reference.strip())


def correct(session: so.Session, offer_id: int, admin: Agent, *, amount: Any, note: str,
            now: datetime | None = None) -> RecoveryEntry:
    """Append a correction of the offer's amount (say the refund was smaller); admins only.

    The corrected amount is what budgets count from then on; the offer row itself stays as it was.
    """
    entry = get_offer(session, offer_id)
    if not admin.active or admin.role != "admin":
        raise NotAllowed("Only an admin may correct the ledger.")
    if not note.strip():
        raise FieldError({"note": "Say why the amount is corrected."})
    value = clean_amount(session.get(GestureType, entry.gesture_type_id), amount)
    lock(session, LOCK_OFFER, entry.id)
    return _append(session, entry, "correction", state_of(session, entry.id), admin, now or utcnow(),
                   amount=value, corrects_id=entry.id, reason=note.strip())
