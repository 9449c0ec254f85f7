"""What the case page's "Make it right" section shows: the gestures, the pre-filled message, the case's offers.

The message is pre-filled from the gesture type's template in the customer's language (the case's,
when kb writes in it: en, zh, nb), else from kb's own words for that kind of gesture, translated.
The same template goes into the page for the script that fills the message as the agent chooses,
so with or without JavaScript the agent starts from the same text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so
from babel.numbers import format_decimal

from kb.followup.models import Case, Customer
from kb.i18n import gettext_for, language_for
from kb.models import Agent, parse_id
from kb.recovery import offering
from kb.recovery.models import MONEY_KINDS, GestureType, RecoveryEntry
from kb.recovery.wording import fill, template_for

SCOPE_WORDS = {"per_incident": "per-incident", "agent_week": "agent's weekly", "customer_90d": "customer's 90-day"}
OPEN = ("approved_auto", "pending", "approved")  # states in which an offer may still be cancelled


@dataclass(frozen=True)
class Choice:
    """A gesture type the agent may offer, with its template in the customer's language."""

    gesture: GestureType
    template: str
    unit: str  # what follows the amount: the currency, "%" for a discount, empty when it has none

    @property
    def has_amount(self) -> bool:
        """Whether the agent gives an amount (not for an apology)."""
        return self.gesture.kind != "apology"


@dataclass(frozen=True)
class OfferRow:
    """One offer of the case as the page lists it."""

    entry: RecoveryEntry
    state: str
    gesture: str
    amount: str
    agent: str
    approver: str  # who decided, or the role that may while it waits
    waiting_for: str  # the bounds it is above, while it waits
    agent_id: int

    def may_cancel(self, agent: Agent) -> bool:
        """Whether ``agent`` may withdraw it now: its maker or an admin, while it is not sent or ended."""
        return self.state in OPEN and agent.active and (agent.id == self.agent_id or agent.role == "admin")


@dataclass
class Panel:
    """The section's data: choices, the form's values, why kb will not offer (if so), and the offers."""

    lang: str
    choices: list[Choice]
    values: dict[str, str]
    refusal: str
    offers: list[OfferRow] = field(default_factory=list)
    fill_values: dict[str, str] = field(default_factory=dict)
    prepared: bool = False  # the message is the template filled, not (yet) the agent's own text


def unit_of(gesture: GestureType) -> str:
    """What follows an amount of this gesture: its currency, "%" for a discount, else nothing."""
    if gesture.kind == "discount_percent":
        return "%"
    return gesture.currency if gesture.kind in MONEY_KINDS + ("other",) else ""


def default_template(gesture: GestureType, unit: str, named: bool, _) -> str:
    """kb's own words for a gesture type without a template, in the language of ``_``."""
    greeting = _("Hello %(name)s,", name="{name}") if named else _("Hello,")
    if gesture.kind == "apology":
        body = _("We are sorry about what happened, and thank you for telling us. "
                 "We are doing what we can so that it does not happen again.")
    elif unit:
        body = _("We are sorry about what happened. To make it right, we would like to offer you: "
                 "{gesture}, {amount} {currency}.")
    else:
        body = _("We are sorry about what happened. To make it right, we would like to offer you: {gesture}.")
    parts = [greeting, body]
    if gesture.needs_reference:
        parts.append(_("Your code or reference: {reference}"))
    return "\n\n".join(parts)


def amount_text(amount: str, lang: str) -> str:
    """The amount as the customer reads it in their language (as typed when it is no number)."""
    try:
        value = Decimal(str(amount).strip())
        if not value.is_finite():
            return str(amount).strip()
        pattern = "#,##0" if value == value.to_integral_value() else "#,##0.00"
        return format_decimal(value, format=pattern, locale=lang)
    except (InvalidOperation, ValueError, TypeError):
        return str(amount).strip()


def choices(session: so.Session, lang: str, named: bool, settings: Mapping[str, Any]) -> list[Choice]:
    """The active gesture types, by name, each with its template in ``lang``."""
    _ = gettext_for(lang, settings)
    found = []
    for gesture in session.scalars(sa.select(GestureType).where(GestureType.active.is_(True))
                                   .order_by(GestureType.name, GestureType.id)):
        unit = unit_of(gesture)
        template = template_for(gesture.templates, gesture.template, lang) or default_template(gesture, unit, named, _)
        found.append(Choice(gesture, template, unit))
    return found


def panel(session: so.Session, case: Case, agent: Agent, settings: Mapping[str, Any], form: Mapping[str, str],
          *, prepare: bool) -> Panel:
    """The section for ``agent``, keeping what ``form`` holds; ``prepare`` fills the message from the template."""
    lang = language_for(case.lang, settings)
    customer = session.get(Customer, case.customer_id) if case.customer_id else None
    name = customer.name.strip() if customer and customer.name else ""
    found = choices(session, lang, bool(name), settings)
    values = {key: str(form.get(key) or "") for key in ("gesture", "amount", "reference", "reason", "message")}
    values["reason"] = values["reason"] or (case.root_cause or "")
    chosen = next((c for c in found if c.gesture.id == parse_id(values["gesture"])), None)
    fill_values = {"name": name, "agent": agent.name or ""}
    if chosen is not None:
        if not chosen.has_amount:
            values["amount"] = ""
        fill_values.update(amount=amount_text(values["amount"], lang), currency=chosen.unit,
                           reference=values["reference"].strip(), gesture=chosen.gesture.name)
        if prepare:
            values["message"] = fill(chosen.template, fill_values)
    return Panel(lang, found, values, offering.refusal(session, case), case_offers(session, case),
                 fill_values, prepared=prepare and chosen is not None)


def waiting_for(bounds: Mapping[str, Any] | None, currency: str) -> str:
    """The bounds a pending offer is above, as one phrase: "the per-incident bound of 25.00 EUR"."""
    phrases = []
    for check in (bounds or {}).get("checked") or []:
        if not isinstance(check, dict) or not check.get("exceeded"):
            continue
        scope = SCOPE_WORDS.get(check.get("scope"), str(check.get("scope")))
        count, spent = check.get("max_count"), int(check.get("spent_count") or 0)
        if count is not None and spent + 1 > int(count):
            limit = f"{count} offer" + ("" if count == 1 else "s")
        else:
            limit = f"{check.get('max_amount')} {currency}".strip()
        phrases.append(f"the {scope} bound of {limit}")
    return ", ".join(phrases)


def case_offers(session: so.Session, case: Case) -> list[OfferRow]:
    """The case's offers, newest first, each with its state now (one query for the ledger, one for names)."""
    rows = list(session.scalars(sa.select(RecoveryEntry).where(RecoveryEntry.case_id == case.id)
                                .order_by(RecoveryEntry.id)))
    people = {row.agent_id for row in rows} | {row.approver_id for row in rows if row.approver_id}
    names = dict(session.execute(sa.select(Agent.id, Agent.name).where(Agent.id.in_(people))).all()) if people else {}
    gestures = {g.id: g for g in session.scalars(sa.select(GestureType).where(
        GestureType.id.in_({row.gesture_type_id for row in rows})))} if rows else {}
    later_rows: dict[int, list[RecoveryEntry]] = {}
    for row in rows:
        if row.offer_id is not None:
            later_rows.setdefault(row.offer_id, []).append(row)
    found = []
    for entry in (row for row in rows if row.kind == "offer"):
        later = later_rows.get(entry.id, [])
        state = next((row.state for row in reversed(later) if row.kind != "correction"), entry.state)
        amount = next((row.amount for row in reversed(later) if row.kind == "correction"), entry.amount)
        decided = next((row for row in later if row.kind in ("approval", "decline")), None)
        gesture = gestures.get(entry.gesture_type_id)
        unit = unit_of(gesture) if gesture else entry.currency
        approver = (names.get(decided.approver_id, "an agent who left") if decided and decided.approver_id
                    else (entry.bounds or {}).get("approver_role", ""))
        found.append(OfferRow(entry, state, gesture.name if gesture else "gesture",
                              f"{amount} {unit}".strip() if gesture is None or gesture.kind != "apology" else "",
                              names.get(entry.agent_id, ""), approver,
                              waiting_for(entry.bounds, unit) if state == "pending" else "", entry.agent_id))
    return found[::-1]
