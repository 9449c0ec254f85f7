"""Merging two customers into one, and undoing it exactly.

A merge moves the merged customer's identities, cases, signals and case events to the kept one and
records every moved id per table in CustomerMerge.moved; undo moves exactly those rows back. Rows
are never deleted, so every timeline entry survives both ways.

Open cases: each customer may hold one open case under "customer:<id>". A moved open case takes
the kept customer's key when the kept one has no open case; otherwise it keeps a key of its own,
"case:<id>", until it is resolved. Undo gives moved-back open cases their customer's key again.

Chains: undoing a merge moves its rows back from wherever later merges took them (the kept
customer, or the customer it was merged into since), never from anyone else.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.errors import NotFound, ValidationError
from kb.followup.customers import MAX_MERGE_HOPS
from kb.followup.models import Case, CaseEvent, Customer, CustomerIdentity, CustomerMerge, Signal
from kb.models import utcnow

# table name -> model; each has a customer_id the merge moves
TABLES: dict[str, Any] = {
    "customer_identities": CustomerIdentity,
    "cases": Case,
    "signals": Signal,
    "case_events": CaseEvent,
}


def _ids(session: so.Session, model: Any, customer_id: int) -> list[int]:
    """The ids of ``model`` rows that belong to the customer."""
    return list(session.scalars(sa.select(model.id).where(model.customer_id == customer_id).order_by(model.id)))


def _key_for(session: so.Session, case_id: int, customer_id: int) -> str:
    """The open key a moved open case takes: its customer's, unless another open case holds it."""
    own = f"customer:{customer_id}"
    holder = session.scalar(sa.select(Case.id).where(Case.open_key == own))
    return own if holder in (None, case_id) else f"case:{case_id}"


def _rekey_open_cases(session: so.Session, case_ids: list[int], customer_id: int) -> None:
    """Give each open case among ``case_ids`` the key it should hold under its (new) customer."""
    open_cases = session.scalars(sa.select(Case).where(Case.id.in_(case_ids), Case.open_key.is_not(None))
                                 .order_by(Case.id)).all()
    for case in open_cases:  # first release the old keys, so two moved cases never collide
        session.execute(sa.update(Case).where(Case.id == case.id).values(open_key=f"case:{case.id}")
                        .execution_options(synchronize_session=False))
    for case in open_cases:
        session.execute(sa.update(Case).where(Case.id == case.id)
                        .values(open_key=_key_for(session, case.id, customer_id))
                        .execution_options(synchronize_session=False))


def check(kept: Customer, merged: Customer) -> None:
    """Refuse a merge that cannot be undone cleanly, saying why."""
    if kept.id == merged.id:
        raise ValidationError("A customer cannot be merged into itself.")
    if merged.merged_into_id is not None:
        raise ValidationError(f"Customer #{merged.id} was already merged into customer #{merged.merged_into_id}.")
    if kept.merged_into_id is not None:
        raise ValidationError(f"Customer #{kept.id} was merged into customer #{kept.merged_into_id}: "
                              f"merge into that one instead.")


def merge(session: so.Session, kept: Customer, merged: Customer, agent_id: int | None) -> CustomerMerge:
    """Move everything of ``merged`` to ``kept``, recorded so undo can move it back. The caller commits."""
    check(kept, merged)
    # Compare-and-set: of two agents merging the same customer at once, one wins.
    claimed = session.execute(sa.update(Customer).where(Customer.id == merged.id, Customer.merged_into_id.is_(None))
                              .values(merged_into_id=kept.id).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        raise ValidationError(f"Customer #{merged.id} was merged a moment ago; reload the page.")
    moved = {table: _ids(session, model, merged.id) for table, model in TABLES.items()}
    for table, model in TABLES.items():
        if moved[table]:
            session.execute(sa.update(model).where(model.id.in_(moved[table])).values(customer_id=kept.id)
                            .execution_options(synchronize_session=False))
    _rekey_open_cases(session, moved["cases"], kept.id)
    record = CustomerMerge(kept_id=kept.id, merged_id=merged.id, moved=moved, agent_id=agent_id, created_at=utcnow())
    session.add(record)
    session.flush()
    session.expire_all()  # the bulk updates above bypassed the loaded objects
    return record


def _chain(session: so.Session, customer_id: int) -> list[int]:
    """The customer and every customer it was merged into since, in order."""
    chain = [customer_id]
    for _ in range(MAX_MERGE_HOPS):
        following = session.scalar(sa.select(Customer.merged_into_id).where(Customer.id == chain[-1]))
        if following is None or following in chain:
            break
        chain.append(following)
    return chain


def undo(session: so.Session, merge_id: int, agent_id: int | None) -> CustomerMerge:
    """Move the rows of merge ``merge_id`` back and make the merged customer live again; twice is harmless.

    ``agent_id`` is who asked (kept for symmetry with merge; the merge row records the time). The caller commits.
    """
    record = session.get(CustomerMerge, merge_id)
    if record is None:
        raise NotFound("No such merge.")
    claimed = session.execute(sa.update(CustomerMerge).where(CustomerMerge.id == merge_id,
                                                             CustomerMerge.undone_at.is_(None))
                              .values(undone_at=utcnow()).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # undone already (or by a concurrent click): nothing more to do
        session.refresh(record)
        return record
    holders = _chain(session, record.kept_id)
    moved = record.moved or {}
    for table, model in TABLES.items():
        ids = [int(i) for i in moved.get(table, [])]
        if ids:
            session.execute(sa.update(model).where(model.id.in_(ids), model.customer_id.in_(holders))
                            .values(customer_id=record.merged_id).execution_options(synchronize_session=False))
    back = [int(i) for i in moved.get("cases", [])]
    back = list(session.scalars(sa.select(Case.id).where(Case.id.in_(back), Case.customer_id == record.merged_id)))
    _rekey_open_cases(session, back, record.merged_id)
    session.execute(sa.update(Customer).where(Customer.id == record.merged_id).values(merged_into_id=None)
                    .execution_options(synchronize_session=False))
    session.flush()
    session.expire_all()
    session.refresh(record)
    return record


def history(session: so.Session, customer: Customer, limit: int = 50) -> list[CustomerMerge]:
    """The merges into or of this customer, newest first."""
    return list(session.scalars(sa.select(CustomerMerge).where(
        sa.or_(CustomerMerge.kept_id == customer.id, CustomerMerge.merged_id == customer.id)
    ).order_by(CustomerMerge.created_at.desc(), CustomerMerge.id.desc()).limit(limit)))
