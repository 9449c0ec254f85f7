"""Managing agents (admins only): add, change role, deactivate or reactivate, reset password."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, session, url_for

from kb import agents
from kb.db import get_session
from kb.errors import ValidationError
from kb.models import ROLES, Agent
from kb.web.agent import bp
from kb.web.agent.auth import admin_required, current_agent
from kb.web.agent.forms import AgentForm, PasswordForm, RoleForm


def _render(form: AgentForm, *, error: str | None = None, status: int = 200):
    """The agents page: the list with its row actions, and the form to add one."""
    return render_template("agent/agents.html", form=form, error=error, roles=ROLES,
                           agents=agents.list_agents(get_session())), status


def _get_agent(agent_id: int) -> Agent:
    """The agent with this id, or a 404."""
    agent = get_session().get(Agent, agent_id)
    if agent is None:
        abort(404, "There is no agent with this number.")
    return agent


@bp.get("/admin/agents")
@admin_required
def admin_agents():
    """The list of agents."""
    return _render(AgentForm(formdata=None))


@bp.post("/admin/agents")
@admin_required
def admin_add_agent():
    """Add an agent; errors are shown next to the form, which keeps what was typed (but the password)."""
    form = AgentForm()
    if not form.validate_on_submit():
        return _render(form, error="Fill in email, name, role and password.", status=422)
    db = get_session()
    try:
        agent = agents.create_agent(db, email=form.email.data, name=form.name.data, role=form.role.data,
                                    password=form.password.data)
        db.commit()
    except ValidationError as exc:
        db.rollback()
        return _render(form, error=str(exc), status=422)
    flash(f"Added {agent.name} ({agent.email}) as {agent.role}.", "success")
    return redirect(url_for("agent.admin_agents"))


def _apply(agent_id: int, change, done: str):
    """Run ``change(session, agent)``, commit, and flash ``done`` or the refusal."""
    db = get_session()
    agent = _get_agent(agent_id)
    try:
        change(db, agent)
        db.commit()
    except ValidationError as exc:
        db.rollback()
        flash(str(exc), "error")
    else:
        flash(done.format(name=agent.name), "success")
    return redirect(url_for("agent.admin_agents"))


@bp.post("/admin/agents/<int:agent_id>/role")
@admin_required
def admin_set_role(agent_id: int):
    """Make an agent an editor or an admin."""
    form = RoleForm()
    if not form.validate_on_submit():
        flash("Choose editor or admin.", "error")
        return redirect(url_for("agent.admin_agents"))
    role = form.role.data
    return _apply(agent_id, lambda db, agent: agents.update_agent(db, agent, role=role, acting=current_agent()),
                  f"{{name}} is now {role}.")


@bp.post("/admin/agents/<int:agent_id>/deactivate")
@admin_required
def admin_deactivate(agent_id: int):
    """Stop an agent from logging in (their articles stay)."""
    return _apply(agent_id, lambda db, agent: agents.update_agent(db, agent, active=False, acting=current_agent()),
                  "{name} is deactivated and can no longer log in.")


@bp.post("/admin/agents/<int:agent_id>/reactivate")
@admin_required
def admin_reactivate(agent_id: int):
    """Let a deactivated agent log in again."""
    return _apply(agent_id, lambda db, agent: agents.update_agent(db, agent, active=True, acting=current_agent()),
                  "{name} can log in again.")


@bp.post("/admin/agents/<int:agent_id>/password")
@admin_required
def admin_reset_password(agent_id: int):
    """Set a new password; the agent's other sessions end."""
    form = PasswordForm()
    if not form.validate_on_submit():
        flash("Type the new password.", "error")
        return redirect(url_for("agent.admin_agents"))

    def change(db, agent):
        agents.reset_password(db, agent, form.password.data, secret=current_app.config["SECRET_KEY"])
        if agent.id == current_agent().id:
            session["agent_version"] = agent.session_version  # stay logged in yourself

    return _apply(agent_id, change, "New password set for {name}. Tell them over a safe channel.")
