"""The catalog admins keep: gesture types and bounds, created, edited and listed without a request.

Each ``clean_*`` function reads a form's text values and raises ``FieldError`` with a message per
field, so a page can show every problem where it is. Editing a bound in place is safe: every offer
keeps a copy of the bounds that applied (``RecoveryEntry.bounds``), so no past offer changes.
An admin who edits a sample gesture type or bound (`kb sample load`) makes it their own: it is no
longer marked sample, so `kb sample remove` keeps it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so
from babel.numbers import list_currencies

from kb.autoreply.storable import storable_text
from kb.errors import FieldError, NotFound
from kb.recovery.models import (APPROVER_ROLES, GESTURE_KINDS, MONEY_KINDS, SCOPES, Bound, GestureType,
                                 RecoveryEntry)
from kb.recovery.offers import MAX_AMOUNT
from kb.recovery.wording import PLACEHOLDERS

LANGS = ("zh", "nb")  # templates besides the default (English, or the shop's own language)
MAX_NAME, MAX_TEMPLATE, MAX_COUNT = 120, 5000, 1_000_000
_BRACED = re.compile(r"\{([^{}]*)\}")
_AMOUNT = re.compile(r"[0-9]{1,10}(\.[0-9]{1,2})?")
_COUNT = re.compile(r"[0-9]{1,7}")
_CURRENCY = re.compile(r"[A-Z]{3}")
KIND_LABELS = {"apology": "Apology only", "discount_percent": "Discount (%)", "fixed_credit": "Fixed credit",
               "free_shipping": "Free shipping", "shipping_refund": "Refund of shipping", "gift": "Gift",
               "other": "Other"}
SCOPE_LABELS = {"per_incident": "Per incident (case)", "agent_week": "Per agent per week",
                "customer_90d": "Per customer per 90 days"}

SCOPE_ORDER = {scope: n for n, scope in enumerate(SCOPES)}


@dataclass(frozen=True)
class BoundRow:
    """A bound with the name of its gesture type ("" when it is overall), for a list."""

    bound: Bound
    gesture: GestureType | None


def unknown_placeholders(template: str) -> list[str]:
    """The ``{...}`` in the template that are not placeholders kb fills, in order, each once."""
    found = [match.group(0) for match in _BRACED.finditer(template) if match.group(1) not in PLACEHOLDERS]
    return list(dict.fromkeys(found))


def _flag(value: Any) -> bool:
    """A checkbox's value: ticked when sent with anything but an explicit no."""
    return str(value or "").strip().lower() not in ("", "0", "false", "no", "off")


def _one_line(value: Any) -> str:
    """Text on one line, whitespace collapsed, storable by every database."""
    return " ".join(storable_text(value or "").split())


def _template(value: Any, field: str, errors: dict[str, str], *, required: bool) -> str:
    """A template's text (NUL and lone surrogates replaced, line ends unified), checked into ``errors``."""
    text = storable_text(value or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text and required:
        errors[field] = "Write the message the customer gets."
    elif len(text) > MAX_TEMPLATE:
        errors[field] = f"Keep the message under {MAX_TEMPLATE} characters (it has {len(text)})."
    elif unknown := unknown_placeholders(text):
        known = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
        errors[field] = f"Unknown placeholder {', '.join(unknown[:3])[:200]}: use only {known}."
    return text


def _currency(kind: str, value: Any, errors: dict[str, str]) -> str:
    """The currency a kind of gesture needs (ISO 4217, upper-cased), or "" for a kind without money."""
    code = str(value or "").strip().upper()
    if kind in ("apology", "discount_percent"):
        if code:
            errors["currency"] = ("An apology has no amount: leave the currency empty." if kind == "apology" else
                                  "A discount is a percentage: leave the currency empty.")
        return ""
    if not code and kind in MONEY_KINDS:
        errors["currency"] = "Give the currency of the amount, such as EUR or NOK."
    elif code and (not _CURRENCY.fullmatch(code) or code not in list_currencies()):
        errors["currency"] = "Write an ISO 4217 currency code of three letters, such as EUR, NOK or USD."
    return code


def clean_gesture_type(session: so.Session, values: Mapping[str, Any],
                       current: GestureType | None = None) -> dict[str, Any]:
    """The gesture type's fields from a form's values; FieldError naming every field to fix."""
    errors: dict[str, str] = {}
    name = _one_line(values.get("name"))
    if not name:
        errors["name"] = "Give the gesture a name, such as “Store credit”."
    elif len(name) > MAX_NAME:
        errors["name"] = f"Keep the name under {MAX_NAME} characters."
    elif any(unicodedata.category(char) == "Cc" for char in name):
        errors["name"] = "Leave control characters out of the name."
    elif _name_taken(session, name, current):
        errors["name"] = "A gesture type has this name already: choose another."
    kind = str(values.get("kind") or "")
    if kind not in GESTURE_KINDS:
        errors["kind"] = "Choose a kind from the list."
    currency = _currency(kind, values.get("currency"), errors) if kind in GESTURE_KINDS else ""
    if current is not None and (kind, currency) != (current.kind, current.currency) and _offered(session, current):
        errors["kind"] = ("Offers were made with this gesture, so its kind and currency stay as they are "
                          "(the ledger and the reports count them so): add a new gesture type instead.")
    template = _template(values.get("template"), "template", errors, required=True)
    templates = {lang: text for lang in LANGS
                 if (text := _template(values.get(f"template_{lang}"), f"template_{lang}", errors, required=False))}
    if errors:
        raise FieldError(errors)
    return {"name": name, "kind": kind, "currency": currency, "template": template, "templates": templates,
            "needs_reference": _flag(values.get("needs_reference")), "active": _flag(values.get("active"))}


def _name_taken(session: so.Session, name: str, current: GestureType | None) -> bool:
    """Whether another gesture type has this name (ignoring case: "Apology" and "apology" are one)."""
    # Compared in Python: SQLite's lower() folds ASCII only. A shop has a handful of gesture types.
    others = session.execute(sa.select(GestureType.id, GestureType.name))
    return any(name.casefold() == other.casefold() for gesture_id, other in others
               if current is None or gesture_id != current.id)


def _flush_named(session: so.Session) -> None:
    """Flush a new or renamed gesture type; FieldError if another took the name meanwhile."""
    try:
        with session.begin_nested():
            session.flush()
    except sa.exc.IntegrityError:
        raise FieldError({"name": "A gesture type has this name already: choose another."}) from None


def _offered(session: so.Session, gesture: GestureType) -> bool:
    """Whether the ledger holds any row of this gesture type."""
    return session.scalar(sa.select(RecoveryEntry.id).where(RecoveryEntry.gesture_type_id == gesture.id).limit(1)) \
        is not None


def create_gesture_type(session: so.Session, values: Mapping[str, Any]) -> GestureType:
    """Add a gesture type from a form's values; the caller commits."""
    gesture = GestureType(**clean_gesture_type(session, values))
    session.add(gesture)
    _flush_named(session)
    return gesture


def update_gesture_type(session: so.Session, gesture: GestureType, values: Mapping[str, Any]) -> GestureType:
    """Change a gesture type (offers keep what they were); the caller commits."""
    for field, value in clean_gesture_type(session, values, gesture).items():
        setattr(gesture, field, value)
    gesture.sample = False  # edited by an admin: theirs now
    _flush_named(session)
    return gesture


def _limit(value: Any, pattern: re.Pattern, field: str, example: str, errors: dict[str, str]) -> str | None:
    """A limit's digits, or None when left empty; a message in ``errors`` when it is not a plain number."""
    text = str(value or "").strip()
    if not text:
        return None
    if text.startswith("-"):
        errors[field] = "Write a number of 0 or more: a limit cannot be negative."
    elif not pattern.fullmatch(text):
        errors[field] = f"Write a plain number, such as {example}."
    return text


def clean_bound(session: so.Session, values: Mapping[str, Any], current: Bound | None = None) -> dict[str, Any]:
    """The bound's fields from a form's values; FieldError naming every field to fix."""
    errors: dict[str, str] = {}
    scope = str(values.get("scope") or "")
    if scope not in SCOPES:
        errors["scope"] = "Choose what the bound counts: per incident, per agent per week or per customer."
    gesture = _bound_gesture(session, values.get("gesture_type"), errors)
    amount_text = _limit(values.get("max_amount"), _AMOUNT, "max_amount", "25 or 12.50", errors)
    count_text = _limit(values.get("max_count"), _COUNT, "max_count", "2", errors)
    amount = Decimal(amount_text) if amount_text and "max_amount" not in errors else None
    count = int(count_text) if count_text and "max_count" not in errors else None
    if amount is not None and amount > MAX_AMOUNT:
        errors["max_amount"] = f"Write an amount up to {MAX_AMOUNT}."
    elif amount is not None and gesture is not None and gesture.kind == "apology":
        errors["max_amount"] = "An apology has no amount: set a maximum count instead."
    elif amount is not None and gesture is not None and gesture.kind == "discount_percent" and amount > 100:
        errors["max_amount"] = "A discount's bound is a percentage: write 100 or less."
    if count is not None and count > MAX_COUNT:
        errors["max_count"] = f"Write a count up to {MAX_COUNT}."
    if amount_text is None and count_text is None:
        errors["max_amount"] = "Set a maximum amount, a maximum count, or both: a bound without either limits nothing."
    role = str(values.get("approver_role") or "")
    if role not in APPROVER_ROLES:
        errors["approver_role"] = "Choose who may approve above the bound: support or admin."
    active = current.active if current is not None else True
    if not errors and active and _duplicate(session, scope, gesture, current):
        errors["form"] = "An active bound of this scope on this gesture exists already: edit that one instead."
    if errors:
        raise FieldError(errors)
    return {"scope": scope, "gesture_type_id": gesture.id if gesture else None, "max_amount": amount,
            "max_count": count, "approver_role": role}


def _bound_gesture(session: so.Session, value: Any, errors: dict[str, str]) -> GestureType | None:
    """The gesture type a bound is on, None for an overall bound; a message in ``errors`` if unknown."""
    text = str(value or "").strip()
    if not text:
        return None
    gesture = session.get(GestureType, int(text)) if text.isascii() and text.isdigit() and len(text) < 10 else None
    if gesture is None:
        errors["gesture_type"] = "Choose a gesture type from the list, or “All gestures”."
    return gesture


def _duplicate(session: so.Session, scope: str, gesture: GestureType | None, current: Bound | None) -> bool:
    """Whether another active bound has this scope on this gesture type (or overall)."""
    query = sa.select(Bound.id).where(Bound.active.is_(True), Bound.scope == scope, Bound.gesture_type_id.is_(None)
                                      if gesture is None else Bound.gesture_type_id == gesture.id)
    if current is not None:
        query = query.where(Bound.id != current.id)
    return session.scalar(query.limit(1)) is not None


def create_bound(session: so.Session, values: Mapping[str, Any]) -> Bound:
    """Add an active bound from a form's values; the caller commits."""
    bound = Bound(**clean_bound(session, values), active=True)
    session.add(bound)
    session.flush()
    return bound


def update_bound(session: so.Session, bound: Bound, values: Mapping[str, Any]) -> Bound:
    """Change a bound in place: offers made under it keep their copy; the caller commits."""
    for field, value in clean_bound(session, values, bound).items():
        setattr(bound, field, value)
    bound.sample = False  # edited by an admin: theirs now
    session.flush()
    return bound


def set_bound_active(session: so.Session, bound: Bound, active: bool) -> Bound:
    """Deactivate a bound (offers no longer meet it) or reactivate it; the caller commits."""
    gesture = session.get(GestureType, bound.gesture_type_id) if bound.gesture_type_id else None
    if active and not bound.active and _duplicate(session, bound.scope, gesture, bound):
        raise FieldError({"form": "An active bound of this scope on this gesture exists already: "
                                  "deactivate that one first."})
    bound.active = active
    session.flush()
    return bound


def get_gesture_type(session: so.Session, gesture_id: int) -> GestureType:
    """The gesture type, or NotFound."""
    gesture = session.get(GestureType, gesture_id)
    if gesture is None:
        raise NotFound("There is no gesture type with this number.")
    return gesture


def get_bound(session: so.Session, bound_id: int) -> Bound:
    """The bound, or NotFound."""
    bound = session.get(Bound, bound_id)
    if bound is None:
        raise NotFound("There is no bound with this number.")
    return bound


def list_gesture_types(session: so.Session) -> list[GestureType]:
    """Every gesture type: active ones first, then by name."""
    return list(session.scalars(sa.select(GestureType).order_by(GestureType.active.desc(), GestureType.name)))


def list_bounds(session: so.Session) -> list[BoundRow]:
    """Every bound with its gesture type: active first, then by scope, overall before per gesture."""
    rows = session.execute(sa.select(Bound, GestureType).outerjoin(GestureType, Bound.gesture_type_id == GestureType.id)
                           .order_by(Bound.active.desc(), sa.case(SCOPE_ORDER, value=Bound.scope),
                                     Bound.gesture_type_id.is_not(None),
                                     GestureType.name, Bound.id))
    return [BoundRow(bound, gesture) for bound, gesture in rows]
