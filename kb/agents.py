"""Agent accounts: create, authenticate and manage the people who write articles.

Plain functions over a session (the caller commits), shared by the web editor and ``kb user``.
Passwords are stored only as werkzeug hashes (scrypt). Every session cookie carries the agent's
``session_version``; logout, a new password, deactivation and a role change raise it, which ends
every session issued before.
"""

from __future__ import annotations

import re
from functools import cache

import sqlalchemy as sa
import sqlalchemy.orm as so
from werkzeug.security import check_password_hash, generate_password_hash

from kb import throttle
from kb.errors import NotFound, ValidationError
from kb.models import ROLES, Agent

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")

# Who may do what: the one place kb decides it. Customers' email (addresses, subjects and text)
# is personal data that only the people who answer it need: support agents and admins.
PERMISSIONS = {
    "edit_articles": ("editor", "support", "admin"),
    "read_customer_mail": ("support", "admin"),
    "manage_agents": ("admin",),
}


def can(agent: Agent | None, permission: str) -> bool:
    """Whether this (active) agent's role allows ``permission`` (a key of PERMISSIONS)."""
    return agent is not None and agent.active and agent.role in PERMISSIONS[permission]


def normalise_email(email: str) -> str:
    """Trimmed and lower-cased, so logins are not case-sensitive; ValidationError if malformed."""
    email = str(email or "").strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise ValidationError(f"{email or 'The email'!r} is not an email address: write it as name@example.com.")
    return email


def check_role(role: str) -> str:
    """The role if kb knows it, else ValidationError."""
    if role not in ROLES:
        raise ValidationError(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")
    return role


def clean_name(name: str) -> str:
    """The display name with whitespace collapsed; ValidationError if empty or too long."""
    name = " ".join(str(name or "").split())
    if not name:
        raise ValidationError("The name is empty: give the agent a name.")
    if len(name) > 120:
        raise ValidationError("The name is longer than 120 characters.")
    return name


def set_password(agent: Agent, password: str) -> None:
    """Hash and store a new password; ValidationError if it is too short."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"The password is too short: use at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"The password is longer than {MAX_PASSWORD_LENGTH} characters.")
    agent.password_hash = generate_password_hash(password)
    end_sessions(agent)


def end_sessions(agent: Agent) -> None:
    """End every session of the agent issued until now (logout, new password, lost rights)."""
    agent.session_version = (agent.session_version or 0) + 1


def reset_password(session: so.Session, agent: Agent, password: str, *, secret: str) -> None:
    """Set a new password, end the agent's sessions and lift a lock from too many failed logins."""
    set_password(agent, password)
    throttle.clear_account(session, secret, agent.email)


def get_agent_by_email(session: so.Session, email: str) -> Agent | None:
    """The agent with this email (any case), or None."""
    return session.scalar(sa.select(Agent).where(Agent.email == str(email or "").strip().lower()))


def create_agent(session: so.Session, *, email: str, name: str, role: str = "editor", password: str) -> Agent:
    """Add an agent; ValidationError for a bad or duplicate email, unknown role or short password."""
    email = normalise_email(email)
    if get_agent_by_email(session, email) is not None:
        raise ValidationError(f"An agent with the email {email} already exists.")
    agent = Agent(email=email, name=clean_name(name), role=check_role(role), active=True)
    set_password(agent, password)
    session.add(agent)
    session.flush()
    return agent


@cache
def _dummy_hash() -> str:
    """A hash to check against when the email is unknown, so both cases take as long."""
    return generate_password_hash("not-a-real-password")


def authenticate(session: so.Session, email: str, password: str) -> Agent | None:
    """The active agent with this email and password, or None (no hint which one was wrong)."""
    agent = get_agent_by_email(session, email)
    if agent is None:
        check_password_hash(_dummy_hash(), password or "")
        return None
    if not check_password_hash(agent.password_hash, password or ""):
        return None
    return agent if agent.active else None


def require_agent(session: so.Session, email: str) -> Agent:
    """The agent with this email; NotFound that says how to list them otherwise."""
    agent = get_agent_by_email(session, email)
    if agent is None:
        raise NotFound(f"No agent has the email {str(email).strip()!r}: `kb user list` shows them all.")
    return agent


def update_agent(session: so.Session, agent: Agent, *, name: str | None = None, role: str | None = None,
                 active: bool | None = None, acting: Agent | None = None) -> None:
    """Change name, role or active flag; refuse changes that would leave kb without an active admin.

    ``acting`` is the agent making the change: admins cannot demote or deactivate themselves.
    A new role or a deactivation ends the agent's sessions, so lost rights take effect at once.
    """
    if name is not None:
        agent.name = clean_name(name)
    demoting = role is not None and check_role(role) != "admin" and agent.is_admin
    deactivating = active is False and agent.active
    if (demoting or deactivating) and acting is not None and acting.id == agent.id:
        raise ValidationError("You cannot demote or deactivate yourself: ask another admin to do it.")
    if (demoting or deactivating) and agent.is_admin and agent.active and _active_admins(session) <= 1:
        raise ValidationError(f"{agent.name} is the last active admin: make another agent admin first.")
    if (role is not None and role != agent.role) or deactivating:
        end_sessions(agent)
    if role is not None:
        agent.role = role
    if active is not None:
        agent.active = active


def _active_admins(session: so.Session) -> int:
    """How many active admins there are."""
    return session.scalar(sa.select(sa.func.count()).select_from(Agent)
                          .where(Agent.role == "admin", Agent.active.is_(True))) or 0


def list_agents(session: so.Session) -> list[Agent]:
    """Every agent, active ones first, then by name."""
    return list(session.scalars(sa.select(Agent).order_by(Agent.active.desc(), Agent.name, Agent.id)))
