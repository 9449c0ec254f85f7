"""Managing agents in the web UI: admins only, and there is always an admin."""

from __future__ import annotations

import pytest

from kb.db import session_scope
from kb.models import Agent
from tests.agent_helpers import ADMIN, EDITOR, PASSWORD, agent_rules, login, make_agent, post_form, token


@pytest.fixture
def admin_client(app, client):
    """A client logged in as an admin (agent 1); an editor (agent 2) exists too."""
    make_agent(app, ADMIN, name="Ada Admin", role="admin")
    make_agent(app, EDITOR, name="Edith Editor")
    assert login(client, ADMIN).status_code == 302
    return client


def stored(app, email: str) -> Agent:
    """The agent as stored."""
    with session_scope(app) as session:
        agent = session.query(Agent).filter_by(email=email).one()
        session.expunge(agent)
        return agent


def test_editors_get_403_on_every_admin_route(app, client):
    make_agent(app)
    login(client)
    csrf = token(client, "/agent/")
    admin_rules = [(m, url) for rule, m, url in agent_rules(app) if rule.rule.startswith("/agent/admin")]
    assert len(admin_rules) >= 5
    for method, url in admin_rules:
        response = client.open(url, method=method, data={"csrf_token": csrf, "role": "admin", "password": "x" * 10})
        assert response.status_code == 403, (method, url)
    assert stored(app, EDITOR).role == "editor"
    assert 'href="/agent/admin/agents"' not in client.get("/agent/").text


def test_admin_sees_the_agents(admin_client):
    page = admin_client.get("/agent/admin/agents").text
    assert "Ada Admin" in page and "Edith Editor" in page and EDITOR in page


def test_admin_adds_an_agent_who_can_log_in(app, admin_client):
    response = post_form(admin_client, "/agent/admin/agents",
                         {"email": "new@example.com", "name": "Nora New", "role": "editor", "password": "welcome-nora"})
    assert response.status_code == 302
    assert "Added Nora New" in admin_client.get(response.location).text
    assert login(app.test_client(), "new@example.com", "welcome-nora").status_code == 302


def test_add_agent_errors_keep_the_input(admin_client):
    response = post_form(admin_client, "/agent/admin/agents",
                         {"email": EDITOR, "name": "Someone Else", "role": "editor", "password": "long-enough"})
    assert response.status_code == 422
    assert "already exists" in response.text and 'value="Someone Else"' in response.text
    response = post_form(admin_client, "/agent/admin/agents",
                         {"email": "x@example.com", "name": "X", "role": "editor", "password": "short"})
    assert response.status_code == 422 and "at least 8" in response.text


def test_deactivation_blocks_login_and_ends_the_session(app, admin_client):
    editor = app.test_client()
    login(editor)
    assert editor.get("/agent/").status_code == 200
    response = post_form(admin_client, "/agent/admin/agents/2/deactivate", {})
    assert "can no longer log in" in admin_client.get(response.location).text
    assert not stored(app, EDITOR).active
    assert editor.get("/agent/").status_code == 302
    assert "Wrong email or password" in login(editor).text
    post_form(admin_client, "/agent/admin/agents/2/reactivate", {})
    assert login(editor).status_code == 302


def test_change_role(app, admin_client):
    post_form(admin_client, "/agent/admin/agents/2/role", {"role": "admin"})
    assert stored(app, EDITOR).role == "admin"
    editor = app.test_client()
    login(editor)
    assert editor.get("/agent/admin/agents").status_code == 200
    post_form(admin_client, "/agent/admin/agents/2/role", {"role": "editor"})
    assert editor.get("/agent/admin/agents").status_code == 302  # the new role ended the session
    login(editor)
    assert editor.get("/agent/admin/agents").status_code == 403


def test_admin_cannot_demote_or_deactivate_themself(app, admin_client):
    response = post_form(admin_client, "/agent/admin/agents/1/role", {"role": "editor"})
    assert "cannot demote or deactivate yourself" in admin_client.get(response.location).text
    post_form(admin_client, "/agent/admin/agents/1/deactivate", {})
    admin = stored(app, ADMIN)
    assert admin.role == "admin" and admin.active
    assert admin_client.get("/agent/admin/agents").status_code == 200


def test_reset_password(app, admin_client):
    response = post_form(admin_client, "/agent/admin/agents/2/password", {"password": "fresh-password"})
    assert "New password set for Edith Editor" in admin_client.get(response.location).text
    assert "Wrong email or password" in login(app.test_client(), EDITOR, PASSWORD).text
    assert login(app.test_client(), EDITOR, "fresh-password").status_code == 302
    response = post_form(admin_client, "/agent/admin/agents/2/password", {"password": "short"})
    assert "at least 8" in admin_client.get(response.location).text


def test_admin_resetting_their_own_password_stays_logged_in(app, admin_client):
    post_form(admin_client, "/agent/admin/agents/1/password", {"password": "my-new-password"})
    assert admin_client.get("/agent/admin/agents").status_code == 200


def test_unknown_agent_is_404(admin_client):
    assert post_form(admin_client, "/agent/admin/agents/99/deactivate", {}).status_code == 404
