"""The agents' follow-up queue and case file: request-free queries the web pages show.

The queue puts the oldest unacknowledged case first (the one the team is most late for), then the
rest by age. A case waits from the moment it opened or, when reopened, from its last reopening.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.followup import cases, hours
from kb.followup.customers import identities
from kb.followup.models import CASE_STATES, OPEN_STATES, SOURCES, Case, CaseEvent, Customer, CustomerIdentity, Signal
from kb.jobs.models import Job
from kb.models import Agent, Article, parse_id, utcnow

UNACKNOWLEDGED = ("new", "reopened")
PER_PAGE = 50
ASSIGNEE_WORDS = ("anyone", "me", "nobody")


@dataclass(frozen=True)
class Filters:
    """What the queue shows: states, assignee ("anyone", "me", "nobody" or an agent's id), category, source."""

    states: tuple[str, ...] = OPEN_STATES
    state: str = "open"  # the form's value: "open", "all" or one state
    assignee: str = "anyone"
    root_cause: str = ""
    source: str = ""


@dataclass
class Row:
    """One case as the queue lists it."""

    case: Case
    since: datetime
    waited_seconds: float
    customer: str = ""
    article: str = ""
    assignee: str = ""


@dataclass
class QueuePage:
    """One page of the queue."""

    rows: list[Row]
    total: int
    page: int
    pages: int
    filters: Filters = field(default_factory=Filters)


def parse_filters(args: Mapping[str, str], settings: Mapping[str, Any]) -> Filters:
    """Filters from a query string's values; anything unknown falls back to its default."""
    state = args.get("state", "open") or "open"
    if state == "all":
        states = CASE_STATES
    elif state in CASE_STATES:
        states = (state,)
    else:
        state, states = "open", OPEN_STATES
    assignee = args.get("assignee", "anyone") or "anyone"
    if assignee not in ASSIGNEE_WORDS and parse_id(assignee) is None:
        assignee = "anyone"
    root_cause = args.get("category", "")
    source = args.get("source", "")
    return Filters(states=states, state=state, assignee=assignee,
                   root_cause=root_cause if root_cause in cases.root_causes(settings) else "",
                   source=source if source in SOURCES else "")


def waiting_since():
    """SQL for when a case began to wait: its last reopening, else its opening."""
    reopened = (sa.select(sa.func.max(CaseEvent.created_at))
                .where(CaseEvent.case_id == Case.id, CaseEvent.kind == "state", CaseEvent.to_state == "reopened")
                .correlate(Case).scalar_subquery())
    return sa.case((Case.state == "reopened", sa.func.coalesce(reopened, Case.opened_at)), else_=Case.opened_at)


def _where(filters: Filters, agent_id: int | None) -> list:
    """The WHERE clauses of the filters."""
    clauses = [Case.state.in_(filters.states)]
    if filters.assignee == "me":
        clauses.append(Case.assignee_id == agent_id)
    elif filters.assignee == "nobody":
        clauses.append(Case.assignee_id.is_(None))
    elif parse_id(filters.assignee) is not None:
        clauses.append(Case.assignee_id == parse_id(filters.assignee))
    if filters.root_cause:
        clauses.append(Case.root_cause == filters.root_cause)
    if filters.source:
        clauses.append(Case.id.in_(sa.select(Signal.case_id).where(Signal.source == filters.source)))
    return clauses


def list_cases(session: so.Session, filters: Filters, *, agent_id: int | None, page: int = 1,
               per_page: int = PER_PAGE, now: datetime | None = None) -> QueuePage:
    """One page of the queue: oldest unacknowledged first, then the rest by age (oldest first)."""
    now, where = now or utcnow(), _where(filters, agent_id)
    total = session.scalar(sa.select(sa.func.count()).select_from(Case).where(*where)) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    since = waiting_since().label("since")
    first = sa.case((Case.state.in_(UNACKNOWLEDGED), 0), else_=1)
    found = session.execute(sa.select(Case, since).where(*where).order_by(first, since, Case.id)
                            .offset((page - 1) * per_page).limit(per_page)).all()
    rows = [Row(case, started, _waited(case, started, now)) for case, started in found]
    _label(session, rows)
    return QueuePage(rows, total, page, pages, filters)


def _waited(case: Case, since: datetime, now: datetime) -> float:
    """Seconds the case has waited: until now while open, until its resolution once resolved."""
    end = case.resolved_at if case.state == "resolved" and case.resolved_at else now
    return max(0.0, (end - since).total_seconds())


def _label(session: so.Session, rows: list[Row]) -> None:
    """Fill in customers, articles and assignees with one query each (not one per row)."""
    customer_ids = {r.case.customer_id for r in rows if r.case.customer_id}
    article_ids = {r.case.article_id for r in rows if r.case.article_id}
    agent_ids = {r.case.assignee_id for r in rows if r.case.assignee_id}
    names = _names(session, Customer.id, Customer.name, customer_ids)
    handles: dict[int, str] = {}
    if customer_ids:
        for cid, display in session.execute(sa.select(CustomerIdentity.customer_id, CustomerIdentity.display)
                                            .where(CustomerIdentity.customer_id.in_(customer_ids))
                                            .order_by(CustomerIdentity.kind, CustomerIdentity.id)):
            handles.setdefault(cid, display)
    titles = _names(session, Article.id, Article.title, article_ids)
    agents = _names(session, Agent.id, Agent.name, agent_ids)
    for row in rows:
        c = row.case
        if c.customer_id:
            name, handle = names.get(c.customer_id, ""), handles.get(c.customer_id, "")
            row.customer = f"{name} <{handle}>" if name and handle else (name or handle or f"#{c.customer_id}")
        row.article = titles.get(c.article_id, "") if c.article_id else ""
        row.assignee = agents.get(c.assignee_id, "") if c.assignee_id else ""


def _names(session: so.Session, key, label, ids: set[int]) -> dict[int, str]:
    """``label`` by ``key`` for the rows with these ids (no query for none)."""
    if not ids:
        return {}
    return dict(session.execute(sa.select(key, label).where(key.in_(ids))).all())


def unacknowledged_count(session: so.Session) -> int:
    """How many open cases nobody has acknowledged yet (one COUNT, for the agent menu)."""
    return session.scalar(sa.select(sa.func.count()).select_from(Case).where(Case.state.in_(UNACKNOWLEDGED))) or 0


def format_wait(seconds: float) -> str:
    """A waiting time as people say it: "under 1 min", "12 min", "3 h 5 min", "2 d 4 h"."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return "under 1 min"
    if minutes < 60:
        return f"{minutes} min"
    hours_, minutes = divmod(minutes, 60)
    if hours_ < 24:
        return f"{hours_} h {minutes} min" if minutes else f"{hours_} h"
    days, hours_ = divmod(hours_, 24)
    return f"{days} d {hours_} h" if hours_ else f"{days} d"


@dataclass
class CaseFile:
    """Everything the case page shows."""

    case: Case
    since: datetime
    customer: Customer | None
    handles: list[CustomerIdentity]
    email: str
    article: Article | None
    signals: list[Signal]
    events: list[CaseEvent]
    agent_names: dict[int, str]
    article_titles: dict[int, str]
    message_states: dict[int, tuple[str, str]]
    deadline: datetime
    in_business_hours: bool


def case_file(session: so.Session, case: Case, settings: Mapping[str, Any], now: datetime | None = None) -> CaseFile:
    """The case with its customer, signals, history, message states and acknowledgement deadline."""
    now = now or utcnow()
    since = session.scalar(sa.select(waiting_since()).where(Case.id == case.id)) or case.opened_at
    customer = session.get(Customer, case.customer_id) if case.customer_id else None
    handles = identities(session, customer) if customer else []
    email = next((h.display for h in handles if h.kind == "email"), "")
    signals = list(session.scalars(sa.select(Signal).where(Signal.case_id == case.id)
                                   .order_by(Signal.created_at, Signal.id)))
    events = cases.history(session, case)
    agent_ids = {e.agent_id for e in events if e.agent_id} | {s.agent_id for s in signals if s.agent_id}
    agent_ids |= {int(e.to_state) for e in events if e.kind == "assign" and e.to_state.isdigit()}
    article_ids = {s.article_id for s in signals if s.article_id} | ({case.article_id} if case.article_id else set())
    return CaseFile(
        case=case, since=since, customer=customer, handles=handles, email=email,
        article=session.get(Article, case.article_id) if case.article_id else None,
        signals=signals, events=events,
        agent_names=_names(session, Agent.id, Agent.name, agent_ids),
        article_titles=_names(session, Article.id, Article.title, article_ids),
        message_states=message_states(session, [e.id for e in events if e.kind == "message"]),
        deadline=hours.ack_deadline(settings, since), in_business_hours=hours.in_business_hours(settings, now))


def message_states(session: so.Session, event_ids: list[int]) -> dict[int, tuple[str, str]]:
    """Per message event: ("queued" | "sent" | "failed", the reason of the last failure) from its job."""
    if not event_ids:
        return {}
    keys = {f"event:{i}": i for i in event_ids}
    found = {}
    for key, state, error in session.execute(sa.select(Job.key, Job.state, Job.last_error).where(
            Job.kind == "followup.message", Job.key.in_(keys))):
        word = {"sent": "sent", "done": "sent", "failed": "failed", "cancelled": "cancelled"}.get(state, "queued")
        found[keys[key]] = (word, error or "")
    return found


def active_agents(session: so.Session) -> list[Agent]:
    """Agents a case can be assigned to, by name."""
    return list(session.scalars(sa.select(Agent).where(Agent.active.is_(True)).order_by(Agent.name, Agent.id)))


def last_change_by(session: so.Session, case: Case) -> tuple[str, str]:
    """(state, agent name) of the case's latest state change: who got there first."""
    row = session.execute(sa.select(CaseEvent.to_state, Agent.name).outerjoin(Agent, Agent.id == CaseEvent.agent_id)
                          .where(CaseEvent.case_id == case.id, CaseEvent.kind == "state")
                          .order_by(CaseEvent.created_at.desc(), CaseEvent.id.desc()).limit(1)).first()
    return (row[0], row[1] or "kb") if row else (case.state, "")
