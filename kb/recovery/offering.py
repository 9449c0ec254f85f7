"""Offering a gesture from a case, and withdrawing it: the ledger rows, their case events, and what follows.

``make_offer`` records the offer (``offers.offer``), puts it on the case's history, and then either
schedules its email (within every bound) or asks for approval (above one). ``cancel_offer`` withdraws
an offer not yet sent, with the jobs that would have sent it or asked about it.

kb offers a gesture only to a customer it can email, and never on a sample case: its message would
go to a made-up address, and a real ledger row (which can never be deleted) would keep the sample
case from being removed by ``kb sample remove``. The agent logs a phone call as a note instead.

A second submit of the same form (its nonce) finds the first offer instead of making another: the
check runs under the same locks as the offer itself, so two submits at once make one offer.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb import agents, jobs
from kb.errors import FieldError, NotFound, ValidationError
from kb.followup.messages import customer_email
from kb.followup.models import Case, CaseEvent
from kb.jobs.models import Job
from kb.models import Agent
from kb.recovery import approvals, events, offers, sending
from kb.recovery.models import GestureType, RecoveryEntry

NONCE = re.compile(r"[0-9a-f]{16,64}")
OFFERED_ID = re.compile(r"<recovery\.(\d+)\.")
LIMITS = {"reason": 200, "reference": 200, "message": 20_000}  # as the ledger's columns hold them
PERMISSION = "read_customer_mail"  # who works on cases (support agents and admins) may offer
SENT_ALREADY = ("running", "sent", "done")  # states of the send job after which it is too late to cancel


@dataclass(frozen=True)
class Made:
    """What an offer form did: the offer, its state, the bounds it exceeded, and whether it is new."""

    entry: RecoveryEntry
    state: str
    exceeded: list[dict[str, Any]] = field(default_factory=list)
    created: bool = True


def refusal(session: so.Session, case: Case) -> str:
    """Why kb will not email this case's customer a gesture, or empty when it will."""
    if case.sample:
        return ("This is a sample case: kb emails no sample customer, so it offers them nothing. "
                "Remove the sample data with `kb sample remove`.")
    if not customer_email(session, case):
        return "This customer has no email address: kb cannot send them a gesture. Log a phone call as a note."
    return ""


def _check(fields: Mapping[str, str]) -> None:
    """FieldError for a field longer than the ledger keeps."""
    errors = {name: f"Keep it under {limit:,} characters." for name, limit in LIMITS.items()
              if len(fields.get(name) or "") > limit}
    if errors:
        raise FieldError(errors)


def _earlier(session: so.Session, case: Case, nonce: str) -> RecoveryEntry | None:
    """The offer this form (its nonce) made already, if any."""
    found = session.scalar(sa.select(CaseEvent.message_id).where(
        CaseEvent.case_id == case.id, CaseEvent.kind == "recovery",
        CaseEvent.message_id.like(f"<recovery.%.{nonce}@%")).limit(1))
    match = OFFERED_ID.match(found or "")
    return session.get(RecoveryEntry, int(match.group(1))) if match else None


def make_offer(session: so.Session, *, case: Case, agent: Agent, gesture_type: GestureType, amount: Any,
               reason: str, message: str, reference: str = "", settings: Mapping[str, Any], nonce: str = "",
               now: datetime | None = None) -> Made:
    """Offer a gesture on a case: sent at once within bounds, else waiting for approval.

    offers.NotAllowed for an agent who may not work on cases; ValidationError when the customer
    cannot be emailed (see ``refusal``); FieldError for a field to fix. The caller commits.
    """
    if not agents.can(agent, PERMISSION):
        raise offers.NotAllowed("Only support agents and admins may offer a gesture.")
    why = refusal(session, case)
    if why:
        raise ValidationError(why)
    _check({"reason": reason, "reference": reference, "message": message})
    nonce = nonce if NONCE.fullmatch(nonce or "") else secrets.token_hex(16)
    # The same locks as offers.offer, in its order, so the look for an earlier submit and the offer
    # are one step: a second submit waits for the first one's commit and then finds its offer.
    offers.lock(session, offers.LOCK_AGENT, agent.id)
    if case.customer_id is not None:
        offers.lock(session, offers.LOCK_CUSTOMER, case.customer_id)
    offers.lock(session, offers.LOCK_CASE, case.id)
    earlier = _earlier(session, case, nonce)
    if earlier is not None:
        return Made(earlier, offers.state_of(session, earlier.id), created=False)
    result = offers.offer(session, case=case, agent=agent, gesture_type=gesture_type, amount=amount, reason=reason,
                          message=message, reference=reference, settings=settings, now=now)
    event = events.record_entry(session, result.entry)
    event.message_id = sending.message_id_for(settings, result.entry.id, nonce)
    if result.state == "approved_auto":
        sending.schedule_send(session, result.entry)
    else:
        approvals.request(session, result.entry, settings, now=now)
    return Made(result.entry, result.state, result.exceeded)


def send_job_state(session: so.Session, offer_id: int) -> str:
    """The state of the offer's sending job, or empty when it has none (pending approval, say)."""
    return session.scalar(sa.select(Job.state).where(Job.kind == sending.KIND,
                                                     Job.key == sending.job_key(offer_id))) or ""


def cancel_offer(session: so.Session, case: Case, offer_id: int, agent: Agent, *,
                 note: str = "") -> offers.DecisionResult:
    """Withdraw an offer of this case not yet sent (its maker or an admin); the caller commits.

    Too late once kb has started sending it: the email may be on its way. NotFound for an offer of
    another case, offers.NotAllowed for someone else's offer.
    """
    entry = offers.get_offer(session, offer_id)
    if entry.case_id != case.id:
        raise NotFound("This case has no such offer.")
    if not agent.active or (agent.id != entry.agent_id and agent.role != "admin"):
        raise offers.NotAllowed("Only the agent who made the offer, or an admin, may cancel it.")
    key = sending.job_key(entry.id)
    # Cancelling the send job is a compare-and-set against the runner's claim: one of them wins.
    job_state = send_job_state(session, entry.id)
    if job_state in SENT_ALREADY or (job_state == "pending" and not jobs.cancel(session, sending.KIND, key)):
        return offers.DecisionResult(None, offers.state_of(session, entry.id), False,
                                     "Too late to cancel: kb has sent it to the customer, or is sending it now.")
    result = offers.cancel(session, entry.id, agent, note=note)
    if result.changed:
        events.record_entry(session, result.entry)
        for kind in (approvals.ASK, approvals.ESCALATE):  # nobody need decide on it any more
            jobs.cancel(session, kind, key)
    return result
