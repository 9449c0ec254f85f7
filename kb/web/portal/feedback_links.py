"""The "Solved" / "Still need help" links of auto-replies: a confirm page, then the recorded click.

GET only shows a button: mail scanners and link previews follow links, and must not answer for
the customer. The POST (with a CSRF token) records the click through kb.autoreply.ledger;
"Still need help" then opens (or joins) the customer's follow-up case, whose alert tells the team
(kb.followup.sources); "Solved" makes the question an example of the reply's top article
(kb.capture.solved). The page speaks the reply's language (the email's), whatever the
browser's. A link works for FEEDBACK_LINK_DAYS after its email arrived; after that it is a 410.
"""

from __future__ import annotations

from typing import NoReturn

from flask import abort, current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _

from kb.autoreply import ledger, links
from kb.autoreply.models import MailRecord
from kb.capture import solved
from kb.db import get_session
from kb.errors import NotFound
from kb.followup import sources
from kb.i18n import language_for
from kb.insights import outcomes
from kb.web.portal import bp


def _refuse_gone() -> NoReturn:
    """404: the email the link is about is no longer kept."""
    abort(404, description=_("This email is no longer on record. Please write to us again."))


def _record_for(token: str) -> tuple[MailRecord, str]:
    """The record and action a token names; 400 when forged, 404 when the record is gone.

    A forged link names no email, so its page speaks the visitor's language.
    """
    try:
        record_id, action = links.read_token(current_app.config["SECRET_KEY"], token)
    except links.InvalidLink:  # the domain's message is English; the customer gets theirs
        abort(400, description=_("This link is not valid: it may have been cut short or altered. "
                                 "Please copy the whole link from the email."))
    record = get_session().get(MailRecord, record_id)
    if record is None:
        _refuse_gone()
    if links.expired(record.created_at, current_app.config["FEEDBACK_LINK_DAYS"]):
        abort(410, description=_("This link has expired. If you still need help, please write to us again."))
    return record, action


def _page(record: MailRecord, action: str, *, done: str = "", status: int = 200):
    """The confirm page, or its outcome when ``done`` is set, in the language of the email."""
    with force_locale(language_for(record.lang, current_app.config)):
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
    session = get_session()
    try:
        record, changed = ledger.resolve(session, record.id, action)
    except NotFound:  # deleted since _record_for read it
        _refuse_gone()
    # Also on a repeated click: a request that died after the click was recorded is made whole by
    # its retry (the signal's key makes it once).
    sources.from_still_need_help(session, record, current_app.config)
    outcomes.resolved(session, record)  # confirmed or reopened (kb.insights); repeating it changes nothing
    if changed:  # only the first click teaches: an example an agent removed since stays removed
        solved.learn_from_solved(session, record)
        solved.forget_unsolved(session, record)
    session.commit()
    key = ("solved_done" if action == links.SOLVED else "help_done") if changed else "already"
    return _page(record, action, done=key)
