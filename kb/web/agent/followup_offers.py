"""The case page's "Make it right" actions: prepare a gesture's message, offer it, cancel an offer.

Thin views over kb.recovery.offering (support agents and admins, as every case page). Preparing the
message is a POST of the same form that re-renders it (so neither the CSRF token nor the message,
which names the customer, ends up in an address or a server log); the case page itself also takes
?gesture=<id>&amount=...&reference=... to open with a prepared message.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, request, url_for

from kb.db import get_session
from kb.errors import FieldError, NotFound, ValidationError
from kb.models import parse_id
from kb.recovery import offer_form, offering, offers
from kb.recovery.models import GestureType
from kb.web.agent import bp
from kb.web.agent.auth import current_agent
from kb.web.agent.followups import case_or_404, followups_required, form_nonce, render_case

FIELDS = ("gesture", "amount", "reference", "reason", "message")


def _back(case_id: int):
    """Back to the case's offers (303: a reload does not submit again)."""
    return redirect(url_for("agent.followup_case", case_id=case_id) + "#offers", 303)


def _gesture(value: str) -> GestureType:
    """The active gesture type the form names, or FieldError."""
    gesture_id = parse_id(value)
    gesture = get_session().scalar(sa.select(GestureType).where(
        GestureType.id == gesture_id, GestureType.active.is_(True))) if gesture_id else None
    if gesture is None:
        raise FieldError({"gesture_type": "Choose a gesture."})
    return gesture


def _outcome(made: offering.Made) -> tuple[str, str]:
    """What the page says about the offer just made: sent, waiting (for what, and whom), or made before."""
    if not made.created:
        return f"This offer was made already: it is {made.state.replace('_', ' ')}.", "info"
    if made.state == "approved_auto":
        return "Sent to the customer: within every bound, kb emails it now.", "success"
    role = (made.entry.bounds or {}).get("approver_role") or "admin"
    above = offer_form.waiting_for(made.entry.bounds, offer_form.unit_of(get_session().get(
        GestureType, made.entry.gesture_type_id)))
    return f"Waiting for approval: above {above or 'a bound'} (approver: {role}).", "success"


@bp.post("/followups/<int:case_id>/offer")
@followups_required
def followup_offer(case_id: int):
    """Offer a gesture (or, with action=prepare, fill its message from the template and show the form again)."""
    session, case = get_session(), case_or_404(case_id)
    form = {name: request.form.get(name, "") for name in FIELDS}
    if request.form.get("action") == "prepare":
        return render_case(case, offer=form, prepare=True)
    try:
        made = offering.make_offer(session, case=case, agent=current_agent(), gesture_type=_gesture(form["gesture"]),
                                   amount=form["amount"], reason=form["reason"], message=form["message"],
                                   reference=form["reference"], settings=current_app.config, nonce=form_nonce())
        session.commit()
    except FieldError as exc:
        session.rollback()
        errors = {"offer_" + ("gesture" if key == "gesture_type" else key): text for key, text in exc.errors.items()}
        return render_case(case, errors=errors, offer=form, status=422)
    except ValidationError as exc:
        session.rollback()
        flash(str(exc), "error")
        return _back(case_id)
    except offers.NotAllowed as exc:
        session.rollback()
        abort(403, str(exc))
    flash(*_outcome(made))
    return _back(case_id)


@bp.post("/followups/<int:case_id>/offers/<int:offer_id>/cancel")
@followups_required
def followup_offer_cancel(case_id: int, offer_id: int):
    """Withdraw an offer not yet sent: the agent who made it, or an admin."""
    session, case = get_session(), case_or_404(case_id)
    try:
        result = offering.cancel_offer(session, case, offer_id, current_agent(),
                                       note=request.form.get("note", "").strip()[:200])
        session.commit()
    except NotFound:
        session.rollback()
        abort(404, "This case has no such offer.")
    except offers.NotAllowed as exc:
        session.rollback()
        abort(403, str(exc))
    flash("Cancelled: nothing will be sent." if result.changed else result.message,
          "success" if result.changed else "info")
    return _back(case_id)
