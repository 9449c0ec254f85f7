"""Articles as files: import, export, the round trip and the first-run bootstrap."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from kb import search
from kb.articles import ArticleDraft, get_article, rename_slug
from kb.content import bootstrap, export_path, import_path
from kb.db import session_scope
from kb.errors import KBError
from kb.models import Article, IndexChange, Revision
from tests.conftest import REPO


def write(folder: Path, name: str, text: str) -> Path:
    """Write one article file (creating sub-folders) and return its path."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def article_text(title="Reset your password", slug="reset-password", extra="", body="Click *Forgot password*.\n"):
    """An article file with the usual front matter."""
    return (f"---\ntitle: {title}\nslug: {slug}\nlang: en\ncategory: Account\ntags: [password, login]\n"
            f"{extra}---\n{body}")


def count(session, model) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model))


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "articles"
    path.mkdir()
    return path


def test_import_creates_then_reports_updated_and_unchanged(session, folder):
    write(folder, "a.md", article_text())
    write(folder, "sub/b.md", article_text("Track an order", "track-order"))
    write(folder, "notes.txt", "not an article")
    report = import_path(session, folder)
    assert (report.created, report.updated, report.unchanged, report.errors) == (2, 0, 0, [])
    assert get_article(session, "track-order").status == "published"

    write(folder, "a.md", article_text(body="New text.\n"))
    report = import_path(session, folder)
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    article = get_article(session, "reset-password")
    assert article.body_md == "New text.\n"
    assert [r.number for r in article.revisions] == [1, 2]


def test_import_twice_changes_nothing(session, folder):
    for n in range(3):
        write(folder, f"a{n}.md", article_text(f"Article {n}", f"article-{n}"))
    import_path(session, folder)
    revisions, queued = count(session, Revision), count(session, IndexChange)
    report = import_path(session, folder)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 3)
    assert count(session, Revision) == revisions == 3
    assert count(session, IndexChange) == queued


def test_import_reports_progress(session, folder):
    for n in range(3):
        write(folder, f"a{n}.md", article_text(f"Article {n}", f"article-{n}"))
    calls = []
    import_path(session, folder, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("lang_line", ["lang: no", "lang: 'no'", "lang: nb", "lang: NO", "lang: nb-NO"])
def test_norwegian_aliases_including_yaml_false(session, folder, lang_line):
    write(folder, "nb.md", f"---\ntitle: Glemt passord\nslug: glemt-passord\n{lang_line}\n---\nTekst.\n")
    assert import_path(session, folder).errors == []
    assert get_article(session, "glemt-passord").lang == "nb"


def test_yaml_typed_values_become_text(session, folder):
    write(folder, "x.md", "---\ntitle: yes\nslug: typed\ncategory: 2024\ntags: [on, 1.5, 2024-01-31, off]\n---\nx\n")
    assert import_path(session, folder).errors == []
    article = get_article(session, "typed")
    assert (article.title, article.category, article.tags) == ("yes", "2024", ["on", "1.5", "2024-01-31", "off"])


def test_status_from_front_matter(session, folder):
    write(folder, "d.md", article_text("Draft one", "draft-one", "status: draft\n"))
    write(folder, "a.md", article_text("Old one", "old-one", "status: archived\n"))
    write(folder, "p.md", article_text("Plain one", "plain-one"))
    import_path(session, folder)
    statuses = {a.slug: a.status for a in session.scalars(sa.select(Article))}
    assert statuses == {"draft-one": "draft", "old-one": "archived", "plain-one": "published"}
    assert get_article(session, "draft-one").published_at is None

    write(folder, "d.md", article_text("Draft one", "draft-one"))  # status line removed: now published
    report = import_path(session, folder)
    assert (report.updated, report.unchanged) == (1, 2)
    assert get_article(session, "draft-one").status == "published"


def test_slug_defaults_to_file_name(session, folder):
    write(folder, "Gift Cards.md", "---\ntitle: Gift cards\n---\nBody\n")
    import_path(session, folder)
    assert get_article(session, "gift-cards").title == "Gift cards"


def test_single_file_path(session, folder):
    path = write(folder, "a.md", article_text())
    assert import_path(session, path).created == 1


def test_missing_path_is_a_clear_error(session, tmp_path):
    with pytest.raises(KBError, match="does not exist"):
        import_path(session, tmp_path / "nope")


BROKEN = {
    "bad-yaml.md": ("---\ntitle: [unclosed\nslug: x\n---\nBody\n", "not valid YAML"),
    "no-fence.md": ("title: No fences\n\nBody\n", "must start with a line '---'"),
    "unclosed.md": ("---\ntitle: Never closed\nslug: unclosed\nBody\n", "no closing '---'"),
    "no-title.md": ("---\nslug: no-title\nlang: en\n---\nBody\n", "no 'title'"),
    "list.md": ("---\n- title\n- slug\n---\nBody\n", "YAML mapping"),
    "bad-slug.md": ("---\ntitle: Bad slug\nslug: Not A Slug!\n---\nBody\n", "Slug"),
    "bad-status.md": ("---\ntitle: Bad status\nslug: bad-status\nstatus: live\n---\nBody\n", "unknown status 'live'"),
    "bad-lang.md": ("---\ntitle: Bad lang\nslug: bad-lang\nlang: english please\n---\nBody\n", "Language"),
    "bad-key.md": ("---\ntitle: Typo\nslug: typo\nstaus: draft\n---\nBody\n", "unknown front-matter key(s) staus"),
    "bad-tags.md": ("---\ntitle: Tags\nslug: bad-tags\ntags: {a: 1}\n---\nBody\n", "'tags' must be a list"),
    "title-list.md": ("---\ntitle: [a, b]\nslug: title-list\n---\nBody\n", "'title' must be a single value"),
}


def test_broken_files_are_named_with_reasons_and_others_import(session, folder):
    write(folder, "0-good.md", article_text())
    for name, (text, _reason) in BROKEN.items():
        write(folder, name, text)
    (folder / "latin1.md").write_bytes(article_text("Blåbær", "latin1").encode("latin-1"))
    write(folder, "z-dup.md", article_text("Same slug again", "reset-password"))
    write(folder, "zz-good.md", article_text("Track an order", "track-order"))

    report = import_path(session, folder)

    assert (report.created, report.failed) == (2, len(BROKEN) + 2)
    reasons = {Path(path).name: reason for path, reason in report.errors}
    for name, (_text, reason) in BROKEN.items():
        assert reason in reasons[name], (name, reasons[name])
    assert "not UTF-8" in reasons["latin1.md"]
    assert "also used by" in reasons["z-dup.md"] and "0-good.md" in reasons["z-dup.md"]
    assert sorted(session.scalars(sa.select(Article.slug))) == ["reset-password", "track-order"]
    assert count(session, Revision) == 2


def test_bad_yaml_reason_has_file_line_number(session, folder):
    write(folder, "bad.md", "---\ntitle: ok\nslug: fine\ncategory: a: b\n---\nBody\n")
    [(path, reason)] = import_path(session, folder).errors
    assert path.endswith("bad.md") and "line 4" in reason and "mapping values" in reason


def test_import_follows_a_renamed_slug(session, folder):
    write(folder, "a.md", article_text())
    import_path(session, folder)
    rename_slug(session, get_article(session, "reset-password"), "password-help")
    session.commit()
    report = import_path(session, folder)
    assert report.errors == [] and report.created == 0
    assert count(session, Article) == 1


def make_varied_articles(make_article):
    """Articles that stress the file format: languages, YAML look-alikes, punctuation, statuses."""
    make_article("Reset: your password, quickly", lang="en", category="Account: Login",
                 tags=["password", "#vip", "a, b", "it's", "no", "yes", "100%", "[x]"],
                 body_md="# Heading\n\n---\n\nText with --- and a list:\n\n- one\n- two\n")
    make_article("如何申请退款", lang="zh", category="退货与退款", tags=["退款", "退货"], body_md="退款将在5个工作日内到账。")
    make_article("Når får jeg pengene tilbake?", lang="nb", category="no", tags=["refusjon"], body_md="Innen 14 dager.")
    make_article("yes", status="draft", category="", tags=[], body_md="")
    make_article("'Quoted' \"title\" & more", status="archived", category="2024", tags=["on"], body_md="x  \n\n\n")


def test_export_import_export_is_byte_identical(app_factory, session, make_article, tmp_path):
    make_varied_articles(make_article)
    first, second = tmp_path / "first", tmp_path / "second"
    assert export_path(session, first).written == 5

    other = app_factory(DATABASE_URL=f"sqlite:///{tmp_path / 'other.sqlite3'}", INDEX_DIR=str(tmp_path / "other-index"))
    with session_scope(other) as other_session:
        report = import_path(other_session, first)
        assert (report.created, report.errors) == (5, [])
        assert export_path(other_session, second).written == 5

    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    report = import_path(session, first)  # back into the original database: nothing to do
    assert (report.unchanged, report.updated, report.created) == (5, 0, 0)


def test_export_format(session, make_article, tmp_path):
    make_article("Reset: your password", lang="nb", category="no", tags=["a", "b c"], status="draft",
                 body_md="Body\n", slug="reset")
    export_path(session, tmp_path / "out")
    assert (tmp_path / "out" / "reset.md").read_text(encoding="utf-8") == (
        "---\ntitle: 'Reset: your password'\nslug: reset\nlang: nb\ncategory: 'no'\n"
        "tags: [a, b c]\nstatus: draft\n---\nBody\n")


def test_export_into_a_file_is_refused(session, tmp_path):
    target = tmp_path / "file.md"
    target.write_text("x")
    with pytest.raises(KBError, match="is a file"):
        export_path(session, target)


def test_starter_articles_import_cleanly(session):
    report = import_path(session, REPO / "articles")
    assert report.errors == []
    langs = list(session.scalars(sa.select(Article.lang).where(Article.status == "published")))
    assert report.created == len(langs) >= 30
    assert langs.count("zh") >= 4 and langs.count("nb") >= 4
    assert all(a.category and a.tags for a in session.scalars(sa.select(Article)))


def test_bootstrap_imports_and_indexes_starter_articles_once(app):
    report = bootstrap(app)
    assert report is not None and report.created >= 30 and report.errors == []
    with app.app_context():
        assert search.query_index("password", lang="en").total >= 1
        assert search.query_index("退款", lang="zh").total >= 1
    assert bootstrap(app) is None  # the database is no longer empty


def test_bootstrap_without_starter_folder_does_nothing(app_factory, tmp_path):
    app = app_factory(STARTER_ARTICLES_DIR=str(tmp_path / "missing"))
    assert bootstrap(app) is None
    with session_scope(app) as session:
        assert count(session, Article) == 0


@pytest.mark.postgres
def test_import_on_postgres_survives_a_row_the_database_refuses(app_factory, pg_database_url, folder):
    """On PostgreSQL a failed INSERT aborts the transaction: the per-file savepoint keeps the rest."""
    app = app_factory(DATABASE_URL=pg_database_url)
    write(folder, "a-good.md", article_text())
    write(folder, "b-too-long.md", article_text("Long category", "long-category").replace("Account", "x" * 200))
    write(folder, "c-good.md", article_text("Track an order", "track-order"))
    with session_scope(app) as session:
        report = import_path(session, folder)
        assert report.created == 2
        [(path, reason)] = report.errors
        assert path.endswith("b-too-long.md") and "database refused" in reason
        assert sorted(session.scalars(sa.select(Article.slug))) == ["reset-password", "track-order"]
        assert import_path(session, folder).unchanged == 2
