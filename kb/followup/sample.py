"""Sample follow-up data: a believable queue, customer timelines and report on the first `kb serve`.

Every row is marked (``sample=True``; mail records by a ``dedupe_key`` and votes by a ``visitor``
starting with ``sample:``) so ``remove_sample`` deletes exactly these. The rows are built directly,
never through ``record_signal`` or the case functions, so no job is scheduled and kb sends nothing
to a sample address (all on example.com/.net/.org, which RFC 2606 reserves and which take no mail).

A sample customer or case that real activity has joined (a real signal recorded on a sample
address, or a merge with a real customer) is kept by ``remove_sample``, unmarked, with its history:
no real record loses its context.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask

from kb.autoreply.models import MailRecord
from kb.followup import sample_data
from kb.followup.sample_builder import MARKER, PREFIX, Builder
from kb.followup.models import Case, CaseEvent, Customer, CustomerIdentity, CustomerMerge, Signal, Survey
from kb.jobs.models import Job
from kb.models import Vote, utcnow
from kb.recovery.models import RecoveryEntry



def has_followup_data(session: so.Session) -> bool:
    """Whether the database holds any customer, case or signal (sample or real)."""
    return any(session.scalar(sa.select(model.id).limit(1)) is not None for model in (Customer, Case, Signal))


def load_sample(session: so.Session, settings: Mapping[str, Any], now: datetime | None = None) -> Counter[str]:
    """Create the sample customers, their mail, cases, signals, events and surveys, and the starter
    gesture types, bounds and offers (kb.recovery.sample); the caller commits.

    Does nothing (empty counts) when the database has follow-up data already, so loading twice,
    or over real data, adds nothing.
    """
    if has_followup_data(session):
        return Counter()
    builder = Builder(session, settings, now or utcnow())
    for story in sample_data.STORIES:
        story(builder)
    builder.finish()
    session.flush()
    # Recovery builds on follow-ups (never the other way round at import time): its sample joins here.
    from kb.capture import sample as capture_sample
    from kb.insights import sample as insights_sample
    from kb.recovery import sample as recovery_sample

    builder.counts.update(recovery_sample.load(session, settings, builder.now))
    builder.counts.update(capture_sample.load(session, builder.now))  # example questions ("also asked as")
    builder.counts.update(insights_sample.load(session, builder.now))  # 90 days of searches, visits, questions
    return builder.counts


def _ids(session: so.Session, query: sa.Select) -> set[int]:
    """The ids a one-column query returns."""
    return set(session.scalars(query))


def _kept(session: so.Session) -> tuple[set[int], set[int]]:
    """Sample cases and customers that real activity has joined: (case ids, customer ids)."""
    real_signals = sa.select(Signal.case_id).where(Signal.sample.is_(False))
    # A real gesture offered on a sample case (or a real answer to a sample one) is on the append-only
    # ledger, which keeps its case for good; kb.recovery.sample.remove has deleted the other sample rows.
    gestures = sa.select(RecoveryEntry.case_id).where(RecoveryEntry.case_id.is_not(None))
    cases = _ids(session, sa.select(Case.id).where(Case.sample.is_(True), sa.or_(
        Case.id.in_(real_signals), Case.id.in_(gestures))))
    merged = sa.union(sa.select(CustomerMerge.kept_id), sa.select(CustomerMerge.merged_id))
    customers = _ids(session, sa.select(Customer.id).where(Customer.sample.is_(True), sa.or_(
        Customer.id.in_(sa.select(Signal.customer_id).where(Signal.sample.is_(False))),
        Customer.id.in_(sa.select(Case.customer_id).where(sa.or_(Case.sample.is_(False), Case.id.in_(cases)))),
        Customer.id.in_(merged),
        Customer.id.in_(sa.select(Customer.merged_into_id).where(Customer.sample.is_(False))))))
    return cases, customers


def _unmark(session: so.Session, case_ids: set[int], customer_ids: set[int]) -> None:
    """Make the kept sample rows real: the case with its history, the customer without the marker."""
    for model in (Signal, CaseEvent, Survey):
        session.execute(sa.update(model).where(model.case_id.in_(case_ids)).values(sample=False))
    session.execute(sa.update(Case).where(Case.id.in_(case_ids)).values(sample=False))
    for customer in session.scalars(sa.select(Customer).where(Customer.id.in_(customer_ids))):
        customer.sample = False
        customer.name = customer.name.removesuffix(MARKER)


def _cancel_jobs(session: so.Session, case_ids: set[int], signal_ids: set[int]) -> int:
    """Cancel pending jobs about the cases and signals being deleted (an agent tried the sample)."""
    cancelled = 0
    for job in session.scalars(sa.select(Job).where(Job.state == "pending")):
        payload = job.payload or {}
        if payload.get("case_id") in case_ids or payload.get("signal_id") in signal_ids:
            job.state, job.done_at = "cancelled", utcnow()
            cancelled += 1
    return cancelled


def remove_sample(session: so.Session) -> Counter[str]:
    """Delete the sample rows (and agents' work on them) and nothing else; the caller commits.

    Returns how many rows of each kind went, plus ``kept_cases`` / ``kept_customers`` (see the
    module docstring).
    """
    from kb.capture import sample as capture_sample
    from kb.insights import sample as insights_sample
    from kb.recovery import sample as recovery_sample  # see load_sample

    recovery = recovery_sample.remove(session)  # first: its rows name the sample cases
    recovery.update(capture_sample.remove(session))
    recovery.update(insights_sample.remove(session))
    kept_cases, kept_customers = _kept(session)
    _unmark(session, kept_cases, kept_customers)
    case_ids = _ids(session, sa.select(Case.id).where(Case.sample.is_(True)))
    customer_ids = _ids(session, sa.select(Customer.id).where(Customer.sample.is_(True)))
    signal_ids = _ids(session, sa.select(Signal.id).where(Signal.case_id.in_(case_ids)))
    mail_ids = _ids(session, sa.select(MailRecord.id).where(MailRecord.dedupe_key.startswith(PREFIX)))
    counts = Counter(kept_cases=len(kept_cases), kept_customers=len(kept_customers),
                     jobs_cancelled=_cancel_jobs(session, case_ids, signal_ids))
    session.execute(sa.update(Signal).where(Signal.mail_record_id.in_(mail_ids)).values(mail_record_id=None))
    deletions = {
        "surveys": sa.delete(Survey).where(Survey.case_id.in_(case_ids)),
        "events": sa.delete(CaseEvent).where(sa.or_(
            CaseEvent.case_id.in_(case_ids), CaseEvent.customer_id.in_(customer_ids),
            sa.and_(CaseEvent.sample.is_(True), CaseEvent.case_id.is_(None)))),
        "signals": sa.delete(Signal).where(Signal.id.in_(signal_ids)),
        "cases": sa.delete(Case).where(Case.id.in_(case_ids)),
        "identities": sa.delete(CustomerIdentity).where(CustomerIdentity.customer_id.in_(customer_ids)),
        "customers": sa.delete(Customer).where(Customer.id.in_(customer_ids)),
        "mail_records": sa.delete(MailRecord).where(MailRecord.id.in_(mail_ids)),
        "votes": sa.delete(Vote).where(Vote.visitor.startswith(PREFIX)),
    }
    for name, statement in deletions.items():
        counts[name] = session.execute(statement.execution_options(synchronize_session=False)).rowcount
    counts.update(recovery + recovery_sample.remove_agents(session))  # last: case events named them
    session.expire_all()
    return counts


def bootstrap(app: Flask) -> Counter[str] | None:
    """Load the sample on a database without follow-up data, unless KB_SAMPLE_DATA is off; None if skipped."""
    from kb.db import session_scope

    if not app.config.get("SAMPLE_DATA"):
        return None
    with session_scope(app) as session:
        counts = load_sample(session, app.config)
    return counts or None


def summary(counts: Mapping[str, int], verb: str) -> str:
    """One line: what was loaded or removed."""
    parts = [f"{counts.get(name, 0)} {name.replace('_', ' ')}" for name in
             ("customers", "cases", "signals", "events", "surveys", "mail_records", "votes", "gesture_types",
              "bounds", "ledger_rows", "searches", "portal_visits", "article_days", "article_votes", "questions") if name in counts]
    return f"{verb} sample follow-up data: " + ", ".join(parts)
