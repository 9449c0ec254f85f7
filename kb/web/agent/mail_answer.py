"""/agent/mail/<id>/answer and /draft: answer an email with articles, or draft an article from it.

Thin views over kb.capture.answering and kb.capture.drafting, for support agents and admins only
(they show what the customer wrote; editors get 403, as the mail page hides it from them).
Preparing the message is a POST of the same form that re-renders it (like the offer form), so the
message, which may name the customer, never ends up in an address or a server log; the search box
is a GET form that adds articles to choose from.
"""

from __future__ import annotations

from functools import wraps

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from kb import agents, search
from kb.capture import answering, drafting
from kb.db import get_session
from kb.errors import FieldError, NotFound, ValidationError
from kb.models import Agent
from kb.web.agent import bp
from kb.web.agent.auth import current_agent
from kb.web.agent.followups import form_nonce, new_nonce

SEARCH_RESULTS = 10
MAX_QUERY = 200


def support_required(view):
    """Decorator: only agents allowed to read customers' mail (others get 403)."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not agents.can(current_agent(), "read_customer_mail"):
            abort(403, "Answering shows what customers wrote: support agents and admins only.")
        return view(*args, **kwargs)
    return wrapped


def _record(record_id: int):
    """The email, or 404."""
    try:
        return answering.answerable(get_session(), record_id)
    except NotFound:
        abort(404, "No such email.")


def _found(q: str) -> list:
    """Published articles for the agent's search, best first (not logged: agents are not customers)."""
    q = " ".join(q.split())[:MAX_QUERY]
    return search.search_articles(get_session(), q, per_page=SEARCH_RESULTS, log=False).results if q else []


def _render(record, *, q: str = "", chosen: list[int] | None = None, message: str = "", nonce: str = "",
            errors: dict | None = None, status: int = 200):
    """The answer page: the suggestions, the search results, the chosen articles and the message."""
    session = get_session()
    suggested = answering.suggestions(session, record)
    results = _found(q)
    chosen = chosen or []
    extra = [a for a in answering.chosen_articles_lenient(session, chosen)
             if a.id not in {s.article.id for s in suggested} | {r.article.id for r in results}]
    return render_template("agent/mail_answer.html", record=record, suggested=suggested, results=results,
                           extra=extra, q=q, chosen=chosen, message=message, nonce=nonce or new_nonce(),
                           errors=errors or {}, can_answer=record.state in answering.ANSWERABLE,
                           answer=answering.recorded_answer(session, record),
                           answered_by_name=_agent_name(record.answered_by)), status


def _agent_name(agent_id: int | None) -> str:
    """The name of the agent who answered, or ""."""
    agent = get_session().get(Agent, agent_id) if agent_id else None
    return agent.name if agent else ""


def _chosen() -> list[int]:
    """The article ids ticked on the form."""
    return [int(v) for v in request.form.getlist("article") if v.isdigit() and len(v) < 12][:20]


# One rule per address for GET and POST: with two, werkzeug answers an id past the converter's
# range with 405 instead of 404.
@bp.route("/mail/<int:record_id>/answer", methods=["GET", "POST"])
@support_required
def mail_answer(record_id: int):
    """The answer page (?q= searches for more articles); a POST sends or prepares the answer."""
    if request.method == "POST":
        return _answer_post(record_id)
    return _render(_record(record_id), q=request.args.get("q", ""),
                   chosen=[int(v) for v in request.args.getlist("article") if v.isdigit() and len(v) < 12][:20])


def _answer_post(record_id: int):
    """Send the answer (or, with action=prepare, fill the message from the chosen articles)."""
    session, record = get_session(), _record(record_id)
    chosen, message, nonce = _chosen(), request.form.get("message", ""), form_nonce()
    if request.form.get("action") == "prepare":
        try:
            message = answering.prefill(record, answering.chosen_articles(session, chosen), current_app.config)
        except FieldError as exc:
            return _render(record, chosen=chosen, message=message, nonce=nonce, errors=exc.errors, status=422)
        return _render(record, chosen=chosen, message=message, nonce=nonce)
    try:
        _, created = answering.answer_email(session, record, current_agent(), chosen, message,
                                            current_app.config, nonce=nonce)
        session.commit()
    except FieldError as exc:
        session.rollback()
        return _render(record, chosen=chosen, message=message, nonce=nonce, errors=exc.errors, status=422)
    except ValidationError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("agent.mail_answer", record_id=record_id), 303)
    flash("Answered: kb sends it now, and the articles learnt the question." if created
          else "This answer was sent already.", "success" if created else "info")
    return redirect(url_for("agent.mail") + f"#mail-{record_id}", 303)


@bp.route("/mail/<int:record_id>/draft", methods=["GET", "POST"])
@support_required
def mail_draft(record_id: int):
    """Before drafting: the existing articles closest to the email, to improve one instead; a POST drafts."""
    if request.method == "POST":
        return _draft_post(record_id)
    session, record = get_session(), _record(record_id)
    return render_template("agent/mail_draft.html", record=record,
                           similar=drafting.similar_articles(session, record),
                           earlier=drafting.existing_draft(session, record))


def _draft_post(record_id: int):
    """Create the draft from the email and open it in the editor."""
    session, record = get_session(), _record(record_id)
    try:
        article, created = drafting.draft_from_email(session, record, current_agent(), current_app.config)
        session.commit()
    except (FieldError, ValidationError) as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("agent.mail_draft", record_id=record_id), 303)
    flash("Draft created from the email, without the customer's personal data: check it before publishing."
          if created else "A draft from this email exists already: here it is.", "success" if created else "info")
    return redirect(url_for("agent.edit_article", article_id=article.id), 303)
