"""The ``kb`` command: thin click wrappers over functions that tests call directly.

Every command builds the app with ``kb.web.create_app`` (defaults, config file, ``KB_``
variables). Only ``kb serve`` runs the background indexer thread. Errors kb can explain are
printed as one line on stderr with exit status 1, never as a traceback.
"""

from __future__ import annotations

import importlib
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import click
import sqlalchemy as sa
from flask import Flask

from kb import content, search
from kb.errors import KBError

NO_INDEXER = {"INDEXER": False, "JOBS_RUNNER": False}


class KBGroup(click.Group):
    """A click group that turns kb's own errors into a one-line message and exit status 1."""

    # Commands whose imports are heavy (scikit-learn) load only when they are asked for.
    lazy_commands = {"match": ("kb.autoreply.match_command", "match_command"),
                     "autoreply": ("kb.autoreply_command", "autoreply_command"),
                     "jobs": ("kb.jobs_command", "jobs_command"),
                     "user": ("kb.user_command", "user_command"),
                     "sample": ("kb.sample_command", "sample_command"),
                     "doctor": ("kb.doctor_command", "doctor_command")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, the lazy ones included."""
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """The command called ``name``, importing a lazy one on first use."""
        if name in self.lazy_commands:
            module, attribute = self.lazy_commands[name]
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; explain KBError, database and file-system errors without a traceback."""
        try:
            return super().invoke(ctx)
        except KBError as exc:
            raise click.ClickException(str(exc)) from exc
        except sa.exc.SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise click.ClickException(f"database error: {detail} (check KB_DATABASE_URL)") from exc
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from exc


def make_app(**overrides: Any) -> Flask:
    """The app for a command, from defaults, the config file and ``KB_`` variables."""
    from kb.web import create_app

    return create_app(overrides or None)


def close_app(app: Flask) -> None:
    """Stop the app's background work and release its database connections."""
    from kb.db import get_db

    from kb import jobs, search

    jobs.runner.close_app(app)
    search.close_app(app)
    get_db(app).engine.dispose()


@contextmanager
def command_app(**overrides: Any) -> Iterator[Flask]:
    """An app (indexer off unless asked) inside an app context, closed afterwards."""
    app = make_app(**{**NO_INDEXER, **overrides})
    try:
        with app.app_context():
            yield app
    finally:
        close_app(app)


@contextmanager
def progress_bar(label: str) -> Iterator[content.Progress]:
    """A ``progress(done, total)`` callback: a click progress bar on a terminal, else a line each tenth."""
    if not sys.stderr.isatty():
        yield _progress_lines(label)
        return
    bars: list = []

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(click.progressbar(length=max(total, 1), label=label, file=sys.stderr))
            bars[0].__enter__()
        bars[0].update(done - bars[0].pos)

    try:
        yield update
    finally:
        if bars:
            bars[0].__exit__(None, None, None)


def _progress_lines(label: str) -> content.Progress:
    """``progress(done, total)`` writing "label: done / total" to stderr at each further tenth (logs, cron mail)."""
    shown = [-1]

    def update(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth > shown[0]:
            shown[0] = tenth
            click.echo(f"{label}: {done:,} / {total:,}", err=True)

    return update


@click.group(cls=KBGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kb")
def cli() -> None:
    """kb: a self-service knowledge base for customer-support teams.

    Settings come from defaults, the optional config file and KB_ environment
    variables (see the README).
    """


def main() -> None:
    """Entry point of the ``kb`` console script and ``python -m kb``."""
    cli(prog_name="kb")


def first_start(app: Flask) -> None:
    """On an empty database: import the starter articles, then the sample follow-ups (KB_SAMPLE_DATA)."""
    from kb.followup import sample

    report = content.bootstrap(app)
    if report is None:
        return
    click.echo(f"Imported {report.created} starter articles.")
    for file, reason in report.errors:
        click.echo(f"  skipped {file}: {reason}", err=True)
    if sample.bootstrap(app) is not None:
        click.echo("Loaded sample follow-up data (remove with `kb sample remove`)")


def run_serve(app: Flask, sock, host: str, port: int, debug: bool) -> None:
    """Set up an empty database (first_start), then serve the app on the listening ``sock``."""
    from kb import devserver

    first_start(app)
    devserver.serve(app, sock, host, port, debug=debug, announce=click.echo)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--debug", is_flag=True, help="Show the interactive debugger on errors (never in production).")
def serve(host: str, port: int, debug: bool) -> None:
    """Serve the portal and the editor.

    The first run on an empty database imports and indexes the starter articles, and
    loads sample follow-up data (KB_SAMPLE_DATA; `kb sample remove` deletes it).
    For production, run gunicorn instead (see the README).
    """
    from kb import devserver

    sock = devserver.listen(host, port)  # a busy port fails now, before the slow start-up
    try:
        app = make_app()
        try:
            run_serve(app, sock, host, port, debug)
        finally:
            close_app(app)
    finally:
        sock.close()


def run_import(app: Flask, path: Path, progress: content.Progress | None = None) -> content.ImportReport:
    """Import the article files under ``path`` and bring the search index up to date."""
    from kb.db import session_scope

    with session_scope(app) as session:
        report = content.import_path(session, path, progress)
    search.process_outbox(app)
    return report


@cli.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def import_command(path: Path) -> None:
    """Import Markdown articles from PATH, upserting by slug.

    PATH is a folder (searched recursively for .md files) or one .md file. Articles are matched by slug: new ones are created, changed ones updated. They are
    published unless the front matter says status: draft (or archived). Running it twice
    changes nothing. A broken file is listed with the reason and the others still import;
    the exit status is then 1.
    """
    with command_app() as app, progress_bar("Importing") as progress:
        report = run_import(app, path, progress)
    click.echo(f"Imported: {report.created} created, {report.updated} updated, "
               f"{report.unchanged} unchanged, {report.failed} failed")
    for file, reason in report.errors:
        click.echo(f"  {file}: {reason}", err=True)
    if report.errors:
        sys.exit(1)


def run_export(app: Flask, path: Path) -> content.ExportReport:
    """Write every article to ``path`` as ``<slug>.md``; the report lists files kb refused to replace."""
    from kb.db import session_scope

    with session_scope(app) as session:
        return content.export_path(session, path)


@cli.command("export")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
def export_command(path: Path) -> None:
    """Export every article to the folder PATH.

    Each article (any status) becomes PATH/<slug>.md in the format `kb import` reads. A link out
    of the folder, a FIFO or a device at a file's name is left alone and listed with the reason;
    the exit status is then 1.
    """
    with command_app() as app:
        report = run_export(app, path)
    click.echo(f"Exported {report.written} articles to {path}")
    for file, reason in report.errors:
        click.echo(f"  refused {file}: {reason}", err=True)
    if report.errors:
        sys.exit(1)


@cli.command()
def reindex() -> None:
    """Rebuild the search index from the database."""
    from kb.db import session_scope

    with search.no_rebuild_at_start(), command_app() as app:  # one rebuild, not one at start and one here
        with progress_bar("Indexing") as progress:
            started = time.perf_counter()
            count = search.rebuild(app, progress=progress)
        click.echo(f"Indexed {count} published articles in {time.perf_counter() - started:.1f}s")
        with session_scope(app) as session:
            for article in search.skipped_articles(session):  # the rest went in: say which did not, and why
                click.echo(f"Skipped {article.slug}: {article.index_error}")



@cli.group()
def db() -> None:
    """Manage the database."""


def run_db_upgrade() -> str:
    """Apply pending migrations to the configured database; returns its URL without password."""
    from kb import db as kb_db
    from kb.config import load_config

    url = load_config()["DATABASE_URL"]
    engine = kb_db.make_engine(url)
    try:
        kb_db.upgrade(engine)
    finally:
        engine.dispose()
    return sa.make_url(url).render_as_string(hide_password=True)


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply pending database migrations (kb also does this on start unless KB_AUTO_MIGRATE=0)."""
    url = run_db_upgrade()
    click.echo(f"Database {url} is up to date.")
