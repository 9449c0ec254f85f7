"""A customer's timeline: everything kb knows of them, from every channel, newest first.

Read-only: it gathers emails received (matched by the customer's email identities, folded as the
mail ledger folds them), auto-replies, "Solved" and "Still need help" clicks, votes and cases
opened by hand, surveys, cases and their state changes, messages sent and notes added. Each
source is queried newest first and bounded, so a page costs the same however long the history.
Entries carry customer text for the page to show; nothing here logs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.addresses import sender_key
from kb.autoreply.models import MailRecord
from kb.followup.models import Case, CaseEvent, Customer, CustomerIdentity, Signal, Survey

PAGE = 200  # entries on one page; "older entries" pages on
MAX_OFFSET = 10_000  # deeper than anyone pages by hand; keeps each query bounded
TITLE_CHARS = 120
TEXT_CHARS = 2000
# Entries at the same moment keep the order things happen in (an email, then its reply, then the click).
RANK = {"email": 0, "autoreply": 1, "click": 2, "vote": 3, "signal": 3, "case": 4, "state": 5,
        "message": 6, "note": 6, "recovery": 6, "survey_sent": 7, "survey_answered": 8}
RESOLUTION_TITLES = {"solved": "Clicked “Solved”", "still_need_help": "Clicked “Still need help”"}


@dataclass(frozen=True)
class Entry:
    """One thing on the timeline: when, what kind, through which channel, and where to see more."""

    when: datetime
    kind: str
    channel: str
    title: str
    text: str = ""
    detail: str = ""  # a short line shown with the title (what kb decided about an email)
    case_id: int | None = None
    mail_id: int | None = None
    key: str = ""  # what it is made of ("mail:4", "event:9"...): unique, and stable across merges

    @property
    def sort_key(self) -> tuple:
        """Newest first; ties in the order things happen, then by key."""
        return (self.when, RANK.get(self.kind, 9), self.key)


def _short(text: str | None, limit: int) -> str:
    """The text on one line's worth, cut with an ellipsis."""
    text = " ".join(str(text or "").split()) if limit <= TITLE_CHARS else str(text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def email_keys(session: so.Session, customer: Customer) -> tuple[set[str], set[str]]:
    """The customer's email identities: folded keys (as MailRecord.sender_key) and the spellings seen."""
    rows = session.execute(sa.select(CustomerIdentity.value, CustomerIdentity.display).where(
        CustomerIdentity.customer_id == customer.id, CustomerIdentity.kind == "email")).all()
    keys = {value for value, _ in rows} | {sender_key(display) for _, display in rows if display}
    spellings = {display.strip() for _, display in rows if display}
    spellings |= {spelling.lower() for spelling in spellings} | keys
    return {k for k in keys if k}, {s for s in spellings if s}


def _mail_filter(session: so.Session, customer: Customer):
    """The WHERE clause of the customer's emails, or None when they have no address.

    Both columns are indexed and compared as stored (no lower()), so the database looks up rather
    than scans; sender_key (the Reply-To, folded) finds every spelling, from_addr the few seen.
    """
    keys, spellings = email_keys(session, customer)
    if not keys:
        return None
    return sa.or_(MailRecord.sender_key.in_(sorted(keys)), MailRecord.from_addr.in_(sorted(spellings)))


def _mail_entries(session: so.Session, customer: Customer, n: int) -> list[Entry]:
    """Emails received with kb's decision, auto-replies sent, and clicks on their links."""
    where = _mail_filter(session, customer)
    if where is None:
        return []
    entries = []
    for record in session.scalars(sa.select(MailRecord).where(where).order_by(MailRecord.created_at.desc()).limit(n)):
        decided = f"kb decided: {record.state}" + (f" ({record.reason})" if record.reason else "")
        entries.append(Entry(record.created_at, "email", "email", _short(record.subject or "(no subject)", TITLE_CHARS),
                             _short(record.text, TEXT_CHARS), _short(decided, TITLE_CHARS * 2), mail_id=record.id,
                             key=f"mail:{record.id}"))
    replied = sa.select(MailRecord).where(where, MailRecord.state == "replied")
    for record in session.scalars(replied.order_by(MailRecord.created_at.desc()).limit(n)):
        titles = [m.get("title") or m.get("slug") or f"#{m.get('article_id')}" for m in record.matches or [] if isinstance(m, dict)]
        entries.append(Entry(record.created_at, "autoreply", "email", "Auto-reply sent",
                             _short("Articles: " + ", ".join(map(str, titles)) if titles else "", TEXT_CHARS),
                             mail_id=record.id, key=f"reply:{record.id}"))
    clicked = sa.select(MailRecord).where(where, MailRecord.resolution.is_not(None), MailRecord.resolved_at.is_not(None))
    for record in session.scalars(clicked.order_by(MailRecord.resolved_at.desc()).limit(n)):
        entries.append(Entry(record.resolved_at, "click", "web", RESOLUTION_TITLES.get(record.resolution, record.resolution),
                             _short(record.subject, TITLE_CHARS), mail_id=record.id, key=f"click:{record.id}"))
    return entries


def _signal_entries(session: so.Session, customer: Customer, n: int) -> list[Entry]:
    """Votes left through links that identify the customer, and cases opened by hand."""
    query = sa.select(Signal).where(Signal.customer_id == customer.id, Signal.source.in_(("vote", "manual")))
    entries = []
    for signal in session.scalars(query.order_by(Signal.created_at.desc()).limit(n)):
        if signal.source == "vote":
            title = "Voted “No”" + (f": {signal.reason.replace('_', ' ')}" if signal.reason else "")
        else:
            title = f"Case opened by hand ({signal.channel.replace('_', ' ')})"
        entries.append(Entry(signal.created_at, "vote" if signal.source == "vote" else "signal", signal.channel, title,
                             _short(signal.words, TEXT_CHARS), case_id=signal.case_id, key=f"signal:{signal.id}"))
    return entries


def _case_entries(session: so.Session, customer: Customer, n: int) -> list[Entry]:
    """Cases opened, and their surveys sent and answered."""
    entries = []
    cases = sa.select(Case).where(Case.customer_id == customer.id).order_by(Case.opened_at.desc()).limit(n)
    for case in session.scalars(cases):
        entries.append(Entry(case.opened_at, "case", "", f"Case #{case.id} opened ({case.source.replace('_', ' ')})",
                             f"State now: {case.state}", case_id=case.id, key=f"case:{case.id}"))
    surveys = sa.select(Survey).join(Case, Case.id == Survey.case_id).where(Case.customer_id == customer.id)
    for survey in session.scalars(surveys.where(Survey.sent_at.is_not(None)).order_by(Survey.sent_at.desc()).limit(n)):
        entries.append(Entry(survey.sent_at, "survey_sent", "email", "Satisfaction survey sent", "",
                             case_id=survey.case_id, key=f"survey-sent:{survey.id}"))
    answered = surveys.where(Survey.answered_at.is_not(None)).order_by(Survey.answered_at.desc()).limit(n)
    for survey in session.scalars(answered):
        entries.append(Entry(survey.answered_at, "survey_answered", "web", f"Survey answered: {survey.score} out of 5",
                             _short(survey.comment, TEXT_CHARS), case_id=survey.case_id, key=f"survey-answered:{survey.id}"))
    return entries


def _event_entries(session: so.Session, customer: Customer, n: int) -> list[Entry]:
    """State changes of the customer's cases, messages agents sent, notes added by hand, and gestures.

    A gesture's events (kind "recovery", one per ledger row: offered, approved, sent...) carry their
    one-line summary as the note; it is the entry's title.
    """
    own_cases = sa.select(Case.id).where(Case.customer_id == customer.id).scalar_subquery()
    query = sa.select(CaseEvent).where(
        CaseEvent.kind.in_(("state", "message", "note", "recovery")),
        sa.or_(CaseEvent.customer_id == customer.id, CaseEvent.case_id.in_(own_cases)))
    entries = []
    for event in session.scalars(query.order_by(CaseEvent.created_at.desc(), CaseEvent.id.desc()).limit(n)):
        if event.kind == "state":
            title = f"Case #{event.case_id}: {event.from_state or '—'} → {event.to_state}"
        elif event.kind == "message":
            title = "Message sent to the customer"
        elif event.kind == "recovery":
            title = event.note
        else:
            title = f"Note ({(event.channel or 'other').replace('_', ' ')})" + (f": {event.outcome}" if event.outcome else "")
        entries.append(Entry(event.created_at, event.kind, event.channel or ("email" if event.kind == "message" else ""),
                             _short(title, TITLE_CHARS), "" if event.kind == "recovery" else _short(event.note, TEXT_CHARS),
                             case_id=event.case_id,
                             key=f"event:{event.id}"))
    return entries


def timeline(session: so.Session, customer: Customer, *, limit: int = PAGE, offset: int = 0) -> list[Entry]:
    """Up to ``limit`` entries of the customer's history, newest first, skipping the ``offset`` newest."""
    limit = max(1, min(int(limit), PAGE + 1))
    offset = max(0, min(int(offset), MAX_OFFSET))
    n = offset + limit  # each source's newest n hold every entry of the page
    entries = [*_mail_entries(session, customer, n), *_signal_entries(session, customer, n),
               *_case_entries(session, customer, n), *_event_entries(session, customer, n)]
    entries.sort(key=lambda entry: entry.sort_key, reverse=True)
    return entries[offset:offset + limit]
