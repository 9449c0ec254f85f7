"""Sessions end on the server: a session cookie copied earlier stops working after logout, a new
password, deactivation (even after reactivation) and a role change, and after its lifetime."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import pytest
from itsdangerous.timed import TimestampSigner

from tests.agent_helpers import ADMIN, EDITOR, login, make_agent, post_form


@pytest.fixture
def admin(app):
    """A client logged in as an admin (agent 1); the editor is agent 2."""
    make_agent(app, ADMIN, role="admin")
    make_agent(app, EDITOR)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.1"
    assert login(client, ADMIN).status_code == 302
    return client


def copied_cookie(app) -> tuple:
    """The editor logs in; returns (their client, a copy of their session cookie)."""
    editor = app.test_client()
    assert login(editor, EDITOR).status_code == 302
    return editor, editor.get_cookie("session").value


def replay(app, cookie: str) -> int:
    """Send the copied cookie from another client; the status of the article list."""
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief.get("/agent/").status_code


def test_a_copied_cookie_dies_with_logout(app, admin):
    editor, cookie = copied_cookie(app)
    assert replay(app, cookie) == 200  # the copy works while the session lives
    post_form(editor, "/agent/logout", {})
    assert replay(app, cookie) == 302


def test_logout_ends_the_agents_sessions_on_every_device(app, admin):
    laptop, _ = copied_cookie(app)
    phone, _ = copied_cookie(app)
    post_form(laptop, "/agent/logout", {})
    assert phone.get("/agent/").status_code == 302


def test_a_copied_cookie_dies_with_a_new_password(app, admin):
    _, cookie = copied_cookie(app)
    post_form(admin, "/agent/admin/agents/2/password", {"password": "a-brand-new-one"})
    assert replay(app, cookie) == 302


def test_a_copied_cookie_stays_dead_after_deactivation_and_reactivation(app, admin):
    _, cookie = copied_cookie(app)
    post_form(admin, "/agent/admin/agents/2/deactivate", {})
    post_form(admin, "/agent/admin/agents/2/reactivate", {})
    assert replay(app, cookie) == 302  # never used while deactivated, still dead
    assert login(app.test_client(), EDITOR).status_code == 302  # the agent can log in again


def test_a_copied_cookie_dies_with_a_role_change(app, admin):
    _, cookie = copied_cookie(app)
    post_form(admin, "/agent/admin/agents/2/role", {"role": "support"})
    assert replay(app, cookie) == 302


def test_an_unchanged_role_ends_nothing(app, admin):
    _, cookie = copied_cookie(app)
    post_form(admin, "/agent/admin/agents/2/role", {"role": "editor"})
    assert replay(app, cookie) == 200


def test_the_session_cookie_lives_agent_idle_hours(app_factory):
    app = app_factory(AGENT_IDLE_HOURS=2)
    make_agent(app)
    response = login(app.test_client())
    expires = parsedate_to_datetime(response.headers["Set-Cookie"].split("Expires=")[1].split(";")[0])
    assert abs(expires - (datetime.now(timezone.utc) + timedelta(hours=2))) < timedelta(minutes=1)


def test_a_cookie_idle_longer_than_agent_idle_hours_is_refused(app_factory, monkeypatch):
    app = app_factory(AGENT_IDLE_HOURS=2)
    make_agent(app)
    real_now = time.time()
    # The agent's last request was three hours ago: its cookie was signed then.
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(real_now - 3 * 3600))
    old = app.test_client()
    assert login(old).status_code == 302
    cookie = old.get_cookie("session").value
    monkeypatch.undo()
    assert replay(app, cookie) == 302


def test_a_login_ends_agent_session_days_after_it_began(app_factory):
    app = app_factory(AGENT_SESSION_DAYS=7)
    make_agent(app)
    editor = app.test_client()
    login(editor)
    with editor.session_transaction() as session:
        session["agent_since"] = int(time.time() - 6 * 86400)
    assert editor.get("/agent/").status_code == 200  # six days in, however active: still fine
    with editor.session_transaction() as session:
        session["agent_since"] = int(time.time() - 7 * 86400 - 60)
    assert editor.get("/agent/").status_code == 302
