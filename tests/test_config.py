"""Settings: documented in the README, merged in the documented order, and refused when malformed."""

from __future__ import annotations

import re
import stat

import pytest

from kb.config import REPO_ROOT, SETTINGS, load_config
from kb.errors import ConfigError
from kb.web import create_app
from tests.conftest import REPO, close_app

README_HEADER = "| Environment variable | Default | What it does |"


def readme_settings() -> dict[str, str]:
    """The README's settings table as {variable: default cell}."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert README_HEADER in lines, f"README.md has no settings table starting with {README_HEADER!r}"
    rows: dict[str, str] = {}
    for line in lines[lines.index(README_HEADER) + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert len(cells) == 3, f"README settings row should have 3 cells: {line}"
        rows[cells[0].strip("`")] = cells[1]
    return rows


def documented_default(default) -> str:
    """How the README writes a default: in backticks, with the checkout folder shown as {repo}."""
    if default is None:
        return "*(none)*"
    if default == "":
        return "*(empty)*"
    if isinstance(default, bool):
        return "`true`" if default else "`false`"
    return "`" + str(default).replace(str(REPO_ROOT), "{repo}") + "`"


def test_every_setting_is_documented_in_the_readme_with_its_default():
    rows = readme_settings()
    for setting in SETTINGS:
        assert setting.env in rows, f"{setting.env} is missing from the README's settings table"
        assert rows[setting.env] == documented_default(setting.default), f"README default of {setting.env}"
    assert set(rows) == {s.env for s in SETTINGS}, "the README documents settings kb does not have"


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
