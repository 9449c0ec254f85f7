"""The message catalogs: complete, in step with the code, compiled at install and at start.

English is the source language in the code; every other language is one .po file under
kb/translations, and a fourth language needs nothing else.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.support import Translations

from kb.errors import ConfigError
from kb.i18n import TRANSLATIONS_DIR, compiling
from tests.conftest import REPO

CATALOGS = compiling.po_files(TRANSLATIONS_DIR)


def code_messages() -> set:
    """Every msgid the code and templates use, extracted as `pybabel extract -F babel.cfg` does."""
    with open(REPO / "babel.cfg", encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh, str(REPO / "babel.cfg"))
    return {message for _file, _line, message, _comments, _context in extract_from_dir(REPO, method_map, options_map)}


def catalog_messages(po: Path) -> dict:
    """msgid (a tuple for plurals) -> msgstr of one catalog."""
    return {m.id: m.string for m in compiling.read_catalog(po) if m.id}


def test_there_is_a_catalog_for_chinese_and_norwegian():
    assert {"zh", "nb"} <= set(CATALOGS)


@pytest.mark.parametrize("code", sorted(CATALOGS))
def test_every_catalog_is_complete_and_compiles(code, tmp_path):
    po = CATALOGS[code]
    assert compiling.catalog_problems(po) == []  # no fuzzy, untranslated or mismatched entries
    mo = compiling.compile_po(po, tmp_path / "messages.mo")
    with open(mo, "rb") as fh:
        compiled = Translations(fh)
    assert compiled.gettext("Hi, how can we help?") != "Hi, how can we help?"
    assert compiled.ngettext("%(num)d article", "%(num)d articles", 2) != "%(num)d articles"


@pytest.mark.parametrize("code", sorted(CATALOGS))
def test_catalogs_hold_exactly_the_messages_of_the_code(code):
    in_code, in_catalog = code_messages(), set(catalog_messages(CATALOGS[code]))
    assert in_code, "extraction found no messages: is babel.cfg right?"
    assert in_code - in_catalog == set(), "run the update commands in README, Translations"
    assert in_catalog - in_code == set(), "messages no longer in the code: run pybabel update"


@pytest.mark.parametrize("code", sorted(CATALOGS))
def test_translations_keep_the_html_and_placeholders_of_their_source(code):
    # Templates trust translated text as HTML (only the %(...)s values are escaped).
    for msgid, msgstr in catalog_messages(CATALOGS[code]).items():
        for source, text in zip(msgid if isinstance(msgid, tuple) else [msgid] * 9,
                                msgstr if isinstance(msgstr, tuple) else [msgstr]):
            assert sorted(re.findall(r"<[^>]*>", text)) == sorted(re.findall(r"<[^>]*>", source)), text
            assert set(re.findall(r"%\(\w+\)[sd]", text)) == set(re.findall(r"%\(\w+\)[sd]", source)), text
            # No quote or bracket of its own: the text may stand in an attribute value.
            assert text.count('"') <= source.count('"') and text.count("<") <= source.count("<"), text


def test_install_compiles_the_catalogs(tmp_path):
    """setup.py's build_py compiles every .po: into the build for a wheel, beside it for -e."""
    tree = tmp_path / "src"
    shutil.copy(REPO / "setup.py", tmp_path / "setup.py")
    shutil.copytree(REPO / "kb" / "i18n", tree / "kb" / "i18n", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(TRANSLATIONS_DIR, tree / "kb" / "translations", ignore=shutil.ignore_patterns("*.mo", "*.pot"))
    shutil.move(tmp_path / "setup.py", tree / "setup.py")
    run = dict(cwd=tree, capture_output=True, text=True, timeout=120)
    wheel = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path / "build")], **run)
    assert wheel.returncode == 0, wheel.stderr
    editable = subprocess.run([sys.executable, "-c", (
        "import runpy, sys; sys.argv = ['setup.py', '--version']; ns = runpy.run_path('setup.py')\n"
        "from setuptools.dist import Distribution\n"
        "cmd = ns['BuildWithCatalogs'](Distribution()); cmd.ensure_finalized(); cmd.editable_mode = True; cmd.run()")], **run)
    assert editable.returncode == 0, editable.stderr
    for code in CATALOGS:
        for mo in (tmp_path / "build" / "kb" / "translations" / code / "LC_MESSAGES" / "messages.mo",
                   tree / "kb" / "translations" / code / "LC_MESSAGES" / "messages.mo"):
            assert mo.read_bytes() == compiling.mo_bytes(CATALOGS[code])


def test_the_installed_catalogs_are_compiled_and_current():
    for po in CATALOGS.values():
        assert not compiling.is_stale(po), f"{po} is newer than its .mo: restart kb or run pybabel compile"


def copy_catalogs(tmp_path: Path) -> Path:
    """kb's catalogs in a folder of their own (a test may change them)."""
    folder = tmp_path / "translations"
    shutil.copytree(TRANSLATIONS_DIR, folder, ignore=shutil.ignore_patterns("*.mo", "*.pot"))
    return folder


def test_a_changed_catalog_is_compiled_at_start(app_factory, tmp_path):
    folder = copy_catalogs(tmp_path)
    po = folder / "nb" / "LC_MESSAGES" / "messages.po"
    po.write_text(po.read_text(encoding="utf-8").replace('"Hei! Hva kan vi hjelpe deg med?"', '"Hei, hva lurer du på?"'),
                  encoding="utf-8")
    app = app_factory(BABEL_TRANSLATION_DIRECTORIES=str(folder))
    assert "Hei, hva lurer du på?" in app.test_client().get("/nb/").text
    assert not compiling.is_stale(po)


def test_a_language_without_a_catalog_is_refused_at_start(app_factory):
    with pytest.raises(ConfigError, match=r"KB_LANGUAGES: kb has no translation for 'fr'.*fr/LC_MESSAGES/messages\.po"):
        app_factory(LANGUAGES="en,fr")


def test_a_fourth_language_is_a_file(app_factory, tmp_path, make_article):
    folder = copy_catalogs(tmp_path)
    german = folder / "de" / "LC_MESSAGES" / "messages.po"
    german.parent.mkdir(parents=True)
    german.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n"Language: de\\n"\n\n'
                      'msgid "Hi, how can we help?"\nmsgstr "Hallo, wie können wir helfen?"\n\n'
                      'msgid "Search"\nmsgstr "Suchen"\n', encoding="utf-8")
    app = app_factory(LANGUAGES="en,zh,nb,de", BABEL_TRANSLATION_DIRECTORIES=str(folder))
    client = app.test_client()
    html = client.get("/de/").text
    assert '<html lang="de" dir="ltr">' in html and "Hallo, wie können wir helfen?" in html and ">Suchen<" in html
    assert 'hreflang="de" rel="nofollow">Deutsch</a>' in client.get("/zh/").text
    assert client.get("/", headers={"Accept-Language": "de-AT, en;q=0.5"}).location == "/de/"
    assert "/de/sitemap.xml" in client.get("/sitemap.xml").text
