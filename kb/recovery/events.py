"""Each ledger row also appears on its case's history and the customer's timeline, as a CaseEvent.

The follow-up package never imports recovery (recovery builds on it), so the timeline learns of
offers, decisions and sendings through case events of kind "recovery" written here.
"""

from __future__ import annotations

import sqlalchemy.orm as so

from kb.followup import cases
from kb.followup.models import Case, CaseEvent
from kb.recovery.models import GestureType, RecoveryEntry

# What each kind of ledger row says on a timeline (agents read it; English like the agent pages).
SAYS = {"offer": "Offered", "approval": "Approved", "decline": "Declined", "send": "Sent to the customer",
        "cancel": "Cancelled", "correction": "Corrected"}


def summary(session: so.Session, entry: RecoveryEntry) -> str:
    """One line about the row: what happened, the gesture and its amount, and its state."""
    gesture = session.get(GestureType, entry.gesture_type_id)
    amount = f" {entry.amount} {entry.currency}".rstrip() if entry.amount else ""
    if gesture is not None and gesture.kind == "discount_percent":
        amount = f" {entry.amount} %"
    waits = " (waiting for approval)" if entry.state == "pending" else ""
    return f"{SAYS[entry.kind]}: {gesture.name if gesture else 'gesture'}{amount}{waits}"


def record_entry(session: so.Session, entry: RecoveryEntry) -> CaseEvent | None:
    """Add the ledger row to its case's history (nothing when it has no case); the caller commits."""
    case = session.get(Case, entry.case_id) if entry.case_id else None
    if case is None:
        return None
    note = summary(session, entry)
    if entry.reason and entry.kind != "offer":
        note += f": {entry.reason}"
    return cases.record(session, case, "recovery", agent_id=entry.agent_id, note=note, channel="recovery",
                        sample=entry.sample)
