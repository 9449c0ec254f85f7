"""/<lang>/contact: the contact form, its suggestions while typing, and the answer shown first.

Thin views over kb.contact: checking (form), limits, the decision and the ledger (asking), the
email to the team (sending, a job). Everything works without JavaScript: "Show suggested articles"
posts the form back with the suggestions; kb/web/static/contact.js only fetches the same list
(the JSON endpoint below) while the customer types. A filled honeypot field is answered like a
question sent, and nothing is recorded or sent.
"""

from __future__ import annotations

import math

from flask import abort, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import ngettext
from itsdangerous import BadData, URLSafeSerializer

from kb.contact import asking, limits
from kb.contact.form import FIELDS, MAX_NAME, MAX_SUBJECT, check_form, one_line
from kb.db import get_session
from kb.errors import FieldError
from kb.models import MAX_ID, utcnow
from kb.web.i18n import current_language
from kb.web.matching import matcher
from kb.web.portal import bp
from kb.web.portal.context import visitor_id
from kb.web.portal.routes import PAGE

TRAP = "website"  # the honeypot: hidden by CSS from people, filled in by form-filling robots
SALT = "kb-contact-answer"


def _serializer() -> URLSafeSerializer:
    """Signs the record id of an answer shown first, so only that page can answer for it."""
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def _values() -> dict[str, str]:
    """The form's fields as typed (bounded), to show again."""
    limit = int(current_app.config["CONTACT_MAX_CHARS"]) + 1000
    return {name: str(request.form.get(name, ""))[:limit] for name in FIELDS}


def _page(values: dict, *, errors: dict | None = None, suggestions=None, asked: bool = False,
          limited: str = "", status: int = 200):
    """The form, with messages at their fields and the suggestions found so far."""
    return render_template("portal/contact.html", form=values, errors=errors or {}, suggestions=suggestions or [],
                           asked=asked, limited=limited, max_name=MAX_NAME, max_subject=MAX_SUBJECT), status


def _suggest(subject: str, question: str):
    """The articles kb would suggest for this subject and question, with the decision."""
    session = get_session()
    settings = current_app.config
    cap = int(settings["CONTACT_MAX_CHARS"])
    decision = asking.decide(one_line(subject)[:MAX_SUBJECT], question[:cap], matcher(session), settings)
    found = asking.suggestions(session, decision, settings)
    session.commit()  # a body rendered for the first time is kept
    return decision, found


@bp.get(PAGE + "/contact")
def contact():
    """The empty contact form."""
    return _page({name: "" for name in FIELDS})


@bp.post(PAGE + "/contact")
def contact_send():
    """"Show suggested articles" (no JavaScript) or "Send": check, limit, decide, record, answer."""
    values = _values()
    if request.form.get("action") == "suggest":
        _decision, found = _suggest(values["subject"], values["question"])
        return _page(values, suggestions=found, asked=bool(values["question"].strip()))
    if request.form.get(TRAP, "").strip():
        return render_template("portal/contact_done.html", done="sent")  # a robot: looks sent, is not
    try:
        form = check_form(request.form, int(current_app.config["CONTACT_MAX_CHARS"]), _)
    except FieldError as error:
        return _page(values, errors=error.errors, status=422)
    session = get_session()
    try:
        limits.check(session, current_app.config, form.email, request.remote_addr)
    except limits.RateLimited as refused:
        session.rollback()
        return _limited(values, refused)
    decision, found = _suggest(form.subject or form.mail_subject, form.question)
    shown = decision.reply and bool(found)
    record = asking.ask(session, form, decision, current_app.config, lang=current_language(), shown=shown,
                        name=form.name, visitor=visitor_id())
    session.commit()
    if not shown:
        return render_template("portal/contact_done.html", done="sent")
    return render_template("portal/contact_answer.html", suggestions=found, name=form.name,
                           token=_serializer().dumps(record.id))


def _limited(values: dict, refused: limits.RateLimited):
    """429: the form as typed, and when the customer may send again."""
    minutes = max(1, math.ceil((refused.retry_at - utcnow()).total_seconds() / 60))
    text = ngettext("You have sent several questions in a short time. Please try again in %(num)d minute.",
                    "You have sent several questions in a short time. Please try again in %(num)d minutes.", minutes)
    page, status = _page(values, limited=text, status=429)
    response = current_app.make_response((page, status))
    response.headers["Retry-After"] = str(minutes * 60)
    return response


@bp.post(PAGE + "/contact/answer")
def contact_answer():
    """"Yes, this answers it" or "No, send my question" after the answer shown first."""
    try:
        record_id = _serializer().loads(str(request.form.get("token", ""))[:200])
    except BadData:
        abort(400, description=_("This form is not valid. Please ask your question again."))
    choice = request.form.get("choice")
    if choice not in ("yes", "no") or not isinstance(record_id, int) or not 0 < record_id <= MAX_ID:
        abort(400, description=_("Choose Yes or No to tell us whether the answer helped."))
    session = get_session()
    record = asking.web_record(session, record_id)
    if record is None:
        abort(404, description=_("This question is no longer on record. Please ask it again."))
    changed = asking.answer(session, record, choice == "yes", one_line(request.form.get("name"))[:MAX_NAME])
    session.commit()
    return render_template("portal/contact_done.html",
                           done=("solved" if choice == "yes" else "sent") if changed else "already")


@bp.post(PAGE + "/contact/suggestions")
def contact_suggestions():
    """JSON for contact.js: the suggestions list's HTML for the subject and question typed so far."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, description=_("Send the subject and question as JSON."))
    cap = int(current_app.config["CONTACT_MAX_CHARS"])
    question = str(data.get("question") or "")[:cap]
    subject = str(data.get("subject") or "")[:MAX_SUBJECT * 2]
    found = _suggest(subject, question)[1] if question.strip() else []
    html = render_template("portal/_contact_suggestions.html", suggestions=found, asked=bool(question.strip()))
    return jsonify(html=html, count=len(found))
