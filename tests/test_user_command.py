"""`kb user list | passwd | deactivate | reactivate` through click's runner, on the app's own database."""

from __future__ import annotations

import pytest

from kb.agents import authenticate
from kb.cli import cli
from kb.db import session_scope
from kb.web import create_app
from tests.agent_helpers import login
from tests.conftest import TEST_SECRET, close_app

WRONG = "not the password"


@pytest.fixture
def web(tmp_path, monkeypatch, runner):
    """KB_ variables for the commands, two agents added with `kb user add`, and the web app on that database."""
    for name, value in {"KB_INSTANCE_DIR": tmp_path / "instance", "KB_SECRET_KEY": TEST_SECRET,
                        "KB_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
                        "KB_INDEX_DIR": tmp_path / "index"}.items():
        monkeypatch.setenv(name, str(value))
    for email, name, role in (("ada@example.com", "Ada Admin", "admin"), ("edith@example.com", "Edith", "editor")):
        result = runner.invoke(cli, ["user", "add", email, "--name", name, "--role", role, "--password-stdin"],
                               input="correct horse battery\n")
        assert result.exit_code == 0, result.output
    app = create_app({"INDEXER": False})
    yield app
    close_app(app)


def logged_in(app, email: str = "edith@example.com"):
    """A browser logged in as ``email``."""
    client = app.test_client()
    assert login(client, email, "correct horse battery").status_code == 302
    return client


def test_list_shows_every_agent_with_role_and_status(runner, web):
    runner.invoke(cli, ["user", "deactivate", "edith@example.com"])
    result = runner.invoke(cli, ["user", "list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["EMAIL", "ROLE", "STATUS", "NAME"]
    assert lines[1].split() == ["ada@example.com", "admin", "active", "Ada", "Admin"]
    assert lines[2].split() == ["edith@example.com", "editor", "deactivated", "Edith"]


def test_list_of_no_agents_says_how_to_add_one(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("KB_INSTANCE_DIR", str(tmp_path / "instance"))
    monkeypatch.setenv("KB_SECRET_KEY", TEST_SECRET)
    result = runner.invoke(cli, ["user", "list"])
    assert result.exit_code == 0 and "kb user add EMAIL" in result.stdout


def test_passwd_from_stdin_sets_the_password_and_ends_sessions(runner, web):
    browser = logged_in(web)
    result = runner.invoke(cli, ["user", "passwd", "Edith@Example.com", "--password-stdin"], input="a-new-password\n")
    assert result.exit_code == 0, result.output
    assert "New password set for edith@example.com" in result.stdout
    assert browser.get("/agent/").status_code == 302
    with session_scope(web) as session:
        assert authenticate(session, "edith@example.com", "a-new-password") is not None
        assert authenticate(session, "edith@example.com", "correct horse battery") is None


def test_passwd_asks_twice_without_echo(runner, web):
    result = runner.invoke(cli, ["user", "passwd", "edith@example.com"], input="typed-twice-pw\ntyped-twice-pw\n")
    assert result.exit_code == 0, result.output
    assert "typed-twice-pw" not in result.output
    with session_scope(web) as session:
        assert authenticate(session, "edith@example.com", "typed-twice-pw") is not None


def test_passwd_lifts_a_login_lock(runner, web):
    attacker = web.test_client()
    for _ in range(5):
        login(attacker, "edith@example.com", WRONG)
    assert login(web.test_client(), "edith@example.com", "correct horse battery").status_code == 429
    runner.invoke(cli, ["user", "passwd", "edith@example.com", "--password-stdin"], input="a-new-password\n")
    colleague = web.test_client()
    colleague.environ_base["REMOTE_ADDR"] = "198.51.100.4"
    assert login(colleague, "edith@example.com", "a-new-password").status_code == 302


def test_deactivate_ends_sessions_and_reactivate_does_not_revive_them(runner, web):
    browser = logged_in(web)
    copied = browser.get_cookie("session").value
    result = runner.invoke(cli, ["user", "deactivate", "edith@example.com"])
    assert result.exit_code == 0 and "Deactivated edith@example.com; their sessions have ended." in result.stdout
    assert browser.get("/agent/").status_code == 302
    assert "Wrong email or password" in login(web.test_client(), "edith@example.com", "correct horse battery").text
    result = runner.invoke(cli, ["user", "reactivate", "edith@example.com"])
    assert result.exit_code == 0 and "Reactivated edith@example.com" in result.stdout
    thief = web.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/agent/").status_code == 302
    assert logged_in(web).get("/agent/").status_code == 200


def test_refusals_are_one_line_errors(runner, web):
    for args in (["deactivate", "nobody@example.com"], ["passwd", "nobody@example.com", "--password-stdin"]):
        result = runner.invoke(cli, ["user", *args], input="long-enough-pw\n")
        assert result.exit_code == 1 and "No agent has the email" in result.stderr and "kb user list" in result.stderr
    result = runner.invoke(cli, ["user", "deactivate", "ada@example.com"])
    assert result.exit_code == 1 and "last active admin" in result.stderr
    result = runner.invoke(cli, ["user", "passwd", "edith@example.com", "--password-stdin"], input="short\n")
    assert result.exit_code == 1 and "at least 8" in result.stderr
    assert "Traceback" not in result.output
