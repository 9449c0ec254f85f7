"""Sending an approved offer's message to the customer: a job, so a failing SMTP server is retried.

``schedule_send`` is called when an offer becomes sendable (recorded within bounds, or approved);
the job "recovery.send" (key "offer:<id>") emails the offer's message threaded on the case and then
appends the ledger's "send" row (``offers.mark_sent``), once.

The email's Message-ID is chosen when the offer is made ("<recovery.<offer id>.<form nonce>@host>",
kept on the offer's case event): the nonce is how a second submit of the same form finds the first
offer, and the job sends under that same Message-ID in every attempt.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb import jobs
from kb.autoreply.compose import new_message_id
from kb.followup import cases, messages
from kb.followup.models import Case, CaseEvent
from kb.models import Agent
from kb.recovery import events, offers
from kb.recovery.models import RecoveryEntry

log = logging.getLogger(__name__)
KIND = "recovery.send"


def schedule_send(session: so.Session, entry: RecoveryEntry) -> None:
    """Schedule the sending of this offer's message (idempotent per offer); the caller commits.

    ``entry`` is the offer row or any row of it (say the approval just appended): the job is the offer's.
    """
    offer_id = entry.offer_id or entry.id
    jobs.schedule(session, KIND, job_key(offer_id), payload={"offer_id": offer_id})


def job_key(offer_id: int) -> str:
    """The key of the offer's sending job."""
    return f"offer:{offer_id}"


def message_id_for(settings: Mapping[str, Any], offer_id: int, nonce: str) -> str:
    """The Message-ID the offer's email will carry (``nonce``: the offer form's, lowercase hex)."""
    fresh = new_message_id(str(settings.get("BASE_URL") or ""))
    return f"<recovery.{offer_id}.{nonce}@{fresh.rsplit('@', 1)[1]}"  # the domain part keeps its ">"


def planned_message_id(session: so.Session, entry: RecoveryEntry) -> str:
    """The Message-ID chosen when the offer was made, or empty (an offer recorded another way)."""
    return session.scalar(sa.select(CaseEvent.message_id).where(
        CaseEvent.case_id == entry.case_id, CaseEvent.kind == "recovery",
        CaseEvent.message_id.like(f"<recovery.{int(entry.id)}.%")).order_by(CaseEvent.id).limit(1)) or ""


@jobs.handler(KIND)
def _send(ctx) -> None:
    """Email the offer's message to the customer once, then append the ledger's "send" row."""
    session, settings = ctx.session, ctx.settings
    entry = session.get(RecoveryEntry, ctx.payload.get("offer_id"))
    case = session.get(Case, entry.case_id) if entry is not None and entry.case_id else None
    if entry is None or entry.kind != "offer" or case is None or case.sample:
        return  # nothing to send to (and kb never emails a sample customer)
    if not ctx.delivered and offers.state_of(session, entry.id) not in offers.SENDABLE:
        return  # cancelled or declined before the job ran (or sent already): send nothing
    agent = session.get(Agent, entry.agent_id)
    message_id = ctx.message_id(lambda: planned_message_id(session, entry)
                                or new_message_id(str(settings.get("BASE_URL") or "")))
    messages.send_once(ctx, lambda: messages.compose(session, case, entry.message, agent, settings, message_id),
                       f"recovery offer {entry.id}")
    _record_sent(session, entry, case, agent, message_id)


def _record_sent(session: so.Session, entry: RecoveryEntry, case: Case, agent: Agent, message_id: str) -> None:
    """The ledger's "send" row with its case event, and the case marked contacted (once, however often retried)."""
    result = offers.mark_sent(session, entry.id, agent, reference=entry.reference)
    if result.changed:
        event = events.record_entry(session, result.entry)
        if event is not None:
            event.message_id = message_id
    elif result.state != "sent":  # cancelled while the email was on its way: it has gone all the same
        log.warning("recovery offer %s was emailed but is %s; its ledger has no send row", entry.id, result.state)
    if case.state != "contacted":
        cases.change_state(session, case, "contact", agent_id=entry.agent_id, note="Gesture sent by email.")
