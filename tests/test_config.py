"""Settings: documented in the README, merged in the documented order, and refused when malformed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import stat

import pytest

from kb.config import SETTINGS, load_config, settings_table
from kb.errors import ConfigError
from kb.web import create_app
from tests.conftest import REPO, close_app, make_config

README_HEADER = "| Environment variable | Default | Allowed values | What it does |"


def readme_table() -> list[str]:
    """The lines of the README's settings table."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert README_HEADER in lines, f"README.md has no settings table starting with {README_HEADER!r}"
    start = lines.index(README_HEADER)
    end = next(n for n in range(start, len(lines) + 1) if n == len(lines) or not lines[n].startswith("|"))
    return lines[start:end]


def test_the_readme_settings_table_is_the_one_kb_config_generates():
    documented = readme_table()
    generated = settings_table().splitlines()
    assert {row.split("|")[1].strip(" `") for row in documented[2:]} == {s.env for s in SETTINGS}, \
        "the README's settings table lists other settings than kb/config.py"
    for row, expected in zip(documented, generated):
        assert row == expected, "README settings table is out of date: paste `python -m kb.config` over it"


def test_every_setting_has_a_rule_that_accepts_its_default(tmp_path):
    config = load_config(environ={"KB_INSTANCE_DIR": str(tmp_path)})
    for setting in SETTINGS:
        assert setting.rule is not None, f"{setting.name} has no rule: give it rule=rules.<maker>(...) in kb/config.py"
        assert setting.rule.allowed and setting.rule.bad, setting.name
        assert setting.rule.accepts(config[setting.name], config), setting.name


def every_bad_value():
    """(setting, bad value) for every setting: the values each rule says it refuses."""
    return [pytest.param(s, bad, id=f"{s.env}={bad!r}") for s in SETTINGS if s.rule for bad in s.rule.bad]


@pytest.mark.parametrize("setting, bad", every_bad_value())
def test_every_setting_refuses_a_bad_value_at_start_and_says_what_to_set(tmp_path, setting, bad):
    environ = {"KB_INSTANCE_DIR": str(tmp_path / "instance"), setting.env: bad}
    with pytest.raises(ConfigError) as refused:
        load_config(environ=environ)
    message = str(refused.value)
    assert message.startswith(setting.env) and setting.rule.allowed in message and "\n" not in message
    assert (bad not in message) if setting.secret and bad else True, "a secret was repeated in the message"


@pytest.mark.parametrize("variable, value", [
    ("KB_SEARCH_PAGE_SIZE", "0"), ("KB_SEARCH_PAGE_SIZE", "-5"), ("KB_SEARCH_PAGE_SIZE", "2.5"),
    ("KB_MAX_QUERY_LENGTH", "0"), ("KB_AUTOREPLY_THRESHOLD", "2"), ("KB_AUTOREPLY_THRESHOLD", "nan"),
    ("KB_LANGUAGES", "fr"), ("KB_LANGUAGES", "en,fr"), ("KB_DEFAULT_LANGUAGE", "fr"),
    ("KB_BASE_URL", "notaurl"), ("KB_BASE_URL", "help.example.com"), ("KB_SECRET_KEY", "short"),
    ("KB_IMAP_PORT", "0"), ("KB_SMTP_PORT", "65536"), ("KB_INDEXER_POLL_SECONDS", "0"),
    ("KB_INDEXER_POLL_SECONDS", "-1"), ("KB_IMAP_SECURITY", "tls"), ("KB_SUPPORT_ADDRESS", "nobody"),
    ("KB_TEAM_ADDRESS", "team"), ("KB_AUTOREPLY_WAKE_SECONDS", "0"), ("KB_AUTOREPLY_SENDER_WINDOW_HOURS", "0"),
])
def test_values_kb_used_to_accept_stop_the_app_at_start(tmp_path, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    config = make_config(tmp_path)
    del config["SECRET_KEY"]  # so that KB_SECRET_KEY counts
    with pytest.raises(ConfigError, match=variable):
        close_app(create_app(config))
    assert not (tmp_path / "kb.sqlite3").exists(), "the app got as far as the database"


def test_default_language_must_be_one_of_the_languages(tmp_path):
    environ = {"KB_INSTANCE_DIR": str(tmp_path), "KB_LANGUAGES": "zh,nb"}
    with pytest.raises(ConfigError, match="KB_DEFAULT_LANGUAGE"):
        load_config(environ=environ)
    assert load_config(environ={**environ, "KB_DEFAULT_LANGUAGE": "NB"})["DEFAULT_LANGUAGE"] == "nb"


def test_a_refusal_names_the_config_file_it_came_from(tmp_path):
    (tmp_path / "kb.toml").write_text("SEARCH_PAGE_SIZE = 0\n")
    with pytest.raises(ConfigError, match=r"KB_SEARCH_PAGE_SIZE = '0' \(in .*kb\.toml\) is not allowed: set it to a whole"):
        load_config(environ={"KB_INSTANCE_DIR": str(tmp_path)})


@pytest.mark.parametrize("toml", ["SEARCH_PAGE_SIZE = 1.5", "SEARCH_PAGE_SIZE = true", "INDEXER_POLL_SECONDS = false",
                                  'LANGUAGES = ["en", "zh"]', "BASE_URL = 5"])
def test_toml_values_of_the_wrong_type_are_refused(tmp_path, toml):
    (tmp_path / "kb.toml").write_text(toml + "\n")
    with pytest.raises(ConfigError, match="KB_" + toml.split()[0]):
        load_config(environ={"KB_INSTANCE_DIR": str(tmp_path)})


def test_whole_numbers_may_be_written_as_toml_floats_or_text(tmp_path):
    (tmp_path / "kb.toml").write_text("SEARCH_PAGE_SIZE = 20.0\nIMAP_SECURITY = ' STARTTLS '\n")
    config = load_config(environ={"KB_INSTANCE_DIR": str(tmp_path), "KB_SMTP_PORT": " 2525 "})
    assert (config["SEARCH_PAGE_SIZE"], config["IMAP_SECURITY"], config["SMTP_PORT"]) == (20, "starttls", 2525)


def test_precedence_defaults_then_file_then_environment_then_mapping(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    environ = {"KB_INSTANCE_DIR": str(instance)}
    assert load_config(environ=environ)["SEARCH_PAGE_SIZE"] == 10

    (instance / "kb.toml").write_text('SEARCH_PAGE_SIZE = 20\nSUPPORT_ADDRESS = "help@file.example"\n')
    from_file = load_config(environ=environ)
    assert (from_file["SEARCH_PAGE_SIZE"], from_file["SUPPORT_ADDRESS"]) == (20, "help@file.example")

    environ["KB_SEARCH_PAGE_SIZE"] = "30"
    from_env = load_config(environ=environ)
    assert (from_env["SEARCH_PAGE_SIZE"], from_env["SUPPORT_ADDRESS"]) == (30, "help@file.example")

    assert load_config({"SEARCH_PAGE_SIZE": 40}, environ=environ)["SEARCH_PAGE_SIZE"] == 40


def test_config_file_location_comes_from_kb_config_file(tmp_path):
    custom = tmp_path / "elsewhere.toml"
    custom.write_text("INDEXER = false\nINDEXER_POLL_SECONDS = 2\n")
    config = load_config(environ={"KB_INSTANCE_DIR": str(tmp_path / "i"), "KB_CONFIG_FILE": str(custom)})
    assert config["INDEXER"] is False and config["INDEXER_POLL_SECONDS"] == 2.0


def test_instance_placeholders_expand_to_the_instance_folder(tmp_path):
    config = load_config(environ={"KB_INSTANCE_DIR": str(tmp_path / "inst")})
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'inst'}/kb.sqlite3"
    assert config["INDEX_DIR"] == str(tmp_path / "inst" / "index")


@pytest.mark.parametrize("variable, value, named", [
    ("KB_SEARCH_PAGE_SIZE", "ten", "KB_SEARCH_PAGE_SIZE"),
    ("KB_INDEXER", "maybe", "KB_INDEXER"),
    ("KB_INDEXER_POLL_SECONDS", "fast", "KB_INDEXER_POLL_SECONDS"),
])
def test_a_malformed_environment_value_names_the_setting(tmp_path, variable, value, named):
    with pytest.raises(ConfigError, match=named):
        load_config(environ={"KB_INSTANCE_DIR": str(tmp_path), variable: value})


@pytest.mark.parametrize("toml, named", [
    ("SEARCH_PAGE_SIZE = [", "kb.toml"),
    ("SEARCH_PAGESIZE = 20", "SEARCH_PAGESIZE"),
    ('SEARCH_PAGE_SIZE = "ten"', "KB_SEARCH_PAGE_SIZE"),
])
def test_a_bad_config_file_names_the_file_or_setting(tmp_path, toml, named):
    (tmp_path / "kb.toml").write_text(toml + "\n")
    with pytest.raises(ConfigError, match=named):
        load_config(environ={"KB_INSTANCE_DIR": str(tmp_path)})


def test_create_app_without_arguments_reads_kb_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("KB_INSTANCE_DIR", str(tmp_path / "instance"))
    monkeypatch.setenv("KB_DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    monkeypatch.setenv("KB_INDEX_DIR", str(tmp_path / "env-index"))
    monkeypatch.setenv("KB_SECRET_KEY", "a-secret-from-the-environment-0123456789")
    monkeypatch.setenv("KB_BASE_URL", "https://help.example.com")
    monkeypatch.setenv("KB_INDEXER", "off")
    app = create_app()
    try:
        assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'env.sqlite3'}"
        assert app.config["INDEX_DIR"] == str(tmp_path / "env-index")
        assert app.config["SECRET_KEY"] == "a-secret-from-the-environment-0123456789"
        assert app.config["SESSION_COOKIE_SECURE"] is True  # https base URL
        assert (tmp_path / "env.sqlite3").exists()
        assert not (tmp_path / "instance" / "secret_key").exists()
    finally:
        close_app(app)


def test_secret_key_is_generated_once_private_and_reused(app_factory, tmp_path):
    first = app_factory(TESTING=False, SECRET_KEY=None)
    key_file = tmp_path / "instance" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.config["SECRET_KEY"] == key_file.read_text().strip()
    assert len(first.config["SECRET_KEY"]) >= 32
    second = app_factory(TESTING=False, SECRET_KEY=None)
    assert second.config["SECRET_KEY"] == first.config["SECRET_KEY"]


def test_kb_secret_key_wins_over_the_kept_key(app_factory, tmp_path, monkeypatch):
    generated = app_factory(TESTING=False, SECRET_KEY=None).config["SECRET_KEY"]
    monkeypatch.setenv("KB_SECRET_KEY", "the-operators-own-secret-key-0123456789")
    app = create_app({"INSTANCE_DIR": str(tmp_path / "instance"), "DATABASE_URL": f"sqlite:///{tmp_path / 'k.sqlite3'}",
                      "INDEX_DIR": str(tmp_path / "index"), "INDEXER": False})
    try:
        assert app.config["SECRET_KEY"] == "the-operators-own-secret-key-0123456789" != generated
    finally:
        close_app(app)


def test_a_too_short_kept_key_is_refused_with_advice(app_factory, tmp_path):
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "secret_key").write_text("short\n")
    with pytest.raises(ConfigError, match="KB_SECRET_KEY"):
        app_factory(TESTING=False, SECRET_KEY=None)


@pytest.mark.parametrize("url, advice", [
    ("postgresql+pg8000://kb:pw@127.0.0.1/kb", "pip install 'kb[postgres]'"),
    ("postgresql+nosuchdriver://kb:pw@127.0.0.1/kb", "postgresql+psycopg://"),
    ("mysql+mysqldb://kb:pw@127.0.0.1/kb", "install the driver for mysql+mysqldb"),
])
def test_a_database_driver_that_is_not_installed_says_what_to_install(app_factory, url, advice):
    with pytest.raises(ConfigError, match="KB_DATABASE_URL") as refused:
        app_factory(DATABASE_URL=url)
    assert advice in str(refused.value) and "pw@" not in str(refused.value)


def test_kb_without_psycopg_says_to_install_kb_postgres(tmp_path):
    # A real process in which importing psycopg fails exactly as it does when it is not installed.
    code = "import sys; sys.modules['psycopg'] = None; from kb.cli import main; sys.argv[0] = 'kb'; main()"
    env = {**os.environ, "KB_INSTANCE_DIR": str(tmp_path), "KB_DATABASE_URL": "postgresql+psycopg://kb:pw@127.0.0.1/kb"}
    result = subprocess.run([sys.executable, "-c", code, "db", "upgrade"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "psycopg" in line and "pip install 'kb[postgres]'" in line
