"""/agent/followups: the queue of follow-up cases, one case's page, and opening a case by hand.

Thin views over kb.followup (queue, cases, messages, signals). Follow-ups show what customers
wrote, the same personal data as their email, so the same people see them: support agents and
admins (PERMISSION). The case page's actions are in kb.web.agent.followup_actions.
"""

from __future__ import annotations

import re
import secrets
from functools import wraps
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext

from kb import agents
from kb.db import get_session
from kb.errors import FieldError, ValidationError
from kb.followup import cases, queue, signals
from kb.followup.alert_compose import reason_label
from kb.followup.messages import customer_email
from kb.followup.models import CHANNELS, SOURCES, Case
from kb.models import Article, parse_whole
from kb.recovery import offer_form
from kb.web.agent import bp
from kb.web.agent.auth import current_agent

PERMISSION = "read_customer_mail"  # customers' words are as personal as their email
NOTE_CHANNELS = ("phone", "chat", "in_person", "social", "other")
MANUAL_CHANNELS = ("phone", "chat", "in_person", "social", "email", "other")
CHANNEL_LABELS = {"phone": "Phone", "chat": "Chat", "in_person": "In person", "social": "Social media",
                  "email": "Email", "web": "Web", "other": "Other"}
SOURCE_LABELS = {"vote": "“No” vote", "still_need_help": "Still need help", "writeback": "Wrote back",
                 "survey": "Low survey score", "manual": "Opened by an agent"}
NONCE = re.compile(r"[0-9a-f]{32}")
MAX_WORDS_FIELD = 5000


def followups_required(view):
    """Decorator: the view runs only for agents allowed to read customers' words (others get 403)."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not agents.can(current_agent(), PERMISSION):
            abort(403, "Follow-ups show what customers wrote: support agents and admins only.")
        return view(*args, **kwargs)
    return wrapped


@bp.context_processor
def _followup_menu() -> dict:
    """The menu's follow-up entry: shown to those allowed, with the unacknowledged count (one COUNT, on use)."""
    return {"can_follow_up": agents.can(current_agent(), PERMISSION),
            "followup_count": lambda: queue.unacknowledged_count(get_session()),
            "channel_labels": CHANNEL_LABELS, "source_labels": SOURCE_LABELS,
            "format_wait": queue.format_wait}


def new_nonce() -> str:
    """A random token for a form, so submitting it twice does one thing."""
    return secrets.token_hex(16)


def form_nonce() -> str:
    """The form's nonce if well-formed; else a fresh one (that submit cannot be recognised again)."""
    value = request.form.get("nonce", "")
    return value if NONCE.fullmatch(value) else new_nonce()


@bp.get("/followups")
@followups_required
def followups():
    """The queue: oldest unacknowledged first, filtered by state, assignee, category and source."""
    session, config = get_session(), current_app.config
    filters = queue.parse_filters(request.args, config)
    page = parse_whole(request.args.get("page", "1"), 1, 999_999) or 1
    found = queue.list_cases(session, filters, agent_id=current_agent().id, page=page)
    return render_template("agent/followups.html", found=found, filters=filters,
                           states=("open", "new", "acknowledged", "contacted", "reopened", "resolved", "all"),
                           root_causes=cases.root_causes(config), sources=SOURCES,
                           agents=queue.active_agents(session),
                           page_args={k: v for k, v in request.args.items() if k != "page"})


def render_case(case, *, errors: dict | None = None, values: dict | None = None, status: int = 200,
                offer: dict | None = None, prepare: bool = False):
    """The case page, with the errors of a refused form at their fields.

    ``offer`` holds the "Make it right" form's values (else the query's: ?gesture=<id>&amount=...),
    and ``prepare`` fills its message from the gesture's template.
    """
    session, config = get_session(), current_app.config
    recovery = offer_form.panel(session, case, current_agent(), config,
                                request.args if offer is None else offer, prepare=prepare)
    return render_template("agent/followup_case.html", f=queue.case_file(session, case, config), recovery=recovery,
                           errors=errors or {}, values=values or {}, root_causes=cases.root_causes(config),
                           agents=queue.active_agents(session), note_channels=NOTE_CHANNELS,
                           nonce=new_nonce(), can_email=bool(customer_email(session, case)),
                           reason_label=lambda reason: reason_label(reason, gettext)), status


@bp.get("/followups/<int:case_id>")
@followups_required
def followup_case(case_id: int):
    """One case: its signals, history, deadline and actions (?gesture=<id> prepares an offer's message)."""
    return render_case(case_or_404(case_id), prepare=bool(request.args.get("gesture")))


def case_or_404(case_id: int):
    """The case, or a 404."""
    case = get_session().get(Case, case_id)
    if case is None:
        abort(404, "There is no case with this number.")
    return case


@bp.route("/followups/new", methods=["GET", "POST"])
@followups_required
def new_followup():
    """Open a case by hand: a phone call, a chat, a shop visit, a social-media post."""
    if request.method == "GET":
        return _render_new({}, {})
    values = {name: request.form.get(name, "").strip() for name in
              ("email", "phone", "name", "channel", "words", "article", "nonce")}
    session = get_session()
    try:
        kwargs = _manual_signal(values)
        result = signals.record_signal(session, key=f"manual:{form_nonce()}", source="manual",
                                       settings=current_app.config, agent_id=current_agent().id, **kwargs)
        session.commit()
    except FieldError as exc:
        session.rollback()
        return _render_new(values, exc.errors, 422)
    except ValidationError as exc:
        session.rollback()
        return _render_new(values, {"form": str(exc)}, 422)
    return redirect(url_for("agent.followup_case", case_id=result.case.id), 303)


def _render_new(values: dict, errors: dict, status: int = 200):
    """The form to open a case, keeping what was typed."""
    values.setdefault("nonce", new_nonce())
    return render_template("agent/followup_new.html", values=values, errors=errors,
                           channels=MANUAL_CHANNELS), status


def _manual_signal(values: dict) -> dict:
    """record_signal's arguments from the form; FieldError for each field to fix."""
    errors = {}
    if not values["email"] and not values["phone"]:
        errors["email"] = "Give the customer's email address or phone number."
    if values["channel"] not in MANUAL_CHANNELS:
        errors["channel"] = "Choose how they reached you."
    if not values["words"]:
        errors["words"] = "Write what the customer said."
    elif len(values["words"]) > MAX_WORDS_FIELD:
        errors["words"] = f"Keep it under {MAX_WORDS_FIELD:,} characters."
    article_id = None
    if values["article"]:
        article_id = _article_id(values["article"])
        if article_id is None:
            errors["article"] = "No article has this slug or address."
    if errors:
        raise FieldError(errors)
    return {"address": values["email"], "phone": values["phone"], "name": values["name"][:200],
            "channel": values["channel"] if values["channel"] in CHANNELS else "other",
            "words": values["words"], "article_id": article_id}


def _article_id(text: str) -> int | None:
    """The article a slug or a portal address (…/articles/<slug>) names, or None."""
    path = urlsplit(text).path if "/" in text else text
    slug = path.rstrip("/").rsplit("/", 1)[-1]
    return get_session().scalar(sa.select(Article.id).where(Article.slug == slug)) if slug else None
