"""`kb jobs`: run the timed work (alerts, escalations, re-surveys) in its own process, or list it.

Thin click wrappers over kb.jobs; ``run_jobs`` and ``list_jobs`` are what the commands do, and
tests call them directly.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections import Counter
from contextlib import contextmanager
from typing import Iterator

import click
from flask import Flask

from kb.db import session_scope
from kb.jobs import listing
from kb.jobs.runner import Runner, run_due


@click.group("jobs")
def jobs_command() -> None:
    """Run or look at the timed work (alerts, escalations, re-surveys)."""


def _app():
    """The command's app, runner thread off (imported late: kb.cli loads this module lazily)."""
    from kb.cli import command_app

    return command_app()


@contextmanager
def stop_on_signals(runner: Runner) -> Iterator[None]:
    """The first SIGTERM / Ctrl-C stops the runner after its current job; a second one at once."""
    def handler(signum, _frame) -> None:
        runner.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL if sig == signal.SIGTERM else signal.default_int_handler)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_jobs(app: Flask, *, once: bool) -> Counter[str]:
    """Run the due jobs once, or until SIGTERM; returns the counts of their outcomes."""
    if once:
        return run_due(app)
    runner = Runner(app)
    with stop_on_signals(runner):
        runner.run()  # in this thread: the process is the runner
    return runner.counts


def summary_line(counts: Counter[str]) -> str:
    """One line saying what the runner did."""
    return (f"Ran {counts.total()} job(s): {counts['done']} done, {counts['retry']} to retry, "
            f"{counts['failed']} given up, {counts['lost']} taken over by another runner")


@jobs_command.command("run")
@click.option("--once", is_flag=True, help="Run the jobs that are due now, then exit.")
def jobs_run(once: bool) -> None:
    """Run timed work until stopped (SIGTERM or Ctrl-C end it after the job in hand).

    Safe beside `kb serve`, gunicorn workers and other `kb jobs run` processes, on any
    number of hosts: each job runs once. Set KB_JOBS_RUNNER=false for the web processes
    if you prefer to run the jobs only here.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with _app() as app:
        counts = run_jobs(app, once=once)
    click.echo(summary_line(counts))


def list_jobs(app: Flask) -> list[str]:
    """The lines of ``kb jobs list``: counts by kind and state, then the jobs given up."""
    with session_scope(app) as session:
        counts = listing.counts_by_kind_and_state(session)
        failed = listing.failed_jobs(session)
        lines = [f"{kind:<28} {state:<10} {count:>7}" for kind, state, count in counts] or ["No jobs yet."]
        if failed:
            lines.append("")
            lines.append("Given up (newest first):")
        for job in failed:
            when = job.done_at.strftime("%Y-%m-%d %H:%M UTC") if job.done_at else "?"
            error = " ".join((job.last_error or "").split())[:300]
            lines.append(f"  #{job.id} {job.kind} {job.key} ({job.attempts} attempts, {when}): {error}")
    return lines


@jobs_command.command("list")
def jobs_list() -> None:
    """Count the jobs by kind and state, and show the ones given up with their last error."""
    with _app() as app:
        for line in list_jobs(app):
            click.echo(line)
