"""Agent accounts (kb.agents): hashing, authentication and the rules that keep an admin."""

from __future__ import annotations

import pytest

from kb import agents
from kb.errors import ValidationError


def test_create_agent_hashes_the_password(session):
    agent = agents.create_agent(session, email=" Edith@Example.COM ", name="  Edith   Editor ", password="s3cret-pass")
    session.commit()
    assert agent.email == "edith@example.com"
    assert agent.name == "Edith Editor"
    assert agent.role == "editor" and agent.active
    assert "s3cret-pass" not in agent.password_hash
    assert agent.password_hash.startswith("scrypt:")


@pytest.mark.parametrize("fields, message", [
    ({"password": "short"}, "at least 8"),
    ({"role": "owner"}, "Unknown role"),
    ({"email": "not-an-email"}, "not an email"),
    ({"name": "   "}, "name is empty"),
])
def test_create_agent_refuses_bad_input(session, fields, message):
    values = {"email": "a@example.com", "name": "A", "password": "long-enough", **fields}
    with pytest.raises(ValidationError, match=message):
        agents.create_agent(session, **values)


def test_duplicate_email_is_refused_whatever_the_case(session):
    agents.create_agent(session, email="a@example.com", name="A", password="long-enough")
    with pytest.raises(ValidationError, match="already exists"):
        agents.create_agent(session, email="A@EXAMPLE.com", name="B", password="long-enough")


def test_authenticate(session):
    agent = agents.create_agent(session, email="a@example.com", name="A", password="long-enough")
    assert agents.authenticate(session, "A@example.com", "long-enough") is agent
    assert agents.authenticate(session, "a@example.com", "wrong-password") is None
    assert agents.authenticate(session, "nobody@example.com", "long-enough") is None
    assert agents.authenticate(session, "a@example.com", "") is None


def test_inactive_agent_cannot_authenticate(session):
    agent = agents.create_agent(session, email="a@example.com", name="A", password="long-enough")
    agent.active = False
    assert agents.authenticate(session, "a@example.com", "long-enough") is None


def test_set_password_replaces_the_old_one(session):
    agent = agents.create_agent(session, email="a@example.com", name="A", password="long-enough")
    old_version = agent.session_version
    agents.set_password(agent, "another-password")
    assert agents.authenticate(session, "a@example.com", "long-enough") is None
    assert agents.authenticate(session, "a@example.com", "another-password") is agent
    assert agent.session_version > old_version  # sessions from before the change end
    with pytest.raises(ValidationError):
        agents.set_password(agent, "1234567")


def test_admin_cannot_demote_or_deactivate_themself(session):
    admin = agents.create_agent(session, email="root@example.com", name="Root", role="admin", password="long-enough")
    agents.create_agent(session, email="b@example.com", name="B", role="admin", password="long-enough")
    with pytest.raises(ValidationError, match="yourself"):
        agents.update_agent(session, admin, role="editor", acting=admin)
    with pytest.raises(ValidationError, match="yourself"):
        agents.update_agent(session, admin, active=False, acting=admin)
    assert admin.role == "admin" and admin.active


def test_the_last_active_admin_stays(session):
    admin = agents.create_agent(session, email="root@example.com", name="Root", role="admin", password="long-enough")
    other = agents.create_agent(session, email="b@example.com", name="B", role="admin", password="long-enough")
    agents.update_agent(session, other, role="editor", acting=admin)
    with pytest.raises(ValidationError, match="last active admin"):
        agents.update_agent(session, admin, active=False)
    agents.update_agent(session, other, role="admin", acting=admin)
    agents.update_agent(session, admin, active=False, acting=other)
    assert not admin.active


def test_update_agent_checks_role_and_name(session):
    agent = agents.create_agent(session, email="a@example.com", name="A", password="long-enough")
    with pytest.raises(ValidationError):
        agents.update_agent(session, agent, role="superuser")
    agents.update_agent(session, agent, name=" New  Name ")
    assert agent.name == "New Name"


def test_list_agents_puts_active_first(session):
    for email, name in [("z@example.com", "Zed"), ("a@example.com", "Amy"), ("m@example.com", "Max")]:
        agents.create_agent(session, email=email, name=name, password="long-enough")
    amy = agents.get_agent_by_email(session, "a@example.com")
    amy.active = False
    assert [a.name for a in agents.list_agents(session)] == ["Max", "Zed", "Amy"]
