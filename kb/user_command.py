"""`kb user`: add, list, change the password of, deactivate and reactivate agents.

Thin click wrappers over kb.agents; each ``run_user_*`` function is what its command does, and
tests call it directly. Every change that must end sessions (new password, deactivation) ends
them through kb.agents, exactly as the web pages do.
"""

from __future__ import annotations

import sys

import click
from flask import Flask

from kb import agents
from kb.db import session_scope
from kb.models import ROLES

NO_AGENTS = "No agents yet: add one with `kb user add EMAIL --name NAME --role admin`."


@click.group("user")
def user_command() -> None:
    """Manage the agents who log in to the editor."""


def read_password(from_stdin: bool) -> str:
    """The new password: the first line of stdin, or asked twice without echo."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _app():
    """The command's app (imported late: kb.cli loads this module lazily)."""
    from kb.cli import command_app

    return command_app()


password_stdin_option = click.option("--password-stdin", is_flag=True,
                                     help="Read the password from the first line of stdin instead of asking.")


def run_user_add(app: Flask, email: str, name: str, role: str, password: str) -> str:
    """Create an agent; returns the stored (normalised) email."""
    with session_scope(app) as session:
        return agents.create_agent(session, email=email, name=name, role=role, password=password).email


@user_command.command("add")
@click.argument("email")
@click.option("--name", required=True, help="The agent's full name, shown in the editor.")
@click.option("--role", type=click.Choice(ROLES), default="editor", show_default=True,
              help="support can also read customers' email on /agent/mail; admin can also manage agents.")
@password_stdin_option
def user_add(email: str, name: str, role: str, password_stdin: bool) -> None:
    """Add an agent who logs in with EMAIL.

    Asks for the password twice (at least 8 characters) unless --password-stdin is given.
    """
    password = read_password(password_stdin)
    with _app() as app:
        stored = run_user_add(app, email, name, role, password)
    click.echo(f"Added {role} {stored}")


def run_user_list(app: Flask) -> list[tuple[str, str, str, str]]:
    """Every agent as (email, role, status, name), active ones first."""
    with session_scope(app) as session:
        return [(a.email, a.role, "active" if a.active else "deactivated", a.name)
                for a in agents.list_agents(session)]


@user_command.command("list")
def user_list() -> None:
    """List every agent: email, role, whether active, and name."""
    with _app() as app:
        rows = run_user_list(app)
    if not rows:
        click.echo(NO_AGENTS)
        return
    table = [("EMAIL", "ROLE", "STATUS", "NAME"), *rows]
    widths = [max(len(row[column]) for row in table) for column in range(3)]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])


def run_user_passwd(app: Flask, email: str, password: str) -> str:
    """Set an agent's password, end their sessions and lift a login lock; returns the email."""
    with session_scope(app) as session:
        agent = agents.require_agent(session, email)
        agents.reset_password(session, agent, password, secret=app.config["SECRET_KEY"])
        return agent.email


@user_command.command("passwd")
@click.argument("email")
@password_stdin_option
def user_passwd(email: str, password_stdin: bool) -> None:
    """Set a new password for the agent with EMAIL.

    Asks for it twice unless --password-stdin is given. The agent's sessions end everywhere, and a
    lock from too many wrong passwords is lifted.
    """
    password = read_password(password_stdin)
    with _app() as app:
        stored = run_user_passwd(app, email, password)
    click.echo(f"New password set for {stored}; their sessions have ended.")


def run_user_set_active(app: Flask, email: str, active: bool) -> str:
    """Deactivate (ending every session) or reactivate an agent; returns the email."""
    with session_scope(app) as session:
        agent = agents.require_agent(session, email)
        agents.update_agent(session, agent, active=active)
        return agent.email


@user_command.command("deactivate")
@click.argument("email")
def user_deactivate(email: str) -> None:
    """Stop the agent with EMAIL from logging in, and end their sessions.

    Their articles stay. kb refuses to deactivate the last active admin.
    """
    with _app() as app:
        stored = run_user_set_active(app, email, False)
    click.echo(f"Deactivated {stored}; their sessions have ended.")


@user_command.command("reactivate")
@click.argument("email")
def user_reactivate(email: str) -> None:
    """Let the deactivated agent with EMAIL log in again (their old sessions stay ended)."""
    with _app() as app:
        stored = run_user_set_active(app, email, True)
    click.echo(f"Reactivated {stored}: they can log in again.")
