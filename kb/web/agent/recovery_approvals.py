"""/agent/recovery/approvals: the offers that wait for approval, and the page an emailed link opens.

Thin views over kb.recovery.decisions. A link (approval_links) only opens a confirmation page; the
decision is a CSRF-protected POST in the approver's own session, so a mail scanner opening the link
decides nothing. Offers show customers' names and the message to them, so the pages are for those
who may read customers' words (support agents and admins), like the follow-ups; an agent who may not
decide a given offer (the one who made it, or support where admin approves) sees it read-only.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from kb import agents
from kb.db import get_session
from kb.errors import FieldError, NotFound, ValidationError
from kb.followup.queue import format_wait
from kb.recovery import approval_compose, approval_links, decisions, offers
from kb.recovery.models import RecoveryEntry
from kb.web.agent import bp
from kb.web.agent.auth import current_agent
from kb.web.agent.followups import PERMISSION

DONE = {"approved": "Approved: kb sends the message to the customer now.", "declined": "Declined."}
LINK_STATUS = {approval_links.InvalidApprovalLink: 400, approval_links.ExpiredApprovalLink: 410,
               approval_links.NotYourApprovalLink: 403}


@bp.context_processor
def _approvals_menu() -> dict:
    """The menu's approvals entry for those who may decide offers, with the count waiting (one COUNT, on use)."""
    return {"can_approve": agents.can(current_agent(), PERMISSION),
            "approval_count": lambda: decisions.pending_count(get_session())}


def _refuse(title: str, message: str, status: int, decided: decisions.Decided | None = None):
    """A page saying why nothing was decided, with the queue's link."""
    return render_template("agent/recovery_refused.html", title=title, message=message,
                           decided=decided, format_wait=format_wait), status


def _check(offer_id: int, action: str, token: str | None):
    """The offer if this agent may decide it now, else the refusal page (as a (body, status) pair)."""
    me = current_agent()
    if action not in decisions.ACTIONS:
        abort(404)
    if token is not None:
        try:
            approval_links.read_token(str(current_app.config["SECRET_KEY"]), token, offer_id=offer_id,
                                      action=action, agent_id=me.id)
        except ValidationError as exc:
            return None, _refuse("This link does not work", str(exc), LINK_STATUS.get(type(exc), 400))
    if not agents.can(me, PERMISSION):
        return None, _refuse("Not allowed", "Editors cannot approve or decline offers.", 403)
    try:
        entry = offers.get_offer(get_session(), offer_id)
    except NotFound:
        return None, _refuse("No such offer", "This offer is not on the ledger.", 404)
    done = decisions.decided(get_session(), offer_id)
    if done is not None:
        return None, _already(done)
    if not offers.may_decide(me, entry):
        return None, _not_yours(entry)
    return entry, None


def _already(done: decisions.Decided):
    """The page for an offer decided already (a replayed link, or a second approver)."""
    return _refuse("Already decided", f"Nothing changed: {done.who} {done.state} this offer on "
                   f"{done.at:%Y-%m-%d %H:%M} UTC.", 409, done)


def _not_yours(entry: RecoveryEntry):
    """The page for an agent who may not decide this offer."""
    if entry.agent_id == current_agent().id:
        return _refuse("Not allowed", "You made this offer: another approver must decide it.", 403)
    role = (entry.bounds or {}).get("approver_role") or "admin"
    return _refuse("Not allowed", f"Only an {role} approves this offer." if role == "admin"
                   else "Only an admin or a support agent approves this offer.", 403)


@bp.get("/recovery/approvals")
def recovery_approvals():
    """The offers waiting for approval, oldest first, with buttons for those who may decide them."""
    me = current_agent()
    if not agents.can(me, PERMISSION):
        abort(403, "Approvals show customers' names and messages: support agents and admins only.")
    rows = decisions.waiting(get_session())
    return render_template("agent/recovery_approvals.html", rows=rows, format_wait=format_wait,
                           may_decide={row.entry.id: offers.may_decide(me, row.entry) for row in rows})


# One rule for both methods: with two, werkzeug answers a POST whose id no column holds with 405, not 404.
@bp.route("/recovery/approvals/<int:offer_id>/<action>", methods=["GET", "POST"])
def recovery_approval(offer_id: int, action: str):
    """GET: the page an emailed link opens, the offer and one button (a GET never decides). POST: decide."""
    if request.method == "POST":
        return _decide(offer_id, action)
    entry, refusal = _check(offer_id, action, request.args.get("t", ""))
    if refusal is not None:
        return refusal
    facts = approval_compose.facts(get_session(), entry, current_app.config)
    return render_template("agent/recovery_confirm.html", f=facts, action=action, token=request.args.get("t", ""),
                           entry=entry)


def _decide(offer_id: int, action: str):
    """Approve or decline (CSRF-checked); from a link's page its token is checked again, from the queue none."""
    token = request.form.get("t")
    _entry, refusal = _check(offer_id, action, token or None)
    if refusal is not None:
        return refusal
    session = get_session()
    try:
        result = decisions.decide(session, offer_id, current_agent(), action, settings=current_app.config,
                                  note=request.form.get("note", ""))
    except offers.NotAllowed as exc:
        session.rollback()
        return _refuse("Not allowed", str(exc), 403)
    except FieldError as exc:
        session.rollback()
        return _refuse("Nothing decided", " ".join(exc.errors.values()), 422)
    session.commit()
    if not result.changed:  # another approver was first, between the check and the lock
        return _already(decisions.decided(session, offer_id))
    flash(f"Offer {offer_id}: {DONE[result.state]}", "success")
    return redirect(url_for("agent.recovery_approvals"), 303)
