"""Sending an approved offer's message to the customer: a job, so a failing SMTP server is retried.

``schedule_send`` is called when an offer becomes sendable (recorded within bounds, or approved);
the job "recovery.send" (key "offer:<id>") emails the offer's message threaded on the case and then
appends the ledger's "send" row (``offers.mark_sent``), once.
"""

from __future__ import annotations

import sqlalchemy.orm as so

from kb import jobs
from kb.recovery.models import RecoveryEntry

KIND = "recovery.send"


def schedule_send(session: so.Session, entry: RecoveryEntry) -> None:
    """Schedule the sending of this offer's message (idempotent per offer); the caller commits."""
    jobs.schedule(session, KIND, f"offer:{entry.id}", payload={"offer_id": entry.id})
