"""The ``kb`` command, through click's runner and as a real process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from kb import search
from kb.agents import authenticate
from kb.cli import _progress_lines, cli, command_app
from kb.db import session_scope
from kb.models import Article
from kb.web import create_app
from tests.conftest import REPO, TEST_SECRET, close_app
from tests.servers import free_port


@pytest.fixture
def kb_env(tmp_path, monkeypatch) -> dict[str, str]:
    """Point every ``kb`` command at a throwaway instance folder, database and index."""
    env = {
        "KB_INSTANCE_DIR": str(tmp_path / "instance"),
        "KB_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "KB_INDEX_DIR": str(tmp_path / "index"),
        "KB_SECRET_KEY": TEST_SECRET,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def open_app(kb_env):
    """Open the app the commands use, to look at what they did (closed at the end)."""
    made = []

    def factory():
        made.append(create_app({"INDEXER": False}))
        return made[-1]

    yield factory
    for app in made:
        close_app(app)


def write_article(folder: Path, slug: str, title: str, extra: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{slug}.md").write_text(
        f"---\ntitle: {title}\nslug: {slug}\nlang: en\ncategory: Help\ntags: [x]\n{extra}---\n{title} body.\n",
        encoding="utf-8")


def assert_clean_failure(result, *fragments: str) -> None:
    """Exit status 1 with a one-line message on stderr, never a traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr


def test_help_lists_every_command(runner):
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "import", "export", "reindex", "user", "db"):
        assert command in result.output
    assert "exit status is then 1" in runner.invoke(cli, ["import", "--help"]).output


def test_import_counts_lists_failures_and_indexes(runner, kb_env, open_app, tmp_path):
    folder = tmp_path / "articles"
    write_article(folder, "gift-cards", "Gift cards")
    write_article(folder, "returns", "Returns", "status: draft\n")
    (folder / "broken.md").write_text("---\ntitle: [oops\n---\nx\n", encoding="utf-8")

    result = runner.invoke(cli, ["import", str(folder)])
    assert_clean_failure(result, "broken.md", "not valid YAML")
    assert "Imported: 2 created, 0 updated, 0 unchanged, 1 failed" in result.stdout

    (folder / "broken.md").unlink()
    result = runner.invoke(cli, ["import", str(folder)])
    assert result.exit_code == 0, result.output
    assert "Imported: 0 created, 0 updated, 2 unchanged, 0 failed" in result.stdout

    app = open_app()
    with app.app_context():
        hits = search.query_index("gift cards").hits
        with session_scope(app) as session:
            found = {session.get(Article, hit.article_id).slug for hit in hits}
    assert found == {"gift-cards"}  # indexed by the command; the draft stays out


def test_import_of_missing_path_is_refused(runner, kb_env, tmp_path):
    result = runner.invoke(cli, ["import", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_export_writes_every_article(runner, kb_env, tmp_path):
    folder = tmp_path / "articles"
    write_article(folder, "a-one", "One")
    write_article(folder, "a-two", "Two", "status: archived\n")
    assert runner.invoke(cli, ["import", str(folder)]).exit_code == 0

    result = runner.invoke(cli, ["export", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "Exported 2 articles" in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a-one.md", "a-two.md"]
    assert "status: archived\n" in (tmp_path / "out" / "a-two.md").read_text(encoding="utf-8")


def test_reindex_rebuilds_from_the_database(runner, kb_env, open_app, tmp_path):
    write_article(tmp_path / "articles", "gift-cards", "Gift cards")
    runner.invoke(cli, ["import", str(tmp_path / "articles")])
    result = runner.invoke(cli, ["reindex"])
    assert result.exit_code == 0, result.output
    assert "Indexed 1 published articles in" in result.stdout
    # Not a terminal: a plain progress line instead of a bar.
    assert "Indexing: 0 / 1\nIndexing: 1 / 1\n" in result.stderr
    app = open_app()
    with app.app_context():
        assert search.query_index("gift").total == 1


def test_progress_off_a_terminal_is_a_line_at_each_tenth(capsys):
    update = _progress_lines("Indexing")
    for done in range(0, 2501):
        update(done, 2500)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"Indexing: {n * 250:,} / 2,500" for n in range(11)]


def test_user_add_with_password_from_stdin(runner, kb_env, open_app):
    result = runner.invoke(cli, ["user", "add", "Ann@Example.com", "--name", "Ann Admin", "--role", "admin",
                                 "--password-stdin"], input="correct horse battery\n")
    assert result.exit_code == 0, result.output
    assert "Added admin ann@example.com" in result.stdout
    app = open_app()
    with session_scope(app) as session:
        agent = authenticate(session, "ann@example.com", "correct horse battery")
        assert agent is not None and agent.role == "admin" and agent.name == "Ann Admin"
        assert authenticate(session, "ann@example.com", "correct horse battery\n") is None


def test_user_add_prompts_twice(runner, kb_env, open_app):
    result = runner.invoke(cli, ["user", "add", "bob@example.com", "--name", "Bob"],
                           input="first-password\nfirst-password\n")
    assert result.exit_code == 0, result.output
    assert "Added editor bob@example.com" in result.stdout
    assert "first-password" not in result.output  # hidden input
    with session_scope(open_app()) as session:
        assert authenticate(session, "bob@example.com", "first-password") is not None


def test_user_add_refusals_are_one_line_errors(runner, kb_env):
    add = ["user", "add", "c@example.com", "--name", "C", "--password-stdin"]
    assert_clean_failure(runner.invoke(cli, add, input="short\n"), "Error:", "8")
    assert runner.invoke(cli, add, input="long enough pw\n").exit_code == 0
    assert_clean_failure(runner.invoke(cli, add, input="long enough pw\n"), "already exists")
    result = runner.invoke(cli, ["user", "add", "d@example.com", "--name", "D", "--role", "boss"])
    assert result.exit_code == 2 and "boss" in result.output


def test_db_upgrade_creates_the_schema(runner, kb_env):
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "is up to date" in result.stdout
    engine = sa.create_engine(kb_env["KB_DATABASE_URL"])
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"articles", "agents", "revisions", "alembic_version"} <= tables


def test_db_upgrade_hides_the_password_and_explains_a_dead_database(runner, kb_env, monkeypatch):
    monkeypatch.setenv("KB_DATABASE_URL", f"postgresql+psycopg://kb:s3cret@127.0.0.1:{free_port()}/kb")
    result = runner.invoke(cli, ["db", "upgrade"])
    assert_clean_failure(result, "database error", "KB_DATABASE_URL")
    assert "s3cret" not in result.output


def test_broken_setting_is_a_one_line_error(runner, kb_env, monkeypatch):
    monkeypatch.setenv("KB_SEARCH_PAGE_SIZE", "abc")
    for command in (["reindex"], ["export", "out"], ["db", "upgrade"]):
        assert_clean_failure(runner.invoke(cli, command), "KB_SEARCH_PAGE_SIZE", "abc")


def test_commands_other_than_serve_run_no_indexer_thread(kb_env):
    with command_app() as app:
        assert app.config["INDEXER"] is False
        assert not [t for t in threading.enumerate() if t.name == "kb-indexer"]


def run_kb(*args: str, env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m kb`` as a real process."""
    return subprocess.run([sys.executable, "-m", "kb", *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120, **kwargs)


def test_real_process_help_and_errors(kb_env, tmp_path):
    console_script = Path(sys.executable).parent / "kb"
    if console_script.exists():
        result = subprocess.run([str(console_script), "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "reindex" in result.stdout
    result = run_kb("--help", env=kb_env)
    assert result.returncode == 0 and "Usage: kb" in result.stdout

    result = run_kb("reindex", env={**kb_env, "KB_SEARCH_PAGE_SIZE": "abc"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: KB_SEARCH_PAGE_SIZE = 'abc' (from the environment) is not a whole number: "
        "set it to a whole number from 1 to 100."]


def test_real_serve_imports_and_indexes_the_starter_articles(kb_env, tmp_path):
    port = free_port()
    env = {**os.environ, **kb_env, "KB_STARTER_ARTICLES_DIR": str(REPO / "articles")}
    proc = subprocess.Popen([sys.executable, "-m", "kb", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        body = wait_for_json(f"http://127.0.0.1:{port}/api/search?q=password", proc)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert body["total"] >= 1, output
    assert any(r["slug"] == "reset-password" for r in body["results"]), body
    assert "Imported" in output and f"http://127.0.0.1:{port}/" in output


def test_serve_on_a_busy_port_names_the_port_before_any_start_up_work(kb_env, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as holder:  # a real listener holding the port
        port = holder.getsockname()[1]
        result = run_kb("serve", "--port", str(port), env=kb_env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "serving" not in result.stdout and "Imported" not in result.stdout
    [line] = result.stderr.strip().splitlines()
    assert f"Port {port} on 127.0.0.1 is already in use" in line and "--port" in line
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cli.sqlite3").exists() and not (tmp_path / "index").exists(), \
        "kb started up before it found out the port was taken"


def test_serve_on_an_address_of_another_machine_says_which_host_to_use(kb_env):
    result = run_kb("serve", "--host", "192.0.2.1", "--port", str(free_port()), env=kb_env)
    assert result.returncode == 1 and "serving" not in result.stdout
    assert "not an address of this machine" in result.stderr and "--host 127.0.0.1" in result.stderr


def wait_for_json(url: str, proc: subprocess.Popen, timeout: float = 60) -> dict:
    """GET ``url`` once the server answers, failing early if the process died."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.communicate()[0]
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.load(response)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
