"""Helpers for agent-editor tests (Flask test client with CSRF on); the browser tests reuse them."""

from __future__ import annotations

import re

from kb import agents
from kb.db import session_scope
from tests.conftest import csrf_token_from

PASSWORD = "correct horse battery"
EDITOR = "edith@example.com"
ADMIN = "ada@example.com"
SUPPORT = "sam@example.com"
ALL_METHODS = ("GET", "POST")


def agent_rules(app):
    """Every (rule, method, url) under /agent except the login page."""
    adapter = app.url_map.bind("localhost")
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/agent") or rule.endpoint == "agent.login":
            continue
        url = adapter.build(rule.endpoint, {name: 1 for name in rule.arguments})
        found.extend((rule, method, url) for method in ALL_METHODS if method in rule.methods)
    return found


def make_agent(app, email: str = EDITOR, *, name: str | None = None, role: str = "editor",
               password: str = PASSWORD, active: bool = True) -> int:
    """Create an agent straight in the database; returns its id."""
    with app.app_context(), session_scope(app) as session:
        agent = agents.create_agent(session, email=email, name=name or email.split("@")[0].title(),
                                    role=role, password=password)
        agent.active = active
        session.flush()
        return agent.id


def token(client, url: str = "/agent/login") -> str:
    """A CSRF token from the form on ``url`` (valid for this client's session)."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return csrf_token_from(response.text)


def login(client, email: str = EDITOR, password: str = PASSWORD, next: str | None = None):
    """Log in through the real form; returns the POST's response (a 302 on success)."""
    data = {"email": email, "password": password, "csrf_token": token(client)}
    if next is not None:
        data["next"] = next
    return client.post("/agent/login", data=data)


def post_form(client, url: str, data: dict, *, form_page: str | None = None, **kwargs):
    """POST ``data`` with a CSRF token taken from ``form_page`` (default: the article list)."""
    return client.post(url, data={**data, "csrf_token": token(client, form_page or "/agent/")}, **kwargs)


def article_data(title: str = "Reset your password", **fields) -> dict:
    """Editor form fields for an article."""
    data = {"title": title, "slug": "", "body_md": "Open **Settings** and choose *Reset*.\n",
            "lang": "en", "category": "Account", "tags": "password, login", "note": ""}
    data.update(fields)
    return data


def save_new(client, action: str = "save", **fields):
    """Create an article through the editor; returns the response."""
    return post_form(client, "/agent/articles/new", {**article_data(**fields), "action": action},
                     form_page="/agent/articles/new")


def created_id(response) -> int:
    """The article id from the redirect after saving a new article."""
    match = re.search(r"/agent/articles/(\d+)/edit$", response.location or "")
    assert match, (response.status_code, response.location)
    return int(match.group(1))


def save_edit(client, article_id: int, action: str = "save", **fields):
    """Submit the edit form of an article with ``fields`` changed."""
    url = f"/agent/articles/{article_id}/edit"
    return post_form(client, url, {**article_data(**fields), "action": action}, form_page=url)


def make_team_app(tmp_path_factory, name: str):
    """An app of a test module's own, with an admin, a support agent and an editor (close_app it after)."""
    from kb.web import create_app
    from tests.conftest import make_config

    app = create_app(make_config(tmp_path_factory.mktemp(name)))
    make_agent(app, ADMIN, name="Ada Admin", role="admin")
    make_agent(app, SUPPORT, name="Sam Support", role="support")
    make_agent(app, EDITOR, name="Edith Editor", role="editor")
    return app


def logged_in(app, email: str, csrf_page: str = "/agent/"):
    """A test client logged in as ``email``, with a CSRF token of its session (from ``csrf_page``) as ``.csrf``."""
    client = app.test_client()
    assert login(client, email).status_code == 302
    client.csrf = token(client, csrf_page)
    return client
