"""Customers' words are kept only as long as KB_CUSTOMER_TEXT_DAYS says (STYLE.md 13).

A daily job (one of kb.jobs' recurring kinds) blanks the text customers wrote, and what agents
wrote about them, once it is older than the setting: the questions kept on mail records, the
comments of votes and surveys, the words of follow-up signals, agents' notes and messages, and
the messages of service-recovery offers (the ledger's other columns stay).
The records themselves stay, with their dates, states, scores and addresses, so the figures of
the reports and the per-sender cap still hold.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask

from kb import jobs
from kb.autoreply.models import MailRecord
from kb.followup.models import CaseEvent, Signal, Survey
from kb.models import Vote, utcnow
from kb.recovery.models import RecoveryEntry

KIND = "retention.scrub"
# (model, its text column, its time column, which rows): every place kb keeps a customer's words.
TEXTS = (
    ("mail_records", MailRecord, MailRecord.text, MailRecord.created_at, ()),
    ("votes", Vote, Vote.comment, Vote.created_at, ()),
    ("signals", Signal, Signal.words, Signal.created_at, ()),
    ("surveys", Survey, Survey.comment, Survey.created_at, ()),
    ("notes", CaseEvent, CaseEvent.note, CaseEvent.created_at, (CaseEvent.kind.in_(("note", "message", "state")),)),
    # The ledger's rows stay (amounts, who, when, the bounds); only the message to the customer is blanked,
    # by a table-level UPDATE the database's append-only trigger allows for exactly that column.
    ("offer_messages", RecoveryEntry.__table__, RecoveryEntry.__table__.c.message,
     RecoveryEntry.__table__.c.created_at, ()),
)


def cutoff(settings: Mapping[str, Any], now: datetime | None = None) -> datetime:
    """Text written before this moment is past the retention period."""
    return (now or utcnow()) - timedelta(days=float(settings["CUSTOMER_TEXT_DAYS"]))


def scrub(session: so.Session, before: datetime) -> Counter[str]:
    """Blank every customer text written before ``before``; counts per place. The caller commits."""
    counts: Counter[str] = Counter()
    for name, model, column, created, extra in TEXTS:
        result = session.execute(sa.update(model).where(created < before, column != "", *extra)
                                 .values({column.key: ""}).execution_options(synchronize_session=False))
        counts[name] = result.rowcount
    return counts


@jobs.handler(KIND)
def _daily_scrub(ctx) -> None:
    """The day's scrub (the runner commits it with the job's "done")."""
    scrub(ctx.session, cutoff(ctx.settings))


def init_app(app: Flask) -> None:
    """Make the scrub a daily job of every runner."""
    jobs.daily(KIND)
