"""Agent login and logout, and the guard that refuses anonymous users on every /agent route."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import Response, abort, flash, g, redirect, render_template, request, session, url_for

from kb import agents
from kb.db import get_session
from kb.models import Agent
from kb.web.agent import bp
from kb.web.agent.forms import LoginForm
from kb.web.errors import wants_json

# The only agent endpoints an anonymous visitor may reach.
PUBLIC_ENDPOINTS = {"agent.login"}
LOGIN_FAILED = "Wrong email or password. If your account was deactivated, ask an admin."


def current_agent() -> Agent | None:
    """The logged-in, active agent of this request, or None."""
    if "kb_agent" not in g:
        g.kb_agent = _load_agent()
    return g.kb_agent


def _load_agent() -> Agent | None:
    """The agent named by the session, if still active and the password has not changed since login."""
    agent_id = session.get("agent_id")
    if not isinstance(agent_id, int):
        return None
    agent = get_session().get(Agent, agent_id)
    if agent is None or not agent.active or session.get("agent_auth") != agents.session_token(agent):
        # Forget the login for good, so reactivating the agent later does not revive this session.
        session.pop("agent_id", None)
        session.pop("agent_auth", None)
        return None
    return agent


def _wants_json() -> bool:
    """JSON callers get a 401 rather than a redirect to the login page."""
    return request.path.startswith("/agent/api/") or wants_json()


def refuse_anonymous() -> Response | None:
    """None if an agent is logged in; else a 401 (JSON) or a redirect to the login page."""
    if current_agent() is not None:
        return None
    if _wants_json():
        return Response('{"error": "Log in as an agent first."}', 401, mimetype="application/json")
    return redirect(url_for("agent.login", next=request.full_path.rstrip("?")))


def refuse_non_admin() -> Response | None:
    """None for a logged-in admin; the anonymous refusal or a 403 otherwise."""
    refusal = refuse_anonymous()
    if refusal is None and not current_agent().is_admin:
        abort(403, "Only admins can manage agents.")
    return refusal


def login_required(view):
    """Decorator: the view runs only for a logged-in agent."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        return refuse_anonymous() or view(*args, **kwargs)
    return wrapped


def admin_required(view):
    """Decorator: the view runs only for a logged-in admin (editors get 403)."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        return refuse_non_admin() or view(*args, **kwargs)
    return wrapped


@bp.before_request
def _guard() -> Response | None:
    """Refuse anonymous users on every agent route but login, so no route can forget it."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    return refuse_anonymous()


@bp.context_processor
def _agent_context() -> dict:
    """Templates see the logged-in agent as ``agent``."""
    return {"agent": current_agent()}


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the article list (no open redirects)."""
    default = url_for("agent.articles")
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return default
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form; on success start a fresh session and go to ``next``."""
    form = LoginForm()
    if request.method == "GET":
        if current_agent() is not None:
            return redirect(safe_next(request.args.get("next")))
        form.next.data = request.args.get("next", "")
    error = None
    if form.validate_on_submit():
        agent = agents.authenticate(get_session(), form.email.data, form.password.data)
        if agent is not None:
            _start_session(agent)
            return redirect(safe_next(form.next.data))
        error = LOGIN_FAILED
    elif request.method == "POST":
        error = "Enter your email and password."
    return render_template("agent/login.html", form=form, error=error)


def _start_session(agent: Agent) -> None:
    """A new session for the agent: clearing the old one prevents session fixation."""
    session.clear()
    session["agent_id"] = agent.id
    session["agent_auth"] = agents.session_token(agent)
    session.permanent = True
    g.kb_agent = agent


@bp.post("/logout")
def logout():
    """End the session and go back to the login page."""
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("agent.login"))
