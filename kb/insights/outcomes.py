"""What became of kb's answers: confirmed, assumed or reopened (the honest half of deflection).

An answer is an auto-reply kb sent, or an answer the contact form showed. Its record's ``outcome``:

- **confirmed**: the customer clicked "Solved" (or the form's "Does this answer your question?" yes);
- **assumed**: no further contact from that sender within ASSUMED_RESOLVED_HOURS (a guess, so the
  pages always show it apart from confirmed);
- **reopened**: the same sender (``sender_key``) asked again within REOPEN_DAYS of the question, or
  clicked "Still need help". A reopened answer is never counted as resolved: a later "Solved" on it
  changes nothing. A confirmed answer stays confirmed when the customer writes again (they said it
  solved that question; the new one is a new question).

While the answer waits, ``outcome`` is NULL and ``outcome_at`` holds the moment it was answered:
that is how the pages tell "pending" from "not answered by kb" and how the sweep finds it.

Timed work (STYLE.md 12, kb/jobs): answers turn "assumed" in a **sweep**, one UPDATE over every
answer whose wait is over, rather than one job per answer. Each answer schedules the sweep of the
hour its wait ends (key: that hour; kb.jobs.schedule is idempotent, so a busy hour shares one job,
at most 24 a day instead of one per email), and a daily sweep catches anything a crash left
behind and gives records from before outcomes existed (NULL, ``outcome_at`` NULL) the outcome
their history says (see ``backfill``). One UPDATE is also what keeps 100,000 emails cheap.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb import jobs
from kb.autoreply.models import MailRecord
from kb.insights.models import REOPEN_DAYS
from kb.models import Article, parse_id, utcnow

SWEEP = "insights.assume"  # one job per hour in which answers' waits end
DAILY = "insights.outcomes_daily"  # the daily sweep and the backfill of older records


def _hours(settings: Mapping[str, Any]) -> timedelta:
    """ASSUMED_RESOLVED_HOURS as a timedelta."""
    return timedelta(hours=float(settings.get("ASSUMED_RESOLVED_HOURS") or 72))


def answered_by_kb():
    """SQL: kb answered this record (an answer waiting or decided, or an auto-reply sent)."""
    return sa.or_(MailRecord.outcome.is_not(None), MailRecord.outcome_at.is_not(None), MailRecord.state == "replied")


def question_received(session: so.Session, record: MailRecord, settings: Mapping[str, Any]) -> int:
    """A new question from ``record.sender_key``: its earlier unconfirmed answers within REOPEN_DAYS are reopened.

    Answers already "confirmed" stay confirmed (the customer said it solved that question). Returns
    how many were reopened; the caller commits.
    """
    if record.id is None:  # a contact-form record not yet flushed: give it its id, time and sender_key
        session.flush()
    if not record.sender_key:
        return 0
    now = utcnow()
    asked = record.created_at or now
    result = session.execute(sa.update(MailRecord).where(
        MailRecord.sender_key == record.sender_key, MailRecord.id != record.id,
        MailRecord.created_at >= asked - timedelta(days=REOPEN_DAYS), MailRecord.created_at <= asked,
        sa.or_(MailRecord.outcome == "assumed", sa.and_(MailRecord.outcome.is_(None), answered_by_kb())),
    ).values(outcome="reopened", outcome_at=now).execution_options(synchronize_session=False))
    return result.rowcount or 0


def top_category(session: so.Session, record: MailRecord) -> str:
    """The category of the record's top matched article ("" when it has none)."""
    matches = record.matches or []
    article_id = parse_id(str(matches[0].get("article_id", ""))) if matches and isinstance(matches[0], dict) else None
    if article_id is None:
        return ""
    return session.scalar(sa.select(Article.category).where(Article.id == article_id)) or ""


def _sweep_at(answered: datetime, settings: Mapping[str, Any]) -> datetime:
    """The hour, rounded up, at which an answer given at ``answered`` has waited long enough."""
    due = answered + _hours(settings)
    hour = due.replace(minute=0, second=0, microsecond=0)
    return hour if hour == due else hour + timedelta(hours=1)


def answered(session: so.Session, record: MailRecord, settings: Mapping[str, Any], now: datetime | None = None) -> None:
    """kb answered ``record``: note its category and the start of its wait, and schedule the sweep.

    An outcome that came first (a "Solved" click racing the worker) is kept. The caller commits.
    """
    now = now or utcnow()
    if record.id is None:
        session.flush()
    values: dict[str, Any] = {"category": top_category(session, record)[:120]}
    session.execute(sa.update(MailRecord).where(MailRecord.id == record.id).values(**values)
                    .execution_options(synchronize_session=False))
    session.execute(sa.update(MailRecord).where(
        MailRecord.id == record.id, MailRecord.outcome.is_(None), MailRecord.outcome_at.is_(None),
    ).values(outcome_at=now).execution_options(synchronize_session=False))
    run_at = _sweep_at(now, settings)
    jobs.schedule(session, SWEEP, run_at.strftime("%Y-%m-%dT%H"), run_at=run_at)
    session.refresh(record)


def resolved(session: so.Session, record: MailRecord) -> None:
    """The customer clicked "Solved" (confirmed, unless already reopened) or "Still need help" (reopened).

    Reads ``record.resolution`` as kb.autoreply.ledger.resolve left it. The caller commits.
    """
    now = utcnow()
    where = [MailRecord.id == record.id]
    if record.resolution == "solved":
        stmt = sa.update(MailRecord).where(*where, sa.or_(MailRecord.outcome.is_(None), MailRecord.outcome == "assumed"))
        session.execute(stmt.values(outcome="confirmed", outcome_at=now).execution_options(synchronize_session=False))
    elif record.resolution == "still_need_help":
        stmt = sa.update(MailRecord).where(*where, sa.or_(MailRecord.outcome.is_(None), MailRecord.outcome != "reopened"))
        session.execute(stmt.values(outcome="reopened", outcome_at=now).execution_options(synchronize_session=False))
    else:
        return
    session.refresh(record)


def assume_due(session: so.Session, settings: Mapping[str, Any], now: datetime | None = None) -> int:
    """Answers that waited ASSUMED_RESOLVED_HOURS with no outcome become "assumed" (one UPDATE); how many.

    The caller commits. A further question had already reopened its answers (question_received),
    so whatever is still NULL here saw no further contact.
    """
    now = now or utcnow()
    result = session.execute(sa.update(MailRecord).where(
        MailRecord.outcome.is_(None), MailRecord.outcome_at.is_not(None), MailRecord.outcome_at <= now - _hours(settings),
    ).values(outcome="assumed", outcome_at=now).execution_options(synchronize_session=False))
    return result.rowcount or 0


def backfill(session: so.Session, settings: Mapping[str, Any], now: datetime | None = None) -> int:
    """Records kb answered before outcomes existed (or whose answered() a crash skipped) get theirs; how many.

    From what is on record: "Solved" clicked -> confirmed; "Still need help" clicked -> reopened;
    otherwise, once the wait is over (counted from when the reply was sent), reopened when the
    same sender asked again (not skipped) within REOPEN_DAYS, else assumed. The caller commits.
    """
    now = now or utcnow()
    old = [MailRecord.outcome.is_(None), MailRecord.outcome_at.is_(None), MailRecord.reply_message_id.is_not(None)]
    clicked = MailRecord.resolved_at
    count = 0
    for resolution, outcome in (("solved", "confirmed"), ("still_need_help", "reopened")):
        condition = MailRecord.resolution == resolution
        if resolution == "solved":
            condition = sa.and_(condition, MailRecord.state == "replied")
        count += _set(session, [*old, condition], outcome, sa.func.coalesce(clicked, now))
    waited = [*old, MailRecord.state == "replied", MailRecord.resolution.is_(None),
              MailRecord.sending_since <= now - _hours(settings)]
    later = so.aliased(MailRecord)
    again = sa.exists().where(later.sender_key == MailRecord.sender_key, later.sender_key != "",
                              later.id != MailRecord.id, later.state != "skipped",
                              later.created_at > MailRecord.created_at,
                              _within_days(session, later.created_at, MailRecord.created_at, REOPEN_DAYS))
    count += _set(session, [*waited, again], "reopened", now)
    count += _set(session, waited, "assumed", now)
    return count


def _within_days(session: so.Session, later: Any, earlier: Any, days: int):
    """SQL: ``later`` is at most ``days`` after ``earlier`` (SQLite keeps datetimes as text, so julianday)."""
    if session.get_bind().dialect.name == "sqlite":
        return sa.func.julianday(later) - sa.func.julianday(earlier) <= days
    return later <= earlier + sa.literal(timedelta(days=days), sa.Interval())


def _set(session: so.Session, where: list, outcome: str, at: Any) -> int:
    """One UPDATE giving the matching records ``outcome``; how many."""
    result = session.execute(sa.update(MailRecord).where(*where).values(outcome=outcome, outcome_at=at)
                             .execution_options(synchronize_session=False))
    return result.rowcount or 0


@jobs.handler(SWEEP)
def _sweep_job(ctx: jobs.JobContext) -> None:
    """The hourly sweep: answers whose wait ended by now become assumed."""
    assume_due(ctx.session, ctx.settings)


@jobs.handler(DAILY)
def _daily_job(ctx: jobs.JobContext) -> None:
    """The daily sweep: older records first (they may reopen, so before assuming), then the waits."""
    backfill(ctx.session, ctx.settings)
    assume_due(ctx.session, ctx.settings)


jobs.daily(DAILY)
