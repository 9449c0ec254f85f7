"""What an approval request says: who offered what to whom, the bound it goes beyond, and the links.

One set of facts (``OfferFacts``) is written three ways: the approver's email, the team webhook's
JSON, and the offering agent's email about the decision. Agents read these, and kb's agent pages
are English only (README, Languages and translations), so the texts are English too; the sender's
name follows KB_SUPPORT_NAME like every email kb sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from email.message import EmailMessage
from typing import Any, Mapping

import sqlalchemy.orm as so

from kb.autoreply.compose import ALERT_TAG, new_email, support_sender
from kb.autoreply.outgoing import body_text, header_text
from kb.followup.customers import email_of
from kb.followup.models import Customer
from kb.i18n import default_language, gettext_for
from kb.models import Agent
from kb.recovery.models import GestureType, RecoveryEntry

SCOPES = {"per_incident": "per incident", "agent_week": "per agent per week",
          "customer_90d": "per customer per 90 days"}
SLACK_CHARS = 300  # of the reason in the webhook's one-line text


@dataclass(frozen=True)
class OfferFacts:
    """An offer waiting for approval, as its approvers must see it."""

    offer_id: int
    case_id: int | None
    agent_name: str
    agent_email: str
    gesture: str
    amount: str  # "25.00 EUR", "15.00 %", or "" for an apology
    value: str  # the bare amount, "25.00"
    currency: str
    customer: str  # "Ann Lee <ann@example.com>", or a name, or ""
    reason: str
    message: str
    exceeded: list[str]  # one sentence per bound gone beyond
    offered_at: datetime
    case_url: str
    queue_url: str


def money(amount: Decimal, currency: str, kind: str) -> str:
    """An amount as agents read it: "25.00 EUR", "15.00 %", or "" for an apology."""
    if kind == "apology":
        return ""
    return f"{amount} %" if kind == "discount_percent" else f"{amount} {currency}".strip()


def _limit_text(value: Any, count: bool, unit: str) -> str:
    """"3 offers" or "50.00 EUR"."""
    return f"{value} offer{'' if value == 1 else 's'}" if count else f"{value} {unit}".strip()


def exceeded_lines(entry: RecoveryEntry, gesture: GestureType | None) -> list[str]:
    """Each bound the offer went beyond, with its limit and by how much (from the ledger's copy)."""
    unit = "%" if gesture is not None and gesture.kind == "discount_percent" else entry.currency
    lines = []
    for check in (entry.bounds or {}).get("checked", []):
        if not check.get("exceeded"):
            continue
        which = f"{SCOPES.get(check.get('scope'), check.get('scope'))}, " + (
            f"{gesture.name if gesture else 'this gesture'} only" if check.get("gesture_type_id") else "all gestures")
        overs = []
        if check.get("max_count") is not None and check.get("spent_count", 0) + 1 > check["max_count"]:
            overs.append(f"at most {_limit_text(check['max_count'], True, '')}, "
                         f"this is offer {check.get('spent_count', 0) + 1}")
        if check.get("max_amount") is not None:
            total = Decimal(check.get("spent_amount") or "0") + Decimal(entry.amount)
            over = total - Decimal(check["max_amount"])
            if over > 0:
                overs.append(f"at most {_limit_text(check['max_amount'], False, unit)}, "
                             f"{_limit_text(total, False, unit)} with this offer: "
                             f"{_limit_text(over, False, unit)} over")
        lines.append(f"{which}: " + "; ".join(overs or ["exceeded"]))
    return lines


def facts(session: so.Session, entry: RecoveryEntry, settings: Mapping[str, Any]) -> OfferFacts:
    """The facts of one offer."""
    base_url = str(settings.get("BASE_URL") or "").rstrip("/")
    agent = session.get(Agent, entry.agent_id)
    gesture = session.get(GestureType, entry.gesture_type_id)
    customer = session.get(Customer, entry.customer_id) if entry.customer_id else None
    address = email_of(session, customer)
    name = customer.name if customer else ""
    who = f"{name} <{address}>" if name and address else (name or address)
    return OfferFacts(
        offer_id=entry.id, case_id=entry.case_id, agent_name=agent.name if agent else "",
        agent_email=agent.email if agent else "", gesture=gesture.name if gesture else "",
        amount=money(entry.amount, entry.currency, gesture.kind if gesture else ""), value=str(entry.amount),
        currency=entry.currency, customer=who, reason=entry.reason, message=entry.message,
        exceeded=exceeded_lines(entry, gesture), offered_at=entry.created_at,
        case_url=f"{base_url}/agent/followups/{entry.case_id}" if entry.case_id else "",
        queue_url=f"{base_url}/agent/recovery/approvals")


def what(f: OfferFacts) -> str:
    """"Ann offered Voucher (25.00 EUR) to Bob <bob@example.com>"."""
    gesture = f"{f.gesture} ({f.amount})" if f.amount else f.gesture
    return f"{f.agent_name} offered {gesture} to {f.customer or 'a customer'}"


def _subject(f: OfferFacts, waited: int | None) -> str:
    """The subject line, without the tag."""
    start = f"Still waiting after {waited} min" if waited is not None else "Approval needed"
    return f"{start}: {what(f)}"


def _body(f: OfferFacts, links: Mapping[str, str], waited: int | None) -> str:
    """The email's text: the facts, the bounds gone beyond, the links."""
    intro = ("This offer is above a bound and needs an approver." if waited is None else
             f"This offer has waited {waited} minutes for an approver: it now goes to every admin.")
    lines = [intro, "", f"Who offered: {f.agent_name} <{f.agent_email}>", f"Gesture: {f.gesture}"]
    if f.amount:
        lines.append(f"Amount: {f.amount}")
    lines += [f"Customer: {f.customer or '(unknown)'}", f"Reason: {f.reason or '(none)'}",
              f"Offered: {f.offered_at:%Y-%m-%d %H:%M} UTC", "", "Above the bounds:"]
    lines += [f"- {line}" for line in f.exceeded] or ["- (no bound recorded)"]
    lines += ["", "Message to the customer:", "", f.message, "",
              f"Approve: {links['approve']}", f"Decline: {links['decline']}", "",
              "Each link opens a page where you confirm with one click.",
              f"All offers waiting: {f.queue_url}"]
    if f.case_url:
        lines.append(f"The case: {f.case_url}")
    return body_text("\n".join(lines)) + "\n"


def _email(settings: Mapping[str, Any], to: str, subject: str, body: str, message_id: str) -> EmailMessage:
    """An automatic email to one agent."""
    _ = gettext_for(default_language(settings), settings)
    message = new_email(sender=support_sender(settings, _), to=to, subject=ALERT_TAG + header_text(subject, 300),
                        message_id=message_id)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(body)
    return message


def approval_email(f: OfferFacts, *, to: str, links: Mapping[str, str], waited: int | None,
                   settings: Mapping[str, Any], message_id: str) -> EmailMessage:
    """The approver's email (``waited``: minutes, for an escalation)."""
    return _email(settings, to, _subject(f, waited), _body(f, links, waited), message_id)


def decision_email(f: OfferFacts, *, to: str, state: str, decider: str, note: str,
                   settings: Mapping[str, Any], message_id: str) -> EmailMessage:
    """The offering agent's email: their offer was approved (and is being sent) or declined."""
    outcome = "approved: kb sends your message to the customer now" if state == "approved" else state
    lines = [f"{decider} {state} your offer of {f.gesture}{f' ({f.amount})' if f.amount else ''} "
             f"to {f.customer or 'the customer'}.", "", f"The offer is {outcome}."]
    if note:
        lines += ["", f"Note: {note}"]
    if f.case_url:
        lines += ["", f"The case: {f.case_url}"]
    subject = f"Offer {state}: {f.gesture}{f' ({f.amount})' if f.amount else ''}"
    return _email(settings, to, subject, body_text("\n".join(lines)) + "\n", message_id)


def _slack_escape(text: str) -> str:
    """Slack's three control characters, so names and reasons cannot make links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_payload(f: OfferFacts, *, links: Mapping[str, str], waited: int | None) -> dict[str, Any]:
    """The JSON body: ``text`` for Slack (and look-alikes), and the same facts as fields."""
    reason = f.reason if len(f.reason) <= SLACK_CHARS else f.reason[:SLACK_CHARS].rstrip() + "…"
    text = ALERT_TAG + _slack_escape(_subject(f, waited))
    text += "".join("\n• " + _slack_escape(line) for line in f.exceeded)
    if reason:
        text += "\n> " + _slack_escape(reason).replace("\n", "\n> ")
    text += f"\n<{links['approve']}|Approve> · <{links['decline']}|Decline> · <{f.queue_url}|All waiting>"
    return {
        "text": text, "event": "approval_escalation" if waited is not None else "approval",
        "offer_id": f.offer_id, "case_id": f.case_id, "agent": {"name": f.agent_name, "email": f.agent_email},
        "customer": f.customer, "gesture": f.gesture, "amount": f.value, "currency": f.currency,
        "amount_text": f.amount, "exceeded": f.exceeded, "reason": f.reason, "waited_minutes": waited,
        "offered_at": f.offered_at.isoformat(), "approve_url": links["approve"], "decline_url": links["decline"],
        "queue_url": f.queue_url, "case_url": f.case_url,
    }
