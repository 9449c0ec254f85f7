"""/agent/mail: every email the auto-responder saw, what it decided, why, and what customers said."""

from __future__ import annotations

from flask import render_template, request

from kb.autoreply import ledger
from kb.autoreply.models import MAIL_STATES
from kb.db import get_session
from kb.web.agent import bp

LIMIT = 200


@bp.get("/mail")
def mail():
    """The auto-responder's decisions, newest first, optionally of one state."""
    state = request.args.get("state", "")
    state = state if state in MAIL_STATES else ""
    session = get_session()
    return render_template("agent/mail.html", records=ledger.list_records(session, state or None, LIMIT),
                           state=state, states=MAIL_STATES, counts=ledger.state_counts(session), limit=LIMIT)
