"""Access to the agent editor: login, logout, refusing anonymous users, CSRF and cookies."""

from __future__ import annotations

import re

import pytest

from tests.agent_helpers import (ADMIN, EDITOR, PASSWORD, agent_rules, created_id, login, make_agent, post_form,
                                 save_new, token)


def test_there_are_agent_routes_to_guard(app):
    endpoints = {rule.endpoint for rule, _method, _url in agent_rules(app)}
    assert {"agent.articles", "agent.new_article", "agent.edit_article", "agent.preview", "agent.revisions",
            "agent.restore", "agent.logout", "agent.admin_agents", "agent.admin_add_agent"} <= endpoints


def test_every_agent_page_redirects_anonymous_users_to_login(app, client):
    csrf = token(client)
    for rule, method, url in agent_rules(app):
        response = client.open(url, method=method, data={"csrf_token": csrf} if method == "POST" else None)
        assert response.status_code == 302, (method, url, response.status_code)
        assert response.location.startswith("/agent/login?next="), (method, url, response.location)


def test_every_agent_route_gives_json_callers_401(app, client):
    csrf = token(client)
    for rule, method, url in agent_rules(app):
        response = client.open(url, method=method, json={} if method == "POST" else None,
                               headers={"Accept": "application/json", "X-CSRFToken": csrf})
        assert response.status_code == 401, (method, url, response.status_code)
        assert response.is_json and response.json["error"]


def test_anonymous_page_redirect_remembers_where_to_go(app, client):
    make_agent(app)
    response = client.get("/agent/?status=draft")
    assert response.location == "/agent/login?next=/agent/?status%3Ddraft"
    assert "/agent/?status=draft" in client.get(response.location).text
    response = login(client, next="/agent/?status=draft")
    assert response.location == "/agent/?status=draft"


def test_login_and_logout(app, client):
    make_agent(app, name="Edith Editor")
    response = login(client)
    assert response.status_code == 302 and response.location == "/agent/"
    page = client.get("/agent/")
    assert page.status_code == 200 and "Edith Editor" in page.text
    assert client.get("/agent/login?next=/agent/articles/new").location == "/agent/articles/new"
    response = post_form(client, "/agent/logout", {})
    assert response.status_code == 302 and response.location == "/agent/login"
    assert client.get("/agent/").status_code == 302


def test_wrong_password_is_refused_with_a_message(app, client):
    make_agent(app)
    response = login(client, password="not the password")
    assert response.status_code == 200
    assert "Wrong email or password" in response.text
    assert client.get("/agent/").status_code == 302


def test_unknown_email_gets_the_same_message(app, client):
    make_agent(app)
    response = login(client, email="nobody@example.com")
    assert "Wrong email or password" in response.text


def test_inactive_agent_cannot_log_in(app, client):
    make_agent(app, active=False)
    response = login(client)
    assert "Wrong email or password" in response.text
    assert client.get("/agent/").status_code == 302


def test_email_is_not_case_sensitive(app, client):
    make_agent(app)
    assert login(client, email=EDITOR.upper()).status_code == 302


@pytest.mark.parametrize("target", [
    "//evil.com", "//evil.com/agent/", "https://evil.com/", "http:evil.com", "/\\evil.com", "\\\\evil.com",
    "javascript:alert(1)", "evil.com", "/\t/evil.com", "",
])
def test_login_never_redirects_off_site(app, client, target):
    make_agent(app)
    response = login(client, next=target)
    assert response.status_code == 302
    assert response.location == "/agent/"


def test_login_follows_a_same_site_next(app, client):
    make_agent(app)
    assert login(client, next="/agent/articles/new").location == "/agent/articles/new"


def test_login_starts_a_fresh_session(app, client):
    make_agent(app)
    token(client)
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    login(client)
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["agent_id"]


def test_session_cookie_flags(app, client):
    make_agent(app)
    cookie = login(client).headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_over_https(app_factory):
    app = app_factory(BASE_URL="https://help.example.com")
    response = app.test_client().get("/agent/login", base_url="https://help.example.com")
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_posts_without_csrf_token_are_refused(app, client):
    make_agent(app)
    assert client.post("/agent/login", data={"email": EDITOR, "password": PASSWORD}).status_code == 400
    login(client)
    article_id = created_id(save_new(client))
    refused = [
        client.post("/agent/articles/new", data={"title": "Sneaky", "body_md": "x", "action": "save"}),
        client.post("/agent/articles/new", data={"title": "Sneaky", "body_md": "x", "action": "publish"}),
        client.post(f"/agent/articles/{article_id}/edit", data={"title": "Changed", "action": "publish"}),
        client.post("/agent/preview", json={"body_markdown": "# hi"}),
        client.post(f"/agent/articles/{article_id}/revisions/1/restore"),
        client.post("/agent/logout"),
        client.post("/agent/admin/agents", data={"email": "x@example.com", "name": "X", "password": "long-enough"}),
    ]
    assert [r.status_code for r in refused] == [400] * len(refused)
    assert "Reload the page" in refused[0].text
    listing = client.get("/agent/").text
    assert "Sneaky" not in listing and "Changed" not in listing
    assert client.get("/agent/").status_code == 200  # still logged in: the logout was refused


def test_csrf_token_from_another_session_is_refused(app, client):
    make_agent(app)
    stolen = token(app.test_client())
    response = client.post("/agent/login", data={"email": EDITOR, "password": PASSWORD, "csrf_token": stolen})
    assert response.status_code == 400


def test_changing_the_password_ends_other_sessions(app, client):
    make_agent(app)
    make_agent(app, ADMIN, role="admin")
    login(client)
    admin = app.test_client()
    login(admin, ADMIN)
    post_form(admin, "/agent/admin/agents/1/password", {"password": "a-brand-new-one"})
    assert client.get("/agent/").status_code == 302
    assert login(client, password="a-brand-new-one").status_code == 302


INLINE = re.compile(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=", re.IGNORECASE)


def test_agent_pages_have_no_inline_script_or_style(app, client):
    make_agent(app, ADMIN, role="admin")
    assert not INLINE.search(client.get("/agent/login").text)
    login(client, ADMIN)
    article_id = created_id(save_new(client, body_md="| a | b |\n|:-|-:|\n| 1 | 2 |\n"))
    post_form(client, f"/agent/articles/{article_id}/edit", {"title": "Changed", "body_md": "New", "lang": "en",
                                                               "action": "save"})
    pages = ["/agent/", "/agent/articles/new", f"/agent/articles/{article_id}/edit",
             f"/agent/articles/{article_id}/revisions?a=1&b=2", "/agent/admin/agents"]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert not INLINE.search(response.text), (url, INLINE.search(response.text))
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
