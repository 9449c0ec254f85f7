"""Agent login and logout, and the guard that refuses anonymous users on every /agent route.

A session names the agent, the agent's session version and when the login began. It stops
working when the version moved on (logout, new password, deactivation, new role), after
AGENT_IDLE_HOURS without a request (the cookie's signed timestamp, checked by Flask) and
AGENT_SESSION_DAYS after the login. Wrong passwords are throttled through kb.throttle.
"""

from __future__ import annotations

import math
import time
from datetime import timedelta
from functools import wraps
from urllib.parse import urlsplit

from flask import (Response, abort, current_app, flash, g, redirect, render_template, request, session,
                   url_for)

from kb import agents, throttle
from kb.db import get_session
from kb.models import MAX_ID, Agent
from kb.web.agent import bp
from kb.web.agent.forms import LoginForm
from kb.web.errors import wants_json

# The only agent endpoints an anonymous visitor may reach.
PUBLIC_ENDPOINTS = {"agent.login"}
LOGIN_FAILED = "Wrong email or password. If your account was deactivated, ask an admin."
LOCKED_ONE_MINUTE = "Too many attempts; try again in 1 minute."
LOCKED_MINUTES = "Too many attempts; try again in {minutes} minutes."
SESSION_KEYS = ("agent_id", "agent_version", "agent_since")


def current_agent() -> Agent | None:
    """The logged-in, active agent of this request, or None."""
    if "kb_agent" not in g:
        g.kb_agent = _load_agent()
    return g.kb_agent


def require(*permissions: str) -> None:
    """403 unless the logged-in agent's role has every one of ``permissions`` (kb.agents.PERMISSIONS)."""
    if not all(agents.can(current_agent(), permission) for permission in permissions):
        abort(403)


def _load_agent() -> Agent | None:
    """The agent named by the session, if still active and nothing has ended the session since."""
    agent_id = session.get("agent_id")
    if not isinstance(agent_id, int) or not 0 < agent_id <= MAX_ID:
        return None
    agent = get_session().get(Agent, agent_id)
    if (agent is None or not agent.active or session.get("agent_version") != agent.session_version
            or _login_too_old()):
        for key in SESSION_KEYS:
            session.pop(key, None)
        return None
    return agent


def _login_too_old() -> bool:
    """Whether the login began more than AGENT_SESSION_DAYS ago, however active the agent was since."""
    since = session.get("agent_since")
    if not isinstance(since, (int, float)) or isinstance(since, bool):
        return True
    return time.time() - since > current_app.config["AGENT_SESSION_DAYS"] * 86400


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
    if refusal is None and not agents.can(current_agent(), "manage_agents"):
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
    if form.validate_on_submit():
        return _attempt_login(form)
    error = "Enter your email and password." if request.method == "POST" else None
    return render_template("agent/login.html", form=form, error=error)


def _attempt_login(form: LoginForm):
    """Check the password unless the account or this address is locked; count the outcome."""
    db, config = get_session(), current_app.config
    policy = throttle.Policy.from_config(config)
    attempt = throttle.counters(config["SECRET_KEY"], form.email.data, request.remote_addr, policy)
    wait = throttle.lock_remaining(db, attempt, policy)
    if wait is None:
        agent = agents.authenticate(db, form.email.data, form.password.data)
        if agent is not None:
            throttle.record_success(db, attempt)
            db.commit()
            start_session(agent)
            return redirect(safe_next(form.next.data))
        wait = throttle.record_failure(db, attempt, policy)
        db.commit()
        if wait is None:
            return render_template("agent/login.html", form=form, error=LOGIN_FAILED)
    return _locked(form, wait)


def _locked(form: LoginForm, wait: timedelta):
    """The login page saying how long logins stay refused (429 with Retry-After)."""
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    error = LOCKED_ONE_MINUTE if minutes == 1 else LOCKED_MINUTES.format(minutes=minutes)
    response = Response(render_template("agent/login.html", form=form, error=error), 429)
    response.headers["Retry-After"] = str(math.ceil(wait.total_seconds()))
    return response


def start_session(agent: Agent) -> None:
    """A new session for the agent: clearing the old one prevents session fixation."""
    session.clear()
    session["agent_id"] = agent.id
    session["agent_version"] = agent.session_version
    session["agent_since"] = int(time.time())
    session.permanent = True
    g.kb_agent = agent


@bp.post("/logout")
def logout():
    """End this session and every other one of the agent (a copied cookie dies too), then go to login."""
    agents.end_sessions(current_agent())
    get_session().commit()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("agent.login"))
