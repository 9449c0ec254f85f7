"""Signals open cases: each is recorded once (its key), and joins the open case of its customer.

Sources: a "No" vote, "Still need help", a customer writing back into an auto-answered thread, a
low satisfaction score, and an agent opening one by hand. Idempotent under retries and concurrent
workers: the signal's unique key and the case's unique open_key decide, not timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb import jobs
from kb.db import begin_write
from kb.autoreply.storable import storable_text
from kb.errors import ValidationError
from kb.followup import hours
from kb.followup.customers import customer_for, customer_for_address
from kb.followup.models import MAX_WORDS, SOURCES, Case, CaseEvent, Customer, Signal
from kb.models import utcnow

REOPEN_DAYS = 7  # a resolved case whose customer is unhappy again within this many days is reopened
REOPENING_SOURCES = ("writeback", "survey", "still_need_help", "vote")


@dataclass(frozen=True)
class SignalResult:
    """What record_signal did: the case, the signal, and whether this call recorded it."""

    case: Case
    signal: Signal
    created: bool


def open_key_for(customer: Customer | None, article_id: int | None, key: str) -> str:
    """One open case per customer; without one, per article; else the signal stands alone."""
    if customer is not None:
        return f"customer:{customer.id}"
    if article_id is not None:
        return f"article:{article_id}"
    return f"signal:{key}"[:64]


def _existing(session: so.Session, key: str) -> SignalResult | None:
    """The result of an earlier call with this key, if there was one."""
    signal = session.scalar(sa.select(Signal).where(Signal.key == key))
    return SignalResult(session.get(Case, signal.case_id), signal, False) if signal else None


def _recently_resolved(session: so.Session, customer: Customer | None, source: str) -> Case | None:
    """The customer's case resolved within REOPEN_DAYS, which an unhappy signal reopens."""
    if customer is None or source not in REOPENING_SOURCES:
        return None
    since = utcnow() - timedelta(days=REOPEN_DAYS)
    return session.scalar(sa.select(Case).where(
        Case.customer_id == customer.id, Case.state == "resolved", Case.resolved_at >= since
    ).order_by(Case.resolved_at.desc()).limit(1))


def _open_case(session: so.Session, open_key: str, customer: Customer | None, source: str,
               article_id: int | None, lang: str) -> tuple[Case, bool]:
    """The open case for ``open_key``: found, reopened or created (race-safe). True if (re)opened now."""
    case = session.scalar(sa.select(Case).where(Case.open_key == open_key))
    if case is not None:
        return case, False
    previous = _recently_resolved(session, customer, source)
    try:
        with session.begin_nested():
            if previous is not None:
                changed = session.execute(sa.update(Case).where(
                    Case.id == previous.id, Case.state == "resolved"
                ).values(state="reopened", open_key=open_key, resolved_at=None, acknowledged_at=None,
                         updated_at=utcnow()).execution_options(synchronize_session="fetch"))
                if changed.rowcount == 1:
                    session.refresh(previous)
                    session.add(CaseEvent(case_id=previous.id, customer_id=previous.customer_id, kind="state",
                                          from_state="resolved", to_state="reopened",
                                          note=f"Reopened: the customer was unhappy again ({source})."))
                    return previous, True
            case = Case(open_key=open_key, customer_id=customer.id if customer else None,
                        article_id=article_id, source=source, lang=lang or "")
            session.add(case)
            session.flush()
    except sa.exc.IntegrityError:  # another worker opened it a moment ago: join that one
        case = session.scalar(sa.select(Case).where(Case.open_key == open_key))
        if case is None:
            raise
        return case, False
    return case, True


def record_signal(session: so.Session, *, key: str, source: str, settings: Mapping[str, Any],
                  address: str = "", name: str = "", article_id: int | None = None,
                  mail_record_id: int | None = None, words: str = "", reason: str = "",
                  score: int | None = None, channel: str = "web", agent_id: int | None = None,
                  lang: str = "", thread_message_id: str = "", thread_subject: str = "",
                  phone: str = "") -> SignalResult:
    """Record one signal and open (or join, or reopen) its case; the same key twice records it once.

    ``phone`` finds the customer by number when there is no address (a case an agent opens for a caller).
    Schedules the alert for the signal, and the escalation when the case (re)opened. The caller commits.
    """
    if source not in SOURCES:
        raise ValidationError(f"Unknown signal source {source!r}.")
    begin_write(session)  # the case, signal and alert job commit or roll back together
    key = storable_text(key, 200)
    earlier = _existing(session, key)
    if earlier is not None:
        return earlier
    customer = customer_for_address(session, address, name) if address.strip() else None
    if customer is None and phone.strip():
        customer = customer_for(session, "phone", phone, name)
    case, opened = _open_case(session, open_key_for(customer, article_id, key), customer, source, article_id, lang)
    signal = Signal(key=key, case_id=case.id, customer_id=customer.id if customer else None, source=source,
                    channel=channel, article_id=article_id, mail_record_id=mail_record_id,
                    reason=storable_text(reason, 32), words=storable_text(words, MAX_WORDS), score=score,
                    agent_id=agent_id, created_at=utcnow())
    try:
        with session.begin_nested():
            session.add(signal)
            session.flush()
    except sa.exc.IntegrityError:  # the same signal, recorded by a concurrent request
        earlier = _existing(session, key)
        if earlier is None:
            raise
        return earlier
    _fill_case(case, score=score, lang=lang, thread_message_id=thread_message_id, thread_subject=thread_subject)
    jobs.schedule(session, "followup.alert", f"signal:{signal.id}", payload={"signal_id": signal.id})
    if opened:
        jobs.schedule(session, "followup.escalate", f"case:{case.id}:opened-by:{signal.id}",
                      run_at=hours.ack_deadline(settings, utcnow()), payload={"case_id": case.id})
    return SignalResult(case, signal, True)


def _fill_case(case: Case, *, score: int | None, lang: str, thread_message_id: str, thread_subject: str) -> None:
    """Keep the first score, language and email thread a case learns of."""
    if score is not None and case.score_before is None:
        case.score_before = score
    if lang and not case.lang:
        case.lang = lang
    if thread_message_id and not case.thread_message_id:
        case.thread_message_id = storable_text(thread_message_id, 500)
        case.thread_subject = storable_text(thread_subject, 500)
