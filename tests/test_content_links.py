"""`kb import` and `kb export` stay inside their folder: real symlinks, loops and FIFOs.

A link that leaves the folder, a loop, a broken link and anything that is not a regular file is
refused with its name and reason, and everything else still goes through.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from kb.cli import cli
from kb.content import export_path, import_path
from kb.errors import KBError
from kb.models import Article
from tests.conftest import REPO, TEST_SECRET


def article_text(slug: str, title: str | None = None) -> str:
    """A minimal valid article file."""
    return f"---\ntitle: {title or slug.title()}\nslug: {slug}\nlang: en\n---\nAbout {slug}.\n"


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder next to the one kb works on, with a file and a sub-folder kb must never touch."""
    folder = tmp_path / "outside"
    (folder / "more").mkdir(parents=True)
    (folder / "secret.md").write_text(article_text("secret"), encoding="utf-8")
    (folder / "more" / "hidden.md").write_text(article_text("hidden"), encoding="utf-8")
    return folder


@pytest.fixture
def folder(tmp_path, outside) -> Path:
    """An article folder with one good file and every kind of trap."""
    path = tmp_path / "articles"
    (path / "sub").mkdir(parents=True)
    (path / "good.md").write_text(article_text("good"), encoding="utf-8")
    (path / "sub" / "inner.md").write_text(article_text("inner"), encoding="utf-8")
    (path / "to-secret.md").symlink_to(outside / "secret.md")
    (path / "to-outside-folder").symlink_to(outside / "more")
    (path / "loop-a.md").symlink_to(path / "loop-b.md")
    (path / "loop-b.md").symlink_to(path / "loop-a.md")
    (path / "self.md").symlink_to("self.md")
    (path / "gone.md").symlink_to(path / "nowhere.md")
    (path / "alias.md").symlink_to("sub/inner.md")  # inside the folder: fine, read once
    os.mkfifo(path / "pipe.md")
    return path


def slugs(session) -> list[str]:
    """The slugs of every stored article, sorted."""
    return sorted(session.scalars(sa.select(Article.slug)))


def test_import_refuses_links_out_loops_and_fifos_by_name_and_imports_the_rest(session, folder):
    report = import_path(session, folder)
    assert slugs(session) == ["good", "inner"]
    reasons = {Path(file).name: reason for file, reason in report.errors}
    assert set(reasons) == {"to-secret.md", "to-outside-folder", "loop-a.md", "loop-b.md", "self.md", "gone.md",
                            "pipe.md"}
    assert "outside" in reasons["to-secret.md"] and "does not follow links" in reasons["to-secret.md"]
    assert "outside" in reasons["to-outside-folder"]
    assert "loop" in reasons["loop-a.md"] and "loop" in reasons["self.md"]
    assert "broken link" in reasons["gone.md"]
    assert "FIFO" in reasons["pipe.md"] and "not a regular file" in reasons["pipe.md"]
    assert (report.created, report.failed) == (2, 7)


def test_import_of_a_named_fifo_is_a_clear_error(session, tmp_path):
    os.mkfifo(tmp_path / "pipe.md")
    with pytest.raises(KBError, match="not a regular file or a folder"):
        import_path(session, tmp_path / "pipe.md")


def test_import_follows_the_folder_the_user_named_even_through_a_link(session, folder, tmp_path):
    (tmp_path / "named").symlink_to(folder)
    report = import_path(session, tmp_path / "named")
    assert slugs(session) == ["good", "inner"] and report.failed == 7


@pytest.fixture
def exported(session, make_article):
    """Three articles to export."""
    for slug in ("alpha", "beta", "gamma"):
        make_article(slug.title(), slug=slug)


def test_export_never_writes_through_a_link_out_of_the_folder(session, exported, tmp_path, outside):
    out = tmp_path / "out"
    out.mkdir()
    (out / "alpha.md").symlink_to(outside / "secret.md")
    (out / "beta.md").symlink_to(outside / "more")
    report = export_path(session, out)
    assert (outside / "secret.md").read_text(encoding="utf-8") == article_text("secret")  # untouched
    assert sorted(p.name for p in (outside / "more").iterdir()) == ["hidden.md"]
    assert {Path(f).name for f, _ in report.errors} == {"alpha.md", "beta.md"}
    assert all("outside" in reason for _, reason in report.errors)
    assert report.written == 1 and (out / "gamma.md").read_text(encoding="utf-8").startswith("---\ntitle: Gamma")
    assert (out / "alpha.md").is_symlink()  # left for a person to look at


def test_export_refuses_loops_and_fifos_and_replaces_links_inside(session, exported, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "alpha.md").symlink_to("alpha.md")
    os.mkfifo(out / "beta.md")
    (out / "gamma.md").symlink_to("notes.md")  # inside: replaced, never written through
    (out / "notes.md").write_text("my notes", encoding="utf-8")
    report = export_path(session, out)
    reasons = {Path(f).name: reason for f, reason in report.errors}
    assert "loop" in reasons["alpha.md"] and "FIFO" in reasons["beta.md"]
    assert (out / "notes.md").read_text(encoding="utf-8") == "my notes"
    assert not (out / "gamma.md").is_symlink() and "Gamma" in (out / "gamma.md").read_text(encoding="utf-8")
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_kb_export_names_the_refused_file_exits_1_and_does_not_hang_on_a_fifo(tmp_path, outside):
    env = {**os.environ, "KB_INSTANCE_DIR": str(tmp_path / "instance"), "KB_SECRET_KEY": TEST_SECRET,
           "KB_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}", "KB_INDEX_DIR": str(tmp_path / "index")}
    source = tmp_path / "source"
    source.mkdir()
    for slug in ("alpha", "beta"):
        (source / f"{slug}.md").write_text(article_text(slug), encoding="utf-8")
    kb = [sys.executable, "-m", "kb"]
    subprocess.run([*kb, "import", str(source)], env=env, cwd=REPO, check=True, capture_output=True, timeout=120)
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "alpha.md")
    (out / "beta.md").symlink_to(outside / "secret.md")
    done = subprocess.run([*kb, "export", str(out)], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert f"refused {out / 'alpha.md'}: a FIFO" in done.stderr
    assert f"refused {out / 'beta.md'}: a link to {outside / 'secret.md'}" in done.stderr
    assert "Traceback" not in done.stderr
    assert (outside / "secret.md").read_text(encoding="utf-8") == article_text("secret")


def test_kb_import_lists_refused_files_and_exits_1(runner, tmp_path, folder, monkeypatch):
    for name, value in {"KB_INSTANCE_DIR": tmp_path / "instance", "KB_SECRET_KEY": TEST_SECRET,
                        "KB_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
                        "KB_INDEX_DIR": tmp_path / "index"}.items():
        monkeypatch.setenv(name, str(value))
    result = runner.invoke(cli, ["import", str(folder)])
    assert result.exit_code == 1
    assert "2 created" in result.stdout and "7 failed" in result.stdout
    assert f"{folder / 'to-secret.md'}: a link to" in result.stderr
