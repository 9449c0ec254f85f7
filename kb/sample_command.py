"""`kb sample load` / `kb sample remove`: the sample follow-up data (kb.followup.sample)."""

from __future__ import annotations

import click


@click.group("sample")
def sample_command() -> None:
    """Sample follow-up data: customers, cases and surveys marked "(sample)", and starter gestures.

    The first `kb serve` on an empty database loads it (unless KB_SAMPLE_DATA=false),
    so the follow-up queue, customer timelines and report have something to show, with
    starter gesture types and bounds and a few sample offers for service recovery.
    """


@sample_command.command("load")
def load_command() -> None:
    """Load the sample (only into a database without follow-up data; nothing is emailed)."""
    from kb.cli import command_app
    from kb.db import session_scope
    from kb.followup import sample

    with command_app() as app, session_scope(app) as session:
        counts = sample.load_sample(session, app.config)
    if not counts:
        click.echo("Nothing loaded: the database has follow-up data already (`kb sample remove` clears the sample).")
        return
    click.echo(sample.summary(counts, "Loaded"))


@sample_command.command("remove")
def remove_command() -> None:
    """Delete every sample row, and agents' work on sample cases; real data stays."""
    from kb.cli import command_app
    from kb.db import session_scope
    from kb.followup import sample

    with command_app() as app, session_scope(app) as session:
        counts = sample.remove_sample(session)
    click.echo(sample.summary(counts, "Removed"))
    if counts["kept_cases"] or counts["kept_customers"]:
        click.echo(f"Kept {counts['kept_customers']} customer(s) and {counts['kept_cases']} case(s) that real "
                   "activity joined; they are no longer marked as sample.")
    if counts["kept_gesture_types"] or counts["kept_offers"]:
        click.echo(f"Kept {counts['kept_gesture_types']} gesture type(s) that real offers or bounds use (no longer "
                   f"marked as sample) and {counts['kept_offers']} sample offer(s) that real ledger rows answer.")
