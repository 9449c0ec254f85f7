"""Personal data is kept only as long as KB_RETENTION_DAYS says (STYLE.md 13).

A daily job (one of kb.jobs' recurring kinds) blanks, once older than the setting: the text and
subject of mail records (emails and contact-form questions alike), the query, visitor id and
stem group of search-log rows, the wording and group of the daily search roll-up (kb.insights.rollup:
its counts stay), the visitor id of portal visits (NULL), the comments of votes and
surveys, the words of follow-up signals, agents' notes and messages, and the messages of
service-recovery offers. The rows themselves stay, with their dates, languages, counts, click
positions, outcomes, states, scores and addresses, so every figure of the insights pages and
reports, and the per-sender cap, still holds. Contact-form rate counts whose window is long over
are deleted: they only ever mattered for an hour. So are workers' heartbeats not beaten for a day
(kb.hosts.heartbeats): not personal data, but the same daily sweep of rows that stopped mattering.

KB_CUSTOMER_TEXT_DAYS, the setting's older name, still works: when set, it is the period.

The work goes in batches of BATCH rows, each its own transaction (keyset over the time column, so a
year of a million rows never holds one giant transaction or lock), and the job's lease is renewed
between batches. Each daily run notes up to when it purged, and the next starts there (less a
day), so a day's run looks at about a day of rows, not at every row blanked before. Sample rows of the search log keep their ``sample:`` visitor (they are nobody's
data), so `kb sample remove` still finds them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Callable, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask

from kb import jobs
from kb.autoreply.models import MailRecord
from kb.followup.models import CaseEvent, Signal, Survey
from kb.followup.sample_builder import PREFIX
from kb.hosts import heartbeats
from kb.insights import rollup
from kb.insights.models import PortalVisit, RateCount
from kb.jobs.models import FINAL_STATES, Job
from kb.models import SearchLog, Vote, utcnow
from kb.recovery.models import RecoveryEntry

KIND = "retention.scrub"
# Jobs whose payload carries a customer's words until it is sent: the contact form's sender name,
# an answer's Markdown. A finished one keeps its row (what was sent, when) and loses the payload.
WORDY_JOBS = ("contact.send", "capture.answer")
BATCH = 5000  # rows per transaction: short locks, and an IN list every database takes
RATE_COUNT_AGE = timedelta(days=1)  # the contact form's windows are an hour: older counts are dead
OVERLAP = timedelta(days=1)  # a daily run looks this far behind where the last stopped (rows written late)
_ENTRY = RecoveryEntry.__table__.c


@dataclass(frozen=True)
class Place:
    """One place kb keeps personal data: which rows still hold it, and what the purge writes."""

    name: str
    table: sa.Table
    time: sa.ColumnElement  # the row's date: past the period, its data goes
    holds: sa.ColumnElement  # rows that still hold something to blank
    values: dict[str, Any] = field(default_factory=dict)
    by_day: bool = False  # ``time`` is a date, not a moment

    @property
    def id(self) -> sa.ColumnElement:
        """The primary key the batches walk by (with the time)."""
        return self.table.c.id


def _blank(*columns: sa.Column) -> tuple[sa.ColumnElement, dict[str, Any]]:
    """(rows where any of ``columns`` is not empty, the values that empty them)."""
    return sa.or_(*(column != "" for column in columns)), {column.key: "" for column in columns}


def _places() -> tuple[Place, ...]:
    """Every place kb keeps a customer's words or a visitor's id."""
    mail, search = MailRecord.__table__.c, SearchLog.__table__.c
    mail_holds, mail_values = _blank(mail.text, mail.subject)
    search_holds, search_values = _blank(search.query, search.visitor, search.group_key)
    places = [
        Place("mail_records", MailRecord.__table__, mail.created_at, mail_holds, mail_values),
        Place("search_log", SearchLog.__table__, search.created_at,
              sa.and_(search_holds, sa.not_(search.visitor.startswith(PREFIX))), search_values),
        Place("portal_visits", PortalVisit.__table__, PortalVisit.__table__.c.day,
              PortalVisit.__table__.c.visitor.is_not(None), {"visitor": None}, by_day=True),
    ]
    for name, model, column, extra in (
            ("votes", Vote, Vote.comment, None), ("signals", Signal, Signal.words, None),
            ("surveys", Survey, Survey.comment, None),
            ("notes", CaseEvent, CaseEvent.note, CaseEvent.kind.in_(("note", "message", "state")))):
        holds, values = _blank(model.__table__.c[column.key])
        places.append(Place(name, model.__table__, model.__table__.c.created_at,
                            holds if extra is None else sa.and_(holds, extra), values))
    # The ledger's rows stay (amounts, who, when, the bounds); only the message to the customer is blanked,
    # by a table-level UPDATE the database's append-only trigger allows for exactly that column.
    holds, values = _blank(_ENTRY.message)
    places.append(Place("offer_messages", RecoveryEntry.__table__, _ENTRY.created_at, holds, values))
    job = Job.__table__.c  # JSON is not comparable everywhere: finished wordy jobs are blanked again (idempotent)
    places.append(Place("job_payloads", Job.__table__, job.created_at,
                        sa.and_(job.kind.in_(WORDY_JOBS), job.state.in_(FINAL_STATES)), {"payload": {}}))
    return tuple(places)


def retention_days(settings: Mapping[str, Any]) -> float:
    """The retention period in days: RETENTION_DAYS, or its older name CUSTOMER_TEXT_DAYS when that is set."""
    older = settings.get("CUSTOMER_TEXT_DAYS")
    return float(older if older is not None else settings["RETENTION_DAYS"])


def cutoff(settings: Mapping[str, Any], now: datetime | None = None) -> datetime:
    """Personal data written before this moment is past the retention period."""
    return (now or utcnow()) - timedelta(days=retention_days(settings))


def _purge_place(session: so.Session, place: Place, before: datetime | date, since: datetime | date | None,
                 batch: int, between: Callable[[], None] | None) -> int:
    """Blank one place's rows from ``since`` to ``before``, ``batch`` rows per commit; how many."""
    done, last = 0, None
    while True:
        query = sa.select(place.time, place.id).where(place.time < before, place.holds)
        if since is not None:
            query = query.where(place.time >= since)
        if last is not None:  # keyset: go on after the last row done, never rescan the done ones
            query = query.where(place.time >= last[0], sa.or_(place.time > last[0], place.id > last[1]))
        rows = session.execute(query.order_by(place.time, place.id).limit(batch)).all()
        if rows:
            session.execute(sa.update(place.table).where(place.id.in_([row[1] for row in rows]))
                            .values(place.values).execution_options(synchronize_session=False))
            session.commit()
            done, last = done + len(rows), rows[-1]
            if between is not None:
                between()
        if len(rows) < batch:
            return done


def purge(session: so.Session, before: datetime, *, since: datetime | None = None, now: datetime | None = None,
          batch: int = BATCH, between: Callable[[], None] | None = None) -> Counter[str]:
    """Blank the personal data written before ``before`` and delete dead rate counts; counts per place.

    ``since``: rows older than this were purged by an earlier run, so they are not looked at again
    (None: every row). Commits after each batch (and calls ``between``, say to renew a job's lease);
    safe to run again.
    """
    counts: Counter[str] = Counter()
    for place in _places():
        bounds = (before.date(), since and since.date()) if place.by_day else (before, since)
        counts[place.name] = _purge_place(session, place, *bounds, batch, between)
    counts["search_rollup"] = rollup.blank_before(session, before.date(), since and since.date())
    result = session.execute(sa.delete(RateCount).where(RateCount.window_start < (now or utcnow()) - RATE_COUNT_AGE)
                             .execution_options(synchronize_session=False))
    counts["rate_counts"] = result.rowcount
    counts["worker_heartbeats"] = heartbeats.prune(session, now)  # workers silent for a day (no personal data)
    session.commit()
    return counts


def purged_before(session: so.Session) -> datetime | None:
    """Up to when the last finished daily purge blanked everything (None: no run noted it yet)."""
    payload = session.scalar(sa.select(Job.payload).where(Job.kind == KIND, Job.state == "done")
                             .order_by(Job.done_at.desc()).limit(1))
    noted = (payload or {}).get("purged_before")
    return datetime.fromisoformat(noted) if noted else None


@jobs.handler(KIND)
def _daily_purge(ctx) -> None:
    """The day's purge from where the last one stopped (a day's overlap), keeping the job's claim between batches.

    Without the start, each day would look at every row already blanked again (a minute a day on a
    year of a million searches); the first run, and one after a lost note, looks at everything.
    """
    before, since = cutoff(ctx.settings), purged_before(ctx.session)
    purge(ctx.session, before, since=since - OVERLAP if since else None, between=ctx.hold)
    ctx.job.payload = {**ctx.payload, "purged_before": before.isoformat()}  # saved with the job's "done"


def init_app(app: Flask) -> None:
    """Make the purge a daily job of every runner."""
    jobs.daily(KIND)
