"""The "Solved" / "Still need help" links of auto-replies: a confirm page, then the recorded click.

GET only shows a button: mail scanners and link previews follow links, and must not answer for
the customer. The POST (with a CSRF token) records the click through kb.autoreply.ledger.
A link works for FEEDBACK_LINK_DAYS after its email arrived; after that it is a 410.
"""

from __future__ import annotations

from flask import abort, current_app, render_template

from kb.autoreply import ledger, links
from kb.autoreply.compose import template_lang
from kb.autoreply.models import MailRecord
from kb.db import get_session
from kb.errors import NotFound, ValidationError
from kb.web.portal import bp

PAGE_TEXTS = {
    "en": {"title": "Your feedback", "solved_q": "Did the suggested articles solve your question?",
           "help_q": "Do you still need help with your question?", "solved_button": "Yes, it is solved",
           "help_button": "Yes, I still need help", "solved_done": "Thank you! We are glad the articles helped.",
           "help_done": "Thank you. A person from our team will answer your email soon.",
           "already": "We already have your answer. Thank you!"},
    "zh": {"title": "您的反馈", "solved_q": "推荐的文章解决了您的问题吗？", "help_q": "您的问题仍需要帮助吗？",
           "solved_button": "是的，已解决", "help_button": "是的，我仍需帮助",
           "solved_done": "谢谢！很高兴这些文章对您有帮助。", "help_done": "谢谢。我们的工作人员会尽快回复您的邮件。",
           "already": "我们已经收到您的反馈。谢谢！"},
    "nb": {"title": "Tilbakemeldingen din", "solved_q": "Løste de foreslåtte artiklene spørsmålet ditt?",
           "help_q": "Trenger du fortsatt hjelp med spørsmålet ditt?", "solved_button": "Ja, det er løst",
           "help_button": "Ja, jeg trenger fortsatt hjelp", "solved_done": "Takk! Så bra at artiklene hjalp.",
           "help_done": "Takk. En av oss svarer på e-posten din snart.",
           "already": "Vi har allerede fått svaret ditt. Takk!"},
}


def _record_for(token: str) -> tuple[MailRecord, str]:
    """The record and action a token names; 400 when forged, 404 when the record is gone."""
    try:
        record_id, action = links.read_token(current_app.config["SECRET_KEY"], token)
    except ValidationError as exc:
        abort(400, description=str(exc))
    record = get_session().get(MailRecord, record_id)
    if record is None:
        abort(404, description="This email is no longer on record. Please write to us again.")
    if links.expired(record.created_at, current_app.config["FEEDBACK_LINK_DAYS"]):
        abort(410, description="This link has expired. If you still need help, please write to us again.")
    return record, action


def _page(record: MailRecord, action: str, *, done: str = "", status: int = 200):
    """The confirm page, or its outcome when ``done`` is set."""
    lang = template_lang(record.lang)
    return render_template("portal/mail_feedback.html", t=PAGE_TEXTS[lang], action=action, done=done,
                           page_lang=lang), status


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
        _, changed = ledger.resolve(get_session(), record.id, action)
    except NotFound as exc:
        abort(404, description=str(exc))
    key = ("solved_done" if action == links.SOLVED else "help_done") if changed else "already"
    return _page(record, action, done=key)
