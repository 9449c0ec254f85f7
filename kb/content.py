"""Articles as files: Markdown with YAML front matter, imported and exported by slug.

A file looks like this (``status`` is optional on import and always written on export)::

    ---
    title: How do I reset my password?
    slug: reset-password
    lang: en
    category: Account
    tags: [password, login]
    status: published
    ---
    The Markdown body...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa
import sqlalchemy.orm as so
import yaml
from flask import Flask

from kb import safefiles, search
from kb.articles import (ArticleDraft, article_by_old_slug, create_article, get_article, set_status, slugify,
                         update_article)
from kb.db import session_scope
from kb.errors import ImportFileError, KBError, ValidationError
from kb.models import STATUSES, Article
from kb.rendering import prerender

KEYS = ("title", "slug", "lang", "category", "tags", "status")
IMPORT_NOTE = "Imported from file"
BATCH_SIZE = 200
Progress = Callable[[int, int], None]

# YAML 1.1 turns bare yes/no/on/off, numbers and dates into bool/int/float/date. In front
# matter every value is text (``lang: no`` means Norwegian), so only null keeps its meaning.
_TEXT_ONLY = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
              "tag:yaml.org,2002:timestamp"}


class _FrontMatterLoader(yaml.SafeLoader):
    """SafeLoader that reads every plain scalar as a string (null excepted)."""


_FrontMatterLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _TEXT_ONLY]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass
class ImportReport:
    """What an import did: counts per outcome and each failed file with its reason."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """How many files could not be imported."""
        return len(self.errors)


@dataclass
class ExportReport:
    """What an export did: how many files it wrote, and each file it refused to write, with why."""

    written: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ArticleFile:
    """One parsed article file."""

    draft: ArticleDraft
    status: str


def split_front_matter(text: str) -> tuple[str, str]:
    """Split ``---`` front matter from the body; ImportFileError if the fences are missing."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines or lines[0].rstrip() != "---":
        raise ImportFileError("no front matter: the file must start with a line '---'")
    for number, line in enumerate(lines[1:], start=1):
        if line.rstrip() in ("---", "..."):
            return "\n".join(lines[1:number]), "\n".join(lines[number + 1:])
    raise ImportFileError("the front matter has no closing '---' line")


def _text(value: Any, key: str) -> str:
    """A front-matter value as text; lists and mappings are refused."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise ImportFileError(f"'{key}' must be a single value, not a list or mapping")
    if isinstance(value, bool):  # only reachable through an explicit !!bool tag
        return "true" if value else "false"
    return str(value)


def _tags(value: Any) -> list[str]:
    """Tags as a list of strings, from a YAML list or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, list):
        return [_text(tag, "tags") for tag in value]
    if isinstance(value, dict):
        raise ImportFileError("'tags' must be a list such as [billing, refunds]")
    return _text(value, "tags").split(",")


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A one-line YAML error with the line number counted in the whole file."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    return f"{problem} (line {mark.line + 2})" if mark is not None else problem


def load_front_matter(source: str) -> dict[str, Any]:
    """Parse the YAML between the fences into a mapping with only known keys."""
    try:
        meta = yaml.load(source, Loader=_FrontMatterLoader) or {}
    except yaml.YAMLError as exc:
        raise ImportFileError(f"the front matter is not valid YAML: {_yaml_problem(exc)}") from exc
    if not isinstance(meta, dict):
        raise ImportFileError("the front matter must be 'key: value' lines (a YAML mapping)")
    unknown = sorted(str(key) for key in meta if key not in KEYS)
    if unknown:
        raise ImportFileError(f"unknown front-matter key(s) {', '.join(unknown)}: use only {', '.join(KEYS)}")
    return meta


def parse_article(text: str, default_slug: str) -> ArticleFile:
    """Parse an article file's text; ImportFileError or ValidationError says what is wrong."""
    source, body = split_front_matter(text)
    meta = load_front_matter(source)
    title = _text(meta.get("title"), "title").strip()
    if not title:
        raise ImportFileError("the front matter has no 'title'")
    status = _text(meta.get("status"), "status").strip().lower() or "published"
    if status not in STATUSES:
        raise ImportFileError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
    lang = False if meta.get("lang") is False else _text(meta.get("lang"), "lang")
    slug = _text(meta.get("slug"), "slug").strip() or default_slug
    if not slug:
        raise ImportFileError("no 'slug' in the front matter and none can be made from the file name")
    draft = ArticleDraft(title=title, body_md=body, lang=lang, category=_text(meta.get("category"), "category"),
                         tags=_tags(meta.get("tags")), slug=slug)
    return ArticleFile(draft.clean(), status)


def read_article_file(path: Path) -> ArticleFile:
    """Read and parse one ``.md`` file; the slug defaults to one made from the file name."""
    try:
        text = safefiles.read_regular(path).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"not UTF-8 text (byte {exc.start} cannot be decoded): save the file as UTF-8") from exc
    except safefiles.UnsafePath as exc:
        raise ImportFileError(str(exc)) from exc
    except OSError as exc:
        raise ImportFileError(f"cannot read the file: {exc.strerror}") from exc
    return parse_article(text, slugify(path.stem))


def article_files(path: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """The ``.md`` files to import (``path`` itself, or every one below the folder, sorted), and
    the ones refused with their reasons: links out of the folder, loops, FIFOs and devices.

    ``path`` itself may be a link: the user named it.
    """
    if path.is_file():
        return [path.resolve()], []
    if path.is_dir():
        return safefiles.find_files(path, ".md")
    if path.exists():
        raise KBError(f"{path} is not a regular file or a folder: give a folder of .md files or one .md file")
    raise KBError(f"{path} does not exist: give a folder of .md files or one .md file")


def _find_by_slug(session: so.Session, slug: str) -> Article | None:
    """The article using ``slug`` now, or the one that used it before a rename."""
    return get_article(session, slug) or article_by_old_slug(session, slug)


def upsert_article(session: so.Session, parsed: ArticleFile) -> str:
    """Create or update the article with the file's slug; returns created, updated or unchanged."""
    article = _find_by_slug(session, parsed.draft.slug)
    if article is None:
        create_article(session, parsed.draft, status=parsed.status, note=IMPORT_NOTE)
        return "created"
    changed = update_article(session, article, parsed.draft, note=IMPORT_NOTE)
    changed = set_status(session, article, parsed.status) or changed
    return "updated" if changed else "unchanged"


def _begin_writing(session: so.Session) -> None:
    """On SQLite, take the write lock before the first savepoint.

    pysqlite emits no BEGIN before a SAVEPOINT, so releasing the first savepoint would
    commit on its own, and a read-then-write transaction fails at once ("database is
    locked") if the indexer thread commits in between. BEGIN IMMEDIATE waits for the lock
    instead (busy timeout) and keeps the import one transaction per batch.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    raw = connection.connection.dbapi_connection
    if raw is not None and not raw.in_transaction:
        raw.execute("BEGIN IMMEDIATE")


def _prerender(files: list[Path]) -> None:
    """Render the bodies of the next files in parallel before their (one by one) upsert renders them."""
    bodies = []
    for file in files:
        try:
            bodies.append(read_article_file(file).draft.body_md)
        except KBError:
            pass  # reported by the import itself
    prerender(bodies)


def import_path(session: so.Session, path: str | Path, progress: Progress | None = None) -> ImportReport:
    """Upsert every article file under ``path`` by slug and commit; a bad file is reported, not fatal."""
    files, refused = article_files(Path(path))
    report = ImportReport(errors=list(refused))
    seen: dict[str, Path] = {}
    for done, file in enumerate(files, start=1):
        if done % BATCH_SIZE == 1:
            session.commit()  # short write transactions, so a running server's indexer is not starved
            _prerender(files[done - 1:done - 1 + BATCH_SIZE])
            _begin_writing(session)
        try:
            parsed = read_article_file(file)
            if parsed.draft.slug in seen:
                raise ImportFileError(f"slug {parsed.draft.slug!r} is also used by {seen[parsed.draft.slug]}")
            with session.begin_nested():  # a savepoint: one bad file cannot undo the others
                outcome = upsert_article(session, parsed)
            seen[parsed.draft.slug] = file
            setattr(report, outcome, getattr(report, outcome) + 1)
        except (ImportFileError, ValidationError) as exc:
            report.errors.append((str(file), str(exc)))
        except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
            report.errors.append((str(file), f"the database refused it: {str(exc.orig).splitlines()[0]}"))
        if progress:
            progress(done, len(files))
    session.commit()
    return report


def dump_article(article: Article) -> str:
    """An article in the file format; the same article always gives the same bytes."""
    meta = {"title": article.title, "slug": article.slug, "lang": article.lang, "category": article.category,
            "tags": list(article.tags or []), "status": article.status}
    # default_flow_style=None writes the tag list inline; safe_dump quotes values YAML
    # would misread (no, yes, 2024...); the huge width keeps every value on one line.
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, default_flow_style=None, width=10**9)
    return f"---\n{front}---\n{article.body_md}"


def export_path(session: so.Session, path: str | Path) -> ExportReport:
    """Write every article (any status) to ``path/<slug>.md``; a file kb must not replace is reported.

    Each file is replaced by renaming a new one over it, so a link planted at its name is never
    written through; a link out of the folder, a FIFO or a device there is refused by name.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise KBError(f"{folder} is a file: give a folder to export into")
    folder.mkdir(parents=True, exist_ok=True)
    report = ExportReport()
    for article in session.scalars(sa.select(Article).order_by(Article.slug)):
        name = f"{article.slug}.md"
        try:
            safefiles.write_inside(folder, name, dump_article(article).encode("utf-8"))
            report.written += 1
        except safefiles.UnsafePath as exc:
            report.errors.append((str(folder / name), str(exc)))
    return report


def bootstrap(app: Flask) -> ImportReport | None:
    """On an empty database, import the starter articles and index them; None if nothing to do."""
    starter = app.config.get("STARTER_ARTICLES_DIR")
    if not starter or not Path(starter).is_dir():
        return None
    with session_scope(app) as session:
        if session.scalar(sa.select(sa.func.count(Article.id))):
            return None
        report = import_path(session, starter)
    search.process_outbox(app)
    return report
