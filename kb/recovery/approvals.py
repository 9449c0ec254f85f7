"""Asking for approval of an offer above a bound: the approvers are told at once, all admins later.

``request`` is called when an offer is recorded as pending. It schedules two jobs: "recovery.approval"
(key "offer:<id>", now) tells the approvers of the bound's role by email and the webhook, and
"recovery.approval_escalate" (key "offer:<id>", after KB_APPROVAL_ESCALATE_MINUTES) tells every
active admin if the offer is still pending then. Their handlers live beside this function.

Each approver's email carries links signed for that approver (approval_links), so it cannot be one
email to all of them: both jobs fan out into one "recovery.approval_email" job per recipient (key
"offer:<id>:<event>:<agent id>") and one "recovery.approval_webhook" job, each with the one outside
effect a job may have (kb.jobs: ``ctx.deliver``). A failing SMTP server then delays only its own
emails, and a retry never emails an approver twice. Every job does nothing once the offer is
decided: an email about a decided offer is noise. A decision (kb.recovery.decisions) cancels the
escalation and schedules "recovery.decision_email" to the agent who made the offer.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb import jobs
from kb.autoreply import smtp
from kb.autoreply.compose import new_message_id
from kb.followup import webhook
from kb.jobs import JobContext
from kb.models import Agent, utcnow
from kb.recovery import approval_compose as compose
from kb.recovery import approval_links, offers
from kb.recovery.models import RecoveryEntry

log = logging.getLogger(__name__)
ASK, ESCALATE = "recovery.approval", "recovery.approval_escalate"
EMAIL, WEBHOOK, DECIDED = "recovery.approval_email", "recovery.approval_webhook", "recovery.decision_email"
DECISION_KINDS = ("approval", "decline", "cancel")


def request(session: so.Session, entry: RecoveryEntry, settings: Mapping[str, Any],
            now: datetime | None = None) -> None:
    """Schedule telling the approvers about this pending offer, and the escalation; the caller commits."""
    now = now or utcnow()
    minutes = float(settings.get("APPROVAL_ESCALATE_MINUTES") or 30)
    jobs.schedule(session, ASK, f"offer:{entry.id}", run_at=now, payload={"offer_id": entry.id})
    jobs.schedule(session, ESCALATE, f"offer:{entry.id}", run_at=now + timedelta(minutes=minutes),
                  payload={"offer_id": entry.id})


def approvers(session: so.Session, entry: RecoveryEntry, *, admins_only: bool = False) -> list[Agent]:
    """The active agents who may decide the offer (only admins, for an escalation), oldest account first."""
    roles = ("admin",) if admins_only else ("admin", "support")
    found = session.scalars(sa.select(Agent).where(Agent.active.is_(True), Agent.role.in_(roles))
                            .order_by(Agent.id))
    return [agent for agent in found if offers.may_decide(agent, entry)]


def _pending_offer(ctx: JobContext) -> RecoveryEntry | None:
    """The job's offer while it still waits for a decision, else None."""
    entry = ctx.session.get(RecoveryEntry, ctx.payload.get("offer_id"))
    if entry is None or entry.kind != "offer" or offers.state_of(ctx.session, entry.id) != "pending":
        return None
    return entry


def _fan_out(ctx: JobContext, event: str, recipients: list[Agent]) -> None:
    """One email job per recipient and one webhook job, scheduled with this job's commit."""
    entry_id = ctx.payload["offer_id"]
    for agent in recipients:
        jobs.schedule(ctx.session, EMAIL, f"offer:{entry_id}:{event}:{agent.id}",
                      payload={"offer_id": entry_id, "agent_id": agent.id, "event": event})
    if ctx.settings.get("ALERT_WEBHOOK_URL"):
        jobs.schedule(ctx.session, WEBHOOK, f"offer:{entry_id}:{event}", payload={"offer_id": entry_id, "event": event})
    log.info("recovery offer %s: %s sent to %s approver(s)", entry_id, event, len(recipients))


@jobs.handler(ASK)
def ask(ctx: JobContext) -> None:
    """Tell the approvers of the bound's role (and the webhook) about a pending offer."""
    entry = _pending_offer(ctx)
    if entry is not None:
        _fan_out(ctx, "ask", approvers(ctx.session, entry))


@jobs.handler(ESCALATE)
def escalate(ctx: JobContext) -> None:
    """If the offer still waits, tell every active admin (and the webhook) how long it has waited."""
    entry = _pending_offer(ctx)
    if entry is not None:
        _fan_out(ctx, "escalation", approvers(ctx.session, entry, admins_only=True))


def waited_minutes(entry: RecoveryEntry, event: str, now: datetime | None = None) -> int | None:
    """Minutes the offer has waited, for an escalation's words (None for the first ask)."""
    if event != "escalation":
        return None
    return int(((now or utcnow()) - entry.created_at).total_seconds() // 60)


@jobs.handler(EMAIL)
def approval_email(ctx: JobContext) -> None:
    """Email one approver the pending offer with approve and decline links signed for them."""
    entry, agent = _pending_offer(ctx), ctx.session.get(Agent, ctx.payload.get("agent_id"))
    if entry is None or agent is None or not offers.may_decide(agent, entry):
        return  # decided meanwhile, or the approver left or changed role
    settings = ctx.settings
    facts = compose.facts(ctx.session, entry, settings)
    links = approval_links.make_urls(str(settings.get("BASE_URL") or ""), str(settings["SECRET_KEY"]),
                                     entry.id, agent.id)
    message_id = ctx.message_id(lambda: new_message_id(str(settings.get("BASE_URL") or "")))
    message = compose.approval_email(facts, to=agent.email, links=links, settings=settings, message_id=message_id,
                                     waited=waited_minutes(entry, ctx.payload.get("event", "")))
    ctx.deliver(lambda: smtp.send(message, settings))


@jobs.handler(WEBHOOK)
def approval_webhook(ctx: JobContext) -> None:
    """POST the pending offer to KB_ALERT_WEBHOOK_URL with links any approver may open."""
    url, entry = str(ctx.settings.get("ALERT_WEBHOOK_URL") or ""), _pending_offer(ctx)
    if not url or entry is None:
        return
    settings = ctx.settings
    links = approval_links.make_urls(str(settings.get("BASE_URL") or ""), str(settings["SECRET_KEY"]),
                                     entry.id, approval_links.ANY_APPROVER)
    payload = compose.webhook_payload(compose.facts(ctx.session, entry, settings), links=links,
                                      waited=waited_minutes(entry, ctx.payload.get("event", "")))
    ctx.deliver(lambda: webhook.post(url, payload))


def decision_of(session: so.Session, offer_id: int) -> RecoveryEntry | None:
    """The row that ended the offer's wait (an approval, a decline or a cancellation), if any."""
    return session.scalar(sa.select(RecoveryEntry).where(
        RecoveryEntry.offer_id == offer_id, RecoveryEntry.kind.in_(DECISION_KINDS))
        .order_by(RecoveryEntry.id).limit(1))


@jobs.handler(DECIDED)
def decision_email(ctx: JobContext) -> None:
    """Tell the agent who made the offer that it was approved or declined."""
    entry = ctx.session.get(RecoveryEntry, ctx.payload.get("offer_id"))
    decision = decision_of(ctx.session, entry.id) if entry is not None else None
    agent = ctx.session.get(Agent, entry.agent_id) if entry is not None else None
    if decision is None or decision.kind == "cancel" or agent is None or not agent.active:
        return
    decider = ctx.session.get(Agent, decision.approver_id or decision.agent_id)
    settings = ctx.settings
    message_id = ctx.message_id(lambda: new_message_id(str(settings.get("BASE_URL") or "")))
    message = compose.decision_email(compose.facts(ctx.session, entry, settings), to=agent.email,
                                     state=decision.state, decider=decider.name if decider else "An approver",
                                     note=decision.reason, settings=settings, message_id=message_id)
    ctx.deliver(lambda: smtp.send(message, settings))
