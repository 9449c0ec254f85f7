"""The case page's actions (POST forms with CSRF): acknowledge, assign, note, message, resolve, reopen.

Each is a thin view over kb.followup. State changes are compare-and-set in kb.followup.cases, so
a double submit or two agents at once make one change; the second is told who was first.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app, flash, redirect, request, url_for

from kb.db import get_session
from kb.errors import FieldError, ValidationError
from kb.followup import cases, messages, queue
from kb.followup.models import CaseEvent
from kb.models import parse_id, utcnow
from kb.web.agent import bp
from kb.web.agent.auth import current_agent
from kb.web.agent.followups import case_or_404, followups_required, form_nonce, render_case

DOUBLE_SUBMIT = timedelta(minutes=2)  # the same note by the same agent within this is one submit
DONE = {"acknowledge": "Acknowledged.", "resolve": "Resolved.", "reopen": "Reopened."}


def _back(case_id: int):
    """Back to the case page (303: the browser GETs it, so a reload does not submit again)."""
    return redirect(url_for("agent.followup_case", case_id=case_id), 303)


def _note() -> str:
    """The optional note sent with a state change."""
    return request.form.get("note", "").strip()


def _change(case_id: int, action: str, **kwargs):
    """Apply one state change; if someone was first, say who rather than fail."""
    session, case = get_session(), case_or_404(case_id)
    changed = cases.change_state(session, case, action, agent_id=current_agent().id, note=_note(), **kwargs)
    session.commit()
    if changed:
        flash(DONE[action], "success")
    else:
        state, who = queue.last_change_by(session, case)
        flash(f"Already {state} by {who}." if who else f"Nothing to do: the case is {case.state}.", "info")
    return _back(case_id)


@bp.post("/followups/<int:case_id>/acknowledge")
@followups_required
def followup_acknowledge(case_id: int):
    """Acknowledge the case: a person has seen it (stops the escalation clock)."""
    return _change(case_id, "acknowledge")


@bp.post("/followups/<int:case_id>/reopen")
@followups_required
def followup_reopen(case_id: int):
    """Reopen a resolved case."""
    try:
        return _change(case_id, "reopen", settings=current_app.config)
    except ValidationError as exc:
        get_session().rollback()
        flash(str(exc), "error")
        return _back(case_id)


@bp.post("/followups/<int:case_id>/resolve")
@followups_required
def followup_resolve(case_id: int):
    """Resolve the case with its root cause (required: the team learns why customers were unhappy)."""
    try:
        return _change(case_id, "resolve", settings=current_app.config,
                       root_cause=request.form.get("root_cause", ""))
    except FieldError as exc:
        get_session().rollback()
        return render_case(case_or_404(case_id), errors=exc.errors, values={"resolve_note": _note()}, status=422)


@bp.post("/followups/<int:case_id>/assign")
@followups_required
def followup_assign(case_id: int):
    """Give the case to me, to another active agent, or to nobody."""
    session, case, me = get_session(), case_or_404(case_id), current_agent()
    choice = request.form.get("assignee", "")
    assignee = me.id if choice == "me" else parse_id(choice)
    try:
        cases.assign(session, case, assignee, agent_id=me.id)
        session.commit()
    except ValidationError as exc:
        session.rollback()
        flash(str(exc), "error")
    else:
        flash("Assigned." if assignee else "Unassigned.", "success")
    return _back(case_id)


@bp.post("/followups/<int:case_id>/note")
@followups_required
def followup_note(case_id: int):
    """Add a note: a phone call and its outcome, a chat, a visit..."""
    session, case, me = get_session(), case_or_404(case_id), current_agent()
    text, channel = request.form.get("text", "").strip(), request.form.get("channel", "")
    outcome = request.form.get("outcome", "").strip()
    if _same_note(case.id, me.id, text):
        flash("This note is there already.", "info")
        return _back(case_id)
    try:
        cases.add_note(session, agent_id=me.id, text=text, channel=channel, outcome=outcome, case=case)
        session.commit()
    except FieldError as exc:
        session.rollback()
        return render_case(case, errors=exc.errors, values={"text": text, "outcome": outcome, "channel": channel},
                           status=422)
    flash("Note added.", "success")
    return _back(case_id)


def _same_note(case_id: int, agent_id: int, text: str) -> bool:
    """Whether this agent just added this very note (a double submit)."""
    if not text:
        return False
    return get_session().scalar(sa.select(CaseEvent.id).where(
        CaseEvent.case_id == case_id, CaseEvent.kind == "note", CaseEvent.agent_id == agent_id,
        CaseEvent.note == text, CaseEvent.created_at >= utcnow() - DOUBLE_SUBMIT).limit(1)) is not None


@bp.post("/followups/<int:case_id>/message")
@followups_required
def followup_message(case_id: int):
    """Send the customer a message (Markdown, with article links); the job runner sends it by SMTP."""
    session, case = get_session(), case_or_404(case_id)
    body = messages.with_links(request.form.get("body", ""), request.form.get("links", ""))
    try:
        _event, created = messages.send_message(session, case, current_agent(), body, current_app.config,
                                                nonce=form_nonce())
        session.commit()
    except FieldError as exc:
        session.rollback()
        return render_case(case, errors=exc.errors, values={"body": request.form.get("body", ""),
                                                            "links": request.form.get("links", "")}, status=422)
    except ValidationError as exc:
        session.rollback()
        flash(str(exc), "error")
        return _back(case_id)
    flash("Message queued: kb sends it in a moment." if created else "This message was sent already.",
          "success" if created else "info")
    return _back(case_id)
