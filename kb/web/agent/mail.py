"""/agent/mail: every email the auto-responder saw, what it decided, why, and what customers said.

Who sees what is decided in kb.agents.PERMISSIONS: support agents and admins see the customers'
addresses, subjects and text; editors see the decisions (state, kind of reason, suggested
articles, the customer's click) without anything the customer wrote.
"""

from __future__ import annotations

from flask import current_app, render_template, request

from kb import agents
from kb.autoreply import ledger
from kb.autoreply.requirements import REQUIRED, REQUIRED_TO_SEND
from kb.autoreply.models import MAIL_STATES
from kb.db import get_session
from kb.web.agent import bp
from kb.web.agent.auth import current_agent

LIMIT = 200
# What the page lists when no mailbox is set up, beside REQUIRED and REQUIRED_TO_SEND.
LOGIN_SETTINGS = ("IMAP_PASSWORD", "the mailbox password (or IMAP_OAUTH2_TOKEN_FILE / _COMMAND for "
                                   "Gmail and Microsoft 365)")


def mailbox_setup(config) -> list[tuple[str, str]] | None:
    """The settings to set, with what each is, when no mailbox is configured; None when one is."""
    if config.get("IMAP_HOST"):
        return None
    return [*REQUIRED.items(), LOGIN_SETTINGS, *REQUIRED_TO_SEND.items()]


@bp.get("/mail")
def mail():
    """The auto-responder's decisions, newest first, optionally of one state."""
    state = request.args.get("state", "")
    state = state if state in MAIL_STATES else ""
    session = get_session()
    return render_template("agent/mail.html", records=ledger.list_records(session, state or None, LIMIT),
                           state=state, states=MAIL_STATES, counts=ledger.state_counts(session), limit=LIMIT,
                           show_customer=agents.can(current_agent(), "read_customer_mail"),
                           setup=mailbox_setup(current_app.config))
