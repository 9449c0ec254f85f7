"""`kb autoreply`: run the auto-responder worker until stopped, or once with --once."""

from __future__ import annotations

import logging
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Mapping

import click

from kb.autoreply.requirements import check_settings

def summary_line(counts: Counter[str], dry_run: bool) -> str:
    """One line saying what the worker did."""
    handled = sum(counts[s] for s in ("replied", "person", "skipped", "retry", "new", "sending"))
    text = (f"Handled {handled} email(s): {counts['replied']} replied, {counts['person']} left for a person, "
            f"{counts['skipped']} skipped, {counts['retry']} to retry")
    if dry_run:
        text += f", {counts['new']} would get a reply (dry run: nothing sent, mailbox unchanged)"
    if counts["interrupted"]:
        text += f"; {counts['interrupted']} given back unfinished when stopped (handled at the next start)"
    return text


@contextmanager
def stop_on_signals(worker) -> Iterator[threading.Event]:
    """SIGTERM / Ctrl-C stop the worker within seconds; an email in the middle of processing is given back."""
    stop = worker.stop
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, _frame) -> None:
        worker.interrupt()  # first: the message below may collide with a log line being written
        try:
            click.echo(f"Stopping ({signal.Signals(signum).name}); an email in the middle of processing is "
                       "given back...", err=True)
        except RuntimeError:  # "reentrant call": stderr was mid-write when the signal came
            pass

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_autoreply(app, *, once: bool, dry_run: bool, **worker_options) -> Counter[str]:
    """Build the worker for ``app`` and run it once or until stopped; returns the counts."""
    from kb.autoreply.worker import Worker

    check_settings(app.config, dry_run)
    worker = Worker(app, dry_run=dry_run, **worker_options)
    if once:
        return worker.run_once()
    with stop_on_signals(worker) as stop:
        worker.run_forever(stop)
    return worker.counts


@click.command("autoreply")
@click.option("--once", is_flag=True, help="Handle the mail that is waiting, then exit.")
@click.option("--dry-run", is_flag=True,
              help="Shadow mode: decide and record everything, but send nothing and change nothing in the mailbox.")
def autoreply_command(once: bool, dry_run: bool) -> None:
    """Answer support email with the right articles (KB_IMAP_*, KB_SMTP_* settings).

    Runs until stopped (SIGTERM or Ctrl-C end it within seconds), waiting with
    IDLE between emails. Every email ends in one recorded decision, shown on
    /agent/mail: replied, left for a person, or skipped, each with its reason.
    Each email is read in a child process with a time and memory limit
    (KB_AUTOREPLY_MESSAGE_SECONDS, KB_AUTOREPLY_MESSAGE_MEMORY_MB).
    """
    from kb.autoreply.forkserver import start_server
    from kb.cli import command_app

    start_server()  # the server that reads emails imports its code while the app starts
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with command_app() as app:
        counts = run_autoreply(app, once=once, dry_run=dry_run)
    click.echo(summary_line(counts, dry_run))
