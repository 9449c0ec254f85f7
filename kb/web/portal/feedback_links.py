"""The "Solved" / "Still need help" links of auto-replies: a confirm page, then the recorded click.

GET only shows a button: mail scanners and link previews follow links, and must not answer for
the customer. The POST (with a CSRF token) records the click through kb.autoreply.ledger. The
page speaks the email's language, whatever the browser's. A link works for FEEDBACK_LINK_DAYS
after its email arrived; after that it is a 410.
"""

from __future__ import annotations

from flask import abort, current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _

from kb.autoreply import ledger, links
from kb.autoreply.compose import template_lang
from kb.autoreply.models import MailRecord
from kb.db import get_session
from kb.errors import NotFound, ValidationError
from kb.web.portal import bp


def _record_for(token: str) -> tuple[MailRecord, str]:
    """The record and action a token names; 400 when forged, 404 when the record is gone."""
    try:
        record_id, action = links.read_token(current_app.config["SECRET_KEY"], token)
    except ValidationError as exc:
        abort(400, description=str(exc))
    record = get_session().get(MailRecord, record_id)
    if record is None:
        abort(404, description=_("This email is no longer on record. Please write to us again."))
    if links.expired(record.created_at, current_app.config["FEEDBACK_LINK_DAYS"]):
        abort(410, description=_("This link has expired. If you still need help, please write to us again."))
    return record, action


def _page(record: MailRecord, action: str, *, done: str = "", status: int = 200):
    """The confirm page, or its outcome when ``done`` is set, in the language of the email."""
    with force_locale(template_lang(record.lang)):
        return render_template("portal/mail_feedback.html", action=action, done=done), status


@bp.get("/mail/feedback/<token>")
def mail_feedback(token: str):
    """Ask the customer to confirm the click (nothing is recorded by merely opening the link)."""
    record, action = _record_for(token)
    return _page(record, action)


@bp.post("/mail/feedback/<token>")
def mail_feedback_confirm(token: str):
    """Record "Solved" or "Still need help"; a second click only says it is already recorded."""
    record, action = _record_for(token)
    try:
        _record, changed = ledger.resolve(get_session(), record.id, action)
    except NotFound as exc:
        abort(404, description=str(exc))
    key = ("solved_done" if action == links.SOLVED else "help_done") if changed else "already"
    return _page(record, action, done=key)
