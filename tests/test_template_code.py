"""Compiled templates kept in INSTANCE_DIR (kb.web.templatecode): a second process loads them instead of
compiling, and a folder or file that cannot be used costs the compiling, never a page."""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path

import pytest

from kb.web import templatecode

PAGES = ["/en/", "/en/search?q=refund", "/nb/search?q=faktura"]


def _compiled(app, monkeypatch) -> list[str]:
    """The templates ``app`` compiles from now on, by name."""
    names = []
    compile_ = app.jinja_env.compile

    def counted(source, name=None, filename=None, raw=False, defer_init=False):
        names.append(name)
        return compile_(source, name, filename, raw, defer_init)
    monkeypatch.setattr(app.jinja_env, "compile", counted)
    return names


def _folder(app):
    """The app's folder of compiled templates."""
    return app.jinja_env.bytecode_cache.directory


def test_a_second_process_loads_the_compiled_templates(app, app_factory, monkeypatch):
    first = _compiled(app, monkeypatch)
    pages = [app.test_client().get(url).get_data(as_text=True) for url in PAGES]
    assert "portal/search.html" in first and "base.html" in first
    worker = app_factory()  # same instance folder: another gunicorn worker, or the next start
    again = _compiled(worker, monkeypatch)
    assert [worker.test_client().get(url).get_data(as_text=True) for url in PAGES][0] == pages[0]
    assert again == []


def test_the_folder_is_kbs_users_alone(app):
    assert stat.S_IMODE(os.stat(_folder(app)).st_mode) == 0o700


def test_a_changed_template_is_compiled_again(app, app_factory, monkeypatch):
    app.test_client().get("/en/")
    worker = app_factory()
    loader_source = worker.jinja_env.loader.get_source

    def edited(environment, name):
        source, filename, uptodate = loader_source(environment, name)
        return (source + "\n{# edited #}" if name == "base.html" else source), filename, uptodate
    monkeypatch.setattr(worker.jinja_env.loader, "get_source", edited)
    compiled = _compiled(worker, monkeypatch)
    assert worker.test_client().get("/en/").status_code == 200
    assert compiled == ["base.html"]  # its checksum no longer matches; the others are loaded


def test_a_folder_that_cannot_be_made_only_costs_compiling(app_factory, tmp_path, caplog):
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / templatecode.FOLDER).write_text("a file where the folder should be")
    with caplog.at_level(logging.WARNING, logger=templatecode.__name__):
        app = app_factory()
    assert app.jinja_env.bytecode_cache is None
    assert "cannot create" in caplog.text
    assert app.test_client().get("/en/search?q=refund").status_code == 200


def test_a_folder_gone_after_start_only_costs_compiling(app, caplog):
    shutil.rmtree(_folder(app))
    with caplog.at_level(logging.WARNING, logger=templatecode.__name__):
        assert app.test_client().get("/en/search?q=refund").status_code == 200
    assert "could not keep a compiled template" in caplog.text


# Jinja itself turns away a file cut short in its code; a damaged checksum raised, and the page failed.
@pytest.mark.parametrize("damage, warned", [("truncated", False), ("garbage", True)])
def test_a_damaged_file_is_compiled_again(app, app_factory, monkeypatch, caplog, damage, warned):
    expected = app.test_client().get("/en/").get_data(as_text=True)
    files = list(Path(_folder(app)).iterdir())
    assert files
    for path in files:
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2] if damage == "truncated" else data[:60] + b"\x00garbage" * 40)
    worker = app_factory()
    compiled = _compiled(worker, monkeypatch)
    with caplog.at_level(logging.WARNING, logger=templatecode.__name__):
        assert worker.test_client().get("/en/").get_data(as_text=True) == expected
    assert "base.html" in compiled
    assert ("could not be read" in caplog.text) is warned
