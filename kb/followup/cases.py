"""A case's life: new -> acknowledged -> contacted -> resolved, plus reopened; every change recorded.

Each change is a compare-and-set on the case's state, so two agents clicking at once make one
change, and each leaves a CaseEvent with who, when and a note.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb import jobs
from kb.autoreply.storable import storable_text
from kb.db import begin_write
from kb.errors import FieldError, NotFound, ValidationError
from kb.followup import hours
from kb.followup.models import CHANNELS, OPEN_STATES, Case, CaseEvent
from kb.models import Agent, utcnow

# action -> (states it may start from, state it leads to)
TRANSITIONS = {
    "acknowledge": (("new", "reopened"), "acknowledged"),
    "contact": (("new", "acknowledged", "reopened", "contacted"), "contacted"),
    "resolve": (OPEN_STATES, "resolved"),
    "reopen": (("resolved",), "reopened"),
}
MAX_NOTE = 20_000


def root_causes(settings: Mapping[str, Any]) -> list[str]:
    """The configured root-cause categories, in order."""
    return [word.strip() for word in str(settings["ROOT_CAUSES"]).split(",") if word.strip()]


def get_case(session: so.Session, case_id: int) -> Case:
    """The case, or NotFound."""
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound("No such case.")
    return case


def _event(session: so.Session, case: Case, kind: str, agent_id: int | None, note: str = "", **values: Any) -> CaseEvent:
    """Add one entry to the case's history."""
    event = CaseEvent(case_id=case.id, customer_id=case.customer_id, kind=kind, agent_id=agent_id,
                      note=storable_text(note, MAX_NOTE), created_at=utcnow(), **values)
    session.add(event)
    return event


def change_state(session: so.Session, case: Case, action: str, *, agent_id: int | None, note: str = "",
                 settings: Mapping[str, Any] | None = None, root_cause: str = "") -> bool:
    """Move the case by ``action``; False (nothing changed) if it is not in a state that allows it.

    Resolving needs a root cause from ROOT_CAUSES and schedules the re-survey. The caller commits.
    """
    if action not in TRANSITIONS:
        raise ValidationError(f"Unknown action {action!r}.")
    allowed, target = TRANSITIONS[action]
    now, values = utcnow(), {}
    if action == "acknowledge":
        values["acknowledged_at"] = case.acknowledged_at or now
    elif action == "contact":
        values["first_contact_at"] = case.first_contact_at or now
        values["acknowledged_at"] = case.acknowledged_at or now  # contacting them acknowledges it
    elif action == "resolve":
        if settings is None or root_cause not in root_causes(settings):
            raise FieldError({"root_cause": "Choose a root cause: the team learns why customers were unhappy."})
        values.update(resolved_at=now, root_cause=root_cause, open_key=None,
                      acknowledged_at=case.acknowledged_at or now)
    elif action == "reopen":
        values.update(resolved_at=None, open_key=_open_key(case))
    before = case.state
    begin_write(session)
    try:
        with session.begin_nested():
            result = session.execute(sa.update(Case).where(Case.id == case.id, Case.state.in_(allowed))
                                     .values(state=target, updated_at=now, **values)
                                     .execution_options(synchronize_session=False))
    except sa.exc.IntegrityError:  # reopening while a newer case of the same customer is open
        raise ValidationError("This customer has another open case; add to that one instead.") from None
    if result.rowcount != 1:
        return False
    session.refresh(case)
    event = _event(session, case, "state", agent_id, note, from_state=before, to_state=target)
    if action == "resolve" and settings is not None:
        delay = timedelta(hours=float(settings["RESURVEY_DELAY_HOURS"]))
        jobs.schedule(session, "followup.resurvey", f"case:{case.id}", run_at=now + delay, payload={"case_id": case.id})
    elif action == "reopen" and settings is not None:  # a reopened case must be acknowledged again
        session.flush()
        jobs.schedule(session, "followup.escalate", f"case:{case.id}:reopened:{event.id}",
                      run_at=hours.ack_deadline(settings, now), payload={"case_id": case.id})
    return True


def _open_key(case: Case) -> str:
    """The key a case holds while open (see kb.followup.signals.open_key_for)."""
    if case.customer_id is not None:
        return f"customer:{case.customer_id}"
    if case.article_id is not None:
        return f"article:{case.article_id}"
    return f"case:{case.id}"


def assign(session: so.Session, case: Case, assignee_id: int | None, *, agent_id: int | None) -> None:
    """Give the case to an agent (or to nobody); recorded. The caller commits."""
    if assignee_id is not None:
        agent = session.get(Agent, assignee_id)
        if agent is None or not agent.active:
            raise ValidationError("Choose an active agent.")
    if case.assignee_id == assignee_id:
        return
    case.assignee_id = assignee_id
    case.updated_at = utcnow()
    _event(session, case, "assign", agent_id, to_state=str(assignee_id or ""))


def add_note(session: so.Session, *, agent_id: int | None, text: str, channel: str = "other",
             outcome: str = "", case: Case | None = None, customer_id: int | None = None) -> CaseEvent:
    """A note an agent adds by hand (a phone call, a chat...), on a case or a customer. Caller commits."""
    if channel not in CHANNELS:
        raise FieldError({"channel": f"Choose one of: {', '.join(CHANNELS)}."})
    if not text.strip():
        raise FieldError({"note": "Write what happened."})
    if case is None and customer_id is None:
        raise ValidationError("A note belongs to a case or a customer.")
    event = CaseEvent(case_id=case.id if case else None, customer_id=case.customer_id if case else customer_id,
                      kind="note", agent_id=agent_id, channel=channel, note=storable_text(text.strip(), MAX_NOTE),
                      outcome=storable_text(outcome, 200), created_at=utcnow())
    session.add(event)
    return event


def record(session: so.Session, case: Case, kind: str, *, agent_id: int | None = None, note: str = "",
           **values: Any) -> CaseEvent:
    """Add an entry of ``kind`` (message, alert, escalation, survey...) to the case's history."""
    return _event(session, case, kind, agent_id, note, **values)


def history(session: so.Session, case: Case) -> list[CaseEvent]:
    """The case's events, oldest first."""
    return list(session.scalars(sa.select(CaseEvent).where(CaseEvent.case_id == case.id)
                                .order_by(CaseEvent.created_at, CaseEvent.id)))
