"""The follow-up measures ("know the result"): how fast, how often, why, and whether customers came back.

The report covers the cases *opened* in a period [start, end). Each time is measured from the case's
first signal (``Case.opened_at``; a reopened case keeps it) to its alert, acknowledgement, first
contact and resolution, in wall-clock time. Medians are the usual middle value (the mean of the two
middle ones for an even count); p90 is the nearest-rank 90th percentile (the smallest value with at
least 90 % of the values at or below it). Rows are read as plain tuples, at most MAX_CASES of them,
and the percentiles computed in Python, so the same SQL runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.addresses import sender_key
from kb.autoreply.models import MailRecord
from kb.errors import ValidationError
from kb.followup.models import Case, CustomerIdentity, Signal, Survey
from kb.models import Agent, utcnow

# (name, Case column it ends at, label): the stages a case's clock is read at.
STAGES = (
    ("alert", "alerted_at", "Signal to alert"),
    ("acknowledge", "acknowledged_at", "Signal to acknowledgement"),
    ("contact", "first_contact_at", "Signal to first contact"),
    ("resolve", "resolved_at", "Signal to resolution"),
)
DEFAULT_DAYS = 30
MAX_DAYS = 366  # a longer period would read too many rows for one page view
MAX_CASES = 50_000
WROTE_AGAIN_DAYS = 90
RECOVERED_SCORES = (4, 5)
UNASSIGNED = "unassigned"
CHUNK = 500  # ids per IN (...) list: well under every database's limit on bound parameters
# A survey answer follows kb's own question, so it is not the customer coming back on their own.
NOT_WRITING_AGAIN = ("survey",)


@dataclass(frozen=True)
class Timing:
    """Median and p90 of one stage's durations, in seconds, over ``count`` cases (None when none)."""

    count: int
    median: float | None
    p90: float | None


@dataclass
class Figures:
    """Every measure for one group of cases: all of them, one agent's, or the unassigned ones."""

    label: str
    agent_id: int | None = None
    cases: int = 0
    resolved: int = 0
    timings: dict[str, Timing] = field(default_factory=dict)
    ack_due: int = 0  # acknowledged, or unacknowledged past the deadline
    ack_in_time: int = 0
    surveys_sent: int = 0
    surveys_answered: int = 0
    recovered: int = 0
    by_root_cause: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)
    customers_resolved: int = 0
    customers_wrote_again: int = 0

    @property
    def ack_share(self) -> float | None:
        """Share of due cases acknowledged within the deadline."""
        return ratio(self.ack_in_time, self.ack_due)

    @property
    def response_rate(self) -> float | None:
        """Re-surveys answered of those sent."""
        return ratio(self.surveys_answered, self.surveys_sent)

    @property
    def recovered_share(self) -> float | None:
        """Answered re-surveys scored 4 or 5."""
        return ratio(self.recovered, self.surveys_answered)

    @property
    def wrote_again_share(self) -> float | None:
        """Customers with a resolved case who wrote again within WROTE_AGAIN_DAYS."""
        return ratio(self.customers_wrote_again, self.customers_resolved)


@dataclass(frozen=True)
class Week:
    """Cases opened in one week of the period, by where they stand now."""

    start: date
    open: int
    resolved: int
    recovered: int


@dataclass
class Report:
    """The measures of one period: all cases, per agent, and per week."""

    start: datetime
    end: datetime
    ack_minutes: float
    total: Figures
    agents: list[Figures]
    weeks: list[Week]
    truncated: bool = False  # more than MAX_CASES cases: the figures cover the first ones
    # (case id, customer id, recovered) of every counted case, recovered None when no re-survey was
    # answered: for measures built on the report elsewhere (kb.recovery.report; followup never imports it).
    outcomes: list[tuple[int, int | None, bool | None]] = field(default_factory=list)


def ratio(part: int, whole: int) -> float | None:
    """part / whole, or None when there is nothing to divide by."""
    return part / whole if whole else None


def p90(values: list[float]) -> float | None:
    """The nearest-rank 90th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def timing(values: list[float]) -> Timing:
    """Median and p90 of ``values``."""
    return Timing(len(values), statistics.median(values) if values else None, p90(values))


FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)  # any real follow-up lies between


def parse_period(start_text: str | None, end_text: str | None, today: date | None = None) -> tuple[date, date]:
    """The first and last day (inclusive) from YYYY-MM-DD texts; default the last DEFAULT_DAYS days."""
    today = today or utcnow().date()
    last = _parse_day(end_text, "to") if end_text else today
    first = _parse_day(start_text, "from") if start_text else last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise ValidationError("The period's start is after its end: swap the two dates.")
    if (last - first).days + 1 > MAX_DAYS:
        raise ValidationError(f"Choose a period of at most {MAX_DAYS} days.")
    return first, last


def _parse_day(text: str, which: str) -> date:
    """One date as YYYY-MM-DD, or ValidationError naming the field."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"The '{which}' date {text[:40]!r} is not a date: write it as YYYY-MM-DD.") from None
    if not FIRST_DAY <= day <= LAST_DAY:  # the day after 9999-12-31 does not exist
        raise ValidationError(f"The '{which}' date must lie between {FIRST_DAY} and {LAST_DAY}.")
    return day


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """The period's [start, end) in UTC: from the first day's midnight to the day after the last."""
    return (datetime.combine(first, time(), timezone.utc),
            datetime.combine(last + timedelta(days=1), time(), timezone.utc))


def build_report(session: so.Session, settings: Mapping[str, Any], start: datetime, end: datetime, *,
                 assignee: int | str | None = None, now: datetime | None = None) -> Report:
    """The measures of the cases opened in [start, end); ``assignee`` an agent id or UNASSIGNED narrows them."""
    now = now or utcnow()
    ack = float(settings["FOLLOWUP_ACK_MINUTES"])
    rows = _case_rows(session, start, end, assignee)
    truncated = len(rows) > MAX_CASES
    rows = rows[:MAX_CASES]
    wrote_again = _cases_written_again(session, rows)
    names = {agent_id: name for agent_id, name in session.execute(sa.select(Agent.id, Agent.name))}
    groups: dict[int | None, list[Any]] = {}
    for row in rows:
        groups.setdefault(row.assignee_id, []).append(row)
    agents = [_figures(names.get(agent_id, f"Agent #{agent_id}") if agent_id else UNASSIGNED, agent_id,
                       group, ack, now, wrote_again)
              for agent_id, group in groups.items()]
    agents.sort(key=lambda f: (f.agent_id is None, f.label.casefold(), f.agent_id or 0))
    return Report(start, end, ack, _figures("all", None, rows, ack, now, wrote_again), agents,
                  _weeks(rows, start, end), truncated, _outcomes(rows))


def _case_rows(session: so.Session, start: datetime, end: datetime, assignee: int | str | None) -> list[Any]:
    """The period's cases with their survey, as plain rows, oldest first (one more than MAX_CASES at most)."""
    stmt = (sa.select(Case.id, Case.customer_id, Case.assignee_id, Case.source, Case.root_cause,
                      Case.opened_at, Case.alerted_at, Case.acknowledged_at, Case.first_contact_at,
                      Case.resolved_at, Case.score_after, Survey.sent_at, Survey.answered_at,
                      Survey.score.label("survey_score"))
            .outerjoin(Survey, Survey.case_id == Case.id)
            .where(Case.opened_at >= start, Case.opened_at < end)
            .order_by(Case.opened_at, Case.id).limit(MAX_CASES + 1))
    if assignee == UNASSIGNED:
        stmt = stmt.where(Case.assignee_id.is_(None))
    elif assignee is not None:
        stmt = stmt.where(Case.assignee_id == int(assignee))
    return list(session.execute(stmt))


def _after_score(row: Any) -> int | None:
    """The customer's answer to the re-survey (the case keeps a copy as score_after)."""
    return row.survey_score if row.survey_score is not None else row.score_after


def _figures(label: str, agent_id: int | None, rows: list[Any], ack_minutes: float, now: datetime,
             wrote_again: set[int]) -> Figures:
    """Every measure over ``rows``."""
    deadline = timedelta(minutes=ack_minutes)
    figures = Figures(label, agent_id, cases=len(rows), resolved=sum(r.resolved_at is not None for r in rows))
    for name, column, _label in STAGES:
        figures.timings[name] = timing([max(0.0, (getattr(r, column) - r.opened_at).total_seconds())
                                        for r in rows if getattr(r, column) is not None])
    for row in rows:
        if row.acknowledged_at is not None or now - row.opened_at > deadline:
            figures.ack_due += 1
            figures.ack_in_time += row.acknowledged_at is not None and row.acknowledged_at - row.opened_at <= deadline
        answered = row.answered_at is not None and _after_score(row) is not None
        figures.surveys_sent += row.sent_at is not None or answered
        figures.surveys_answered += answered
        figures.recovered += answered and _after_score(row) in RECOVERED_SCORES
        if row.root_cause and row.resolved_at is not None:
            figures.by_root_cause[row.root_cause] = figures.by_root_cause.get(row.root_cause, 0) + 1
        figures.by_source[row.source] = figures.by_source.get(row.source, 0) + 1
    figures.by_root_cause = dict(sorted(figures.by_root_cause.items(), key=lambda kv: (-kv[1], kv[0])))
    figures.by_source = dict(sorted(figures.by_source.items(), key=lambda kv: (-kv[1], kv[0])))
    resolved = [r for r in rows if r.resolved_at is not None and r.customer_id is not None]
    figures.customers_resolved = len({r.customer_id for r in resolved})
    figures.customers_wrote_again = len({r.customer_id for r in resolved if r.id in wrote_again})
    return figures


def _outcomes(rows: list[Any]) -> list[tuple[int, int | None, bool | None]]:
    """(case id, customer id, recovered) of each case; recovered is None when no re-survey was answered."""
    return [(r.id, r.customer_id, _after_score(r) in RECOVERED_SCORES
             if r.answered_at is not None and _after_score(r) is not None else None) for r in rows]


def _weeks(rows: list[Any], start: datetime, end: datetime) -> list[Week]:
    """Cases per week of the period (weeks counted from its start), split by outcome."""
    count = max(1, math.ceil((end - start) / timedelta(days=7)))
    tallies = [[0, 0, 0] for _ in range(count)]
    for row in rows:
        index = min(count - 1, (row.opened_at - start) // timedelta(days=7))
        if row.resolved_at is None:
            tallies[index][0] += 1
        elif row.answered_at is not None and _after_score(row) in RECOVERED_SCORES:
            tallies[index][2] += 1
        else:
            tallies[index][1] += 1
    return [Week((start + timedelta(days=7 * i)).date(), *tally) for i, tally in enumerate(tallies)]


def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    """``values`` in lists of at most CHUNK."""
    values = sorted(set(values))
    for i in range(0, len(values), CHUNK):
        yield values[i:i + CHUNK]


def _cases_written_again(session: so.Session, rows: list[Any]) -> set[int]:
    """Ids of resolved cases whose customer wrote again within WROTE_AGAIN_DAYS after the resolution.

    Writing again is an email from one of the customer's addresses (matched by sender_key, as the
    auto-responder keys senders) or a signal of theirs, other than a re-survey answer.
    """
    resolved = [r for r in rows if r.resolved_at is not None and r.customer_id is not None]
    if not resolved:
        return set()
    window = timedelta(days=WROTE_AGAIN_DAYS)
    since, until = min(r.resolved_at for r in resolved), max(r.resolved_at for r in resolved) + window
    keys: dict[int, set[str]] = {}
    for ids in _chunks(r.customer_id for r in resolved):
        for customer_id, value in session.execute(sa.select(CustomerIdentity.customer_id, CustomerIdentity.value).where(
                CustomerIdentity.customer_id.in_(ids), CustomerIdentity.kind == "email")):
            keys.setdefault(customer_id, set()).add(sender_key(value))
    mail: dict[str, list[datetime]] = {}
    for chunk in _chunks(key for found in keys.values() for key in found):
        for key, when in session.execute(sa.select(MailRecord.sender_key, MailRecord.created_at).where(
                MailRecord.sender_key.in_(chunk), MailRecord.created_at > since, MailRecord.created_at <= until)):
            mail.setdefault(key, []).append(when)
    signals: dict[int, list[datetime]] = {}
    for ids in _chunks(r.customer_id for r in resolved):
        for customer_id, when in session.execute(sa.select(Signal.customer_id, Signal.created_at).where(
                Signal.customer_id.in_(ids), Signal.source.not_in(NOT_WRITING_AGAIN),
                Signal.created_at > since, Signal.created_at <= until)):
            signals.setdefault(customer_id, []).append(when)
    found = set()
    for row in resolved:
        times = [t for key in keys.get(row.customer_id, ()) for t in mail.get(key, ())]
        times += signals.get(row.customer_id, [])
        if any(row.resolved_at < t <= row.resolved_at + window for t in times):
            found.add(row.id)
    return found

