"""Service-recovery records: gesture types, their bounds, and the append-only ledger.

The ledger (``recovery_entries``) is never updated or deleted: kb refuses it in the session (see
``_refuse_ledger_changes``) and the database refuses it with triggers (migrations 0009_recovery and
0010_recovery_flow). Two exceptions, both also enforced by the triggers: the retention scrub may blank
an offer's message to the customer (and change nothing else), and rows marked sample may be deleted
by `kb sample remove`. A change of mind is a new row: a decline, a cancellation, or a correction that
names the row it corrects. Each offer row keeps a copy of the bounds that applied, so changing a
bound later never rewrites what an offer was measured against.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.storable import StoredJSON, StoredString, StoredText
from kb.errors import KBError
from kb.models import Base, UTCDateTime, utcnow

GESTURE_KINDS = ("apology", "discount_percent", "fixed_credit", "free_shipping", "shipping_refund", "gift", "other")
# Kinds whose amount is money, in the type's currency; "other" may have one too. A discount's amount
# is a percentage (no currency), an apology has none.
MONEY_KINDS = ("fixed_credit", "free_shipping", "shipping_refund", "gift")
SCOPES = ("per_incident", "agent_week", "customer_90d")
APPROVER_ROLES = ("support", "admin")  # never editor: an editor can never approve
ENTRY_KINDS = ("offer", "approval", "decline", "send", "cancel", "correction")
# The state an offer is in after each kind of entry (the offer row itself: approved_auto or pending).
OFFER_STATES = ("approved_auto", "pending", "approved", "declined", "cancelled", "sent")
AMOUNT = sa.Numeric(12, 2)
CENT = Decimal("0.01")


class LedgerError(KBError):
    """A recovery ledger row was about to be changed or deleted: the ledger is append-only."""


class GestureType(Base):
    """Something an agent may offer: an apology, a discount, a credit, free shipping, a gift..."""

    __tablename__ = "gesture_types"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(StoredString(120), unique=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(32))
    currency: so.Mapped[str] = so.mapped_column(sa.String(3), default="")  # ISO 4217, where it has an amount
    template: so.Mapped[str] = so.mapped_column(StoredText(5000), default="")  # the message to the customer
    # The message in other languages, {"zh": "...", "nb": "..."}: a customer gets theirs, else ``template``.
    templates: so.Mapped[dict[str, str]] = so.mapped_column(StoredJSON, default=dict, server_default="{}")
    needs_reference: so.Mapped[bool] = so.mapped_column(default=False)  # a coupon code or refund reference
    active: so.Mapped[bool] = so.mapped_column(default=True)
    sample: so.Mapped[bool] = so.mapped_column(default=False)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint(f"kind IN {GESTURE_KINDS}", name="kind"),
        sa.CheckConstraint("currency = '' OR length(currency) = 3", name="currency"),
    )


class Bound(Base):
    """A limit on offers without approval: per incident, per agent and week, or per customer and 90 days.

    ``gesture_type_id`` NULL makes it an overall bound. An overall ``max_amount`` applies per currency
    (offers in EUR are summed against it apart from offers in NOK); a percentage or an apology has no
    currency and only counts towards ``max_count``.
    """

    __tablename__ = "recovery_bounds"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    scope: so.Mapped[str] = so.mapped_column(sa.String(16))
    gesture_type_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("gesture_types.id"), index=True)
    max_amount: so.Mapped[Optional[Decimal]] = so.mapped_column(AMOUNT)
    max_count: so.Mapped[Optional[int]] = so.mapped_column()
    approver_role: so.Mapped[str] = so.mapped_column(sa.String(16), default="admin")
    active: so.Mapped[bool] = so.mapped_column(default=True)
    sample: so.Mapped[bool] = so.mapped_column(default=False)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint(f"scope IN {SCOPES}", name="scope"),
        sa.CheckConstraint(f"approver_role IN {APPROVER_ROLES}", name="approver_role"),
        sa.CheckConstraint("max_amount IS NOT NULL OR max_count IS NOT NULL", name="some_limit"),
        sa.CheckConstraint("max_amount IS NULL OR max_amount >= 0", name="max_amount"),
        sa.CheckConstraint("max_count IS NULL OR max_count >= 0", name="max_count"),
    )

    def snapshot(self) -> dict[str, Any]:
        """The bound as it is now, for the ledger to keep."""
        return {"id": self.id, "scope": self.scope, "gesture_type_id": self.gesture_type_id,
                "max_amount": None if self.max_amount is None else str(Decimal(self.max_amount).quantize(CENT)),
                "max_count": self.max_count, "approver_role": self.approver_role}


class RecoveryEntry(Base):
    """One row of the append-only recovery ledger: an offer, or something that happened to one.

    ``offer_id`` names the offer a later row belongs to (NULL on the offer itself); ``state`` is the
    offer's state after this row; ``bounds`` is the copy of the bounds that applied.
    """

    __tablename__ = "recovery_entries"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(16))
    offer_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("recovery_entries.id"), index=True)
    corrects_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("recovery_entries.id"))
    state: so.Mapped[str] = so.mapped_column(sa.String(16))
    case_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("cases.id"), index=True)
    customer_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("customers.id"), index=True)
    agent_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("agents.id"), index=True)  # who wrote the row
    gesture_type_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("gesture_types.id"))
    amount: so.Mapped[Decimal] = so.mapped_column(AMOUNT, default=Decimal("0"))
    currency: so.Mapped[str] = so.mapped_column(sa.String(3), default="")
    reason: so.Mapped[str] = so.mapped_column(StoredString(200), default="")
    message: so.Mapped[str] = so.mapped_column(StoredText(20_000), default="")
    reference: so.Mapped[str] = so.mapped_column(StoredString(200), default="")
    bounds: so.Mapped[dict[str, Any]] = so.mapped_column(StoredJSON, default=dict)
    approver_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("agents.id"))
    sample: so.Mapped[bool] = so.mapped_column(default=False)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)

    __table_args__ = (
        sa.CheckConstraint(f"kind IN {ENTRY_KINDS}", name="kind"),
        sa.CheckConstraint(f"state IN {OFFER_STATES}", name="state"),
        sa.CheckConstraint("amount >= 0", name="amount"),
    )


@sa.event.listens_for(so.Session, "before_flush")
def _refuse_ledger_changes(session: so.Session, _context, _instances) -> None:
    """No kb code path may change or delete a ledger row: fail the flush before it reaches the database."""
    for entry in session.deleted:
        if isinstance(entry, RecoveryEntry) and not entry.sample:  # sample rows go with `kb sample remove`
            raise LedgerError("The recovery ledger is append-only: a row cannot be deleted.")
    for entry in session.dirty:
        if isinstance(entry, RecoveryEntry) and session.is_modified(entry) and not _only_blanks_message(entry):
            raise LedgerError("The recovery ledger is append-only: add a correction instead of changing a row.")


def _only_blanks_message(entry: RecoveryEntry) -> bool:
    """Whether the only change is the retention scrub's: the message to the customer blanked."""
    changed = {attr.key for attr in sa.inspect(entry).attrs if attr.history.has_changes()}
    return changed == {"message"} and entry.message == ""


@sa.event.listens_for(so.Session, "do_orm_execute")
def _refuse_ledger_statements(state: so.ORMExecuteState) -> None:
    """An ORM-enabled UPDATE or DELETE of ledger rows is refused as well."""
    if (state.is_update or state.is_delete) and any(
            mapper.class_ is RecoveryEntry for mapper in state.all_mappers):
        raise LedgerError("The recovery ledger is append-only: its rows cannot be updated or deleted.")
