"""The timed work of a case: the alert of each signal, and the escalation of an unacknowledged case.

Four kinds of job, each with at most one outside effect (kb.jobs: ``ctx.deliver``):

- ``followup.alert`` (scheduled by record_signal, key "signal:<id>"): emails KB_TEAM_ADDRESS, and
  the article's author when an anonymous vote made the case; schedules the webhook POST first, so a
  failing SMTP server never holds the webhook back (nor the other way round);
- ``followup.alert_webhook`` (same key): POSTs the alert to KB_ALERT_WEBHOOK_URL;
- ``followup.escalate`` (scheduled when a case opens or reopens, at hours.ack_deadline): if the case
  is still unacknowledged, emails KB_ESCALATION_ADDRESS, else every active admin;
- ``followup.escalate_webhook`` (same key): POSTs the escalation.

A failure (an SMTP or HTTP error, a timeout) raises, and the job runner tries again with backoff.
Nothing here logs customer text: errors name servers and statuses only.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb import jobs
from kb.autoreply import smtp
from kb.autoreply.compose import new_message_id
from kb.followup import cases, webhook
from kb.followup.alert_compose import build_email, facts, recipients, webhook_payload
from kb.followup.models import Case, CaseEvent, Signal
from kb.jobs import JobContext
from kb.models import Agent, utcnow

UNACKNOWLEDGED = ("new", "reopened")


def _webhook_url(ctx: JobContext) -> str:
    """KB_ALERT_WEBHOOK_URL, or empty."""
    return str(ctx.settings.get("ALERT_WEBHOOK_URL") or "")


def _schedule_webhook(ctx: JobContext, kind: str, payload: dict[str, Any]) -> None:
    """Schedule the POST as its own job, so it runs whatever becomes of this job's email.

    It is committed before the email is tried: by ctx.message_id, or with this job when there is no email.
    """
    if _webhook_url(ctx):
        jobs.schedule(ctx.session, kind, ctx.job.key, payload=payload)


def _send(ctx: JobContext, to: list[str], build) -> bool:
    """Email ``build(message_id)`` to ``to`` once (the same Message-ID in every attempt); False if sent before."""
    base_url = str(ctx.settings.get("BASE_URL") or "")
    message_id = ctx.message_id(lambda: new_message_id(base_url))
    message = build(message_id)
    return ctx.deliver(lambda: smtp.send(message, ctx.settings))


@jobs.handler("followup.alert")
def alert(ctx: JobContext) -> None:
    """Email the team (and an anonymous vote's article author) about one signal."""
    signal = ctx.session.get(Signal, ctx.payload.get("signal_id"))
    if signal is None:  # its case was deleted
        return
    case = ctx.session.get(Case, signal.case_id)
    _schedule_webhook(ctx, "followup.alert_webhook", {"signal_id": signal.id})
    f = facts(ctx.session, case, signal, ctx.settings)
    to = recipients(str(ctx.settings.get("TEAM_ADDRESS") or ""))
    if signal.customer_id is None and f.author_address:  # nobody to contact: the article's author hears of it
        to = list(dict.fromkeys([*to, f.author_address]))
    if not to:
        return  # no team address: the webhook (if any) is the alert
    _send(ctx, to, lambda message_id: build_email(f, event="alert", to=to, settings=ctx.settings,
                                                  message_id=message_id))
    _alerted(case)
    cases.record(ctx.session, case, "alert", note="Alert emailed to " + ", ".join(to) + ".",
                 message_id=ctx.job.message_id or "")


@jobs.handler("followup.alert_webhook")
def alert_webhook(ctx: JobContext) -> None:
    """POST one signal's alert to KB_ALERT_WEBHOOK_URL."""
    url = _webhook_url(ctx)
    signal = ctx.session.get(Signal, ctx.payload.get("signal_id"))
    if not url or signal is None:  # the setting was removed since, or the case deleted
        return
    case = ctx.session.get(Case, signal.case_id)
    payload = webhook_payload(facts(ctx.session, case, signal, ctx.settings), event="alert", settings=ctx.settings)
    ctx.deliver(lambda: webhook.post(url, payload))
    _alerted(case)
    cases.record(ctx.session, case, "alert", note="Alert posted to the webhook.")


def _alerted(case: Case) -> None:
    """Keep the time of the case's first alert (the report's "signal to alert")."""
    if case.alerted_at is None:
        case.alerted_at = utcnow()


def _last_opened(session: so.Session, case: Case):
    """When the case opened, or last reopened."""
    reopened = session.scalar(sa.select(sa.func.max(CaseEvent.created_at)).where(
        CaseEvent.case_id == case.id, CaseEvent.kind == "state", CaseEvent.to_state == "reopened"))
    return max(case.opened_at, reopened) if reopened is not None else case.opened_at


def due_for_escalation(session: so.Session, case: Case, scheduled_at) -> bool:
    """Whether a deadline scheduled at ``scheduled_at`` finds the case still unacknowledged, this opening."""
    if case.acknowledged_at is not None or case.state not in UNACKNOWLEDGED:
        return False
    opened = _last_opened(session, case)
    if scheduled_at < opened:  # the deadline of an earlier opening: the new one has its own
        return False
    return case.escalated_at is None or case.escalated_at < opened


def _latest_signal(session: so.Session, case: Case) -> Signal | None:
    """The case's newest signal, whose words an escalation repeats."""
    return session.scalar(sa.select(Signal).where(Signal.case_id == case.id)
                          .order_by(Signal.created_at.desc(), Signal.id.desc()).limit(1))


def escalation_recipients(session: so.Session, settings) -> list[str]:
    """KB_ESCALATION_ADDRESS, or else every active admin."""
    configured = recipients(str(settings.get("ESCALATION_ADDRESS") or ""))
    if configured:
        return configured
    return list(session.scalars(sa.select(Agent.email).where(Agent.role == "admin", Agent.active.is_(True))
                                .order_by(Agent.id)))


@jobs.handler("followup.escalate")
def escalate(ctx: JobContext) -> None:
    """At the acknowledgement deadline: escalate the case if nobody acknowledged it; else nothing."""
    case = ctx.session.get(Case, ctx.payload.get("case_id"))
    if case is None or not due_for_escalation(ctx.session, case, ctx.job.created_at):
        return
    _schedule_webhook(ctx, "followup.escalate_webhook", {"case_id": case.id})
    f = facts(ctx.session, case, _latest_signal(ctx.session, case), ctx.settings)
    to = escalation_recipients(ctx.session, ctx.settings)
    if to:
        _send(ctx, to, lambda message_id: build_email(f, event="escalation", to=to, settings=ctx.settings,
                                                      message_id=message_id))
    case.escalated_at = utcnow()
    where = ("emailed to " + ", ".join(to)) if to else "no address to email (no admin, no KB_ESCALATION_ADDRESS)"
    cases.record(ctx.session, case, "escalation", note=f"Not acknowledged in time: escalation {where}.",
                 message_id=ctx.job.message_id or "")


@jobs.handler("followup.escalate_webhook")
def escalate_webhook(ctx: JobContext) -> None:
    """POST a case's escalation to KB_ALERT_WEBHOOK_URL."""
    url = _webhook_url(ctx)
    case = ctx.session.get(Case, ctx.payload.get("case_id"))
    if not url or case is None:
        return
    f = facts(ctx.session, case, _latest_signal(ctx.session, case), ctx.settings)
    ctx.deliver(lambda: webhook.post(url, webhook_payload(f, event="escalation", settings=ctx.settings)))
    cases.record(ctx.session, case, "escalation", note="Escalation posted to the webhook.")
