"""Agent metrics: what each agent did in a period, from the records kb already keeps.

- articles written: articles an agent created in the period (Article.created_at, author);
- articles updated: revisions an agent saved in the period after an article's first one;
- emails answered from kb: MailRecord.answered_by / answered_at in the period;
- follow-up cases acknowledged, contacted and resolved, with their median times, and customers
  recovered: the follow-up report's own per-agent figures (kb.followup.report, cases opened in the
  period, per assignee), never recomputed here;
- recovery spend: the recovery ledger's spend per agent (kb.recovery.insights, offers made in the
  period, per currency, counted as the budgets count them).

The period's language narrows articles, revisions and emails; follow-up cases and recovery spend
count every language (a case is the customer's, not an article's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.models import MailRecord
from kb.followup import report as followup_report
from kb.insights.periods import Period
from kb.models import Agent, Article, Revision
from kb.recovery import insights as recovery_insights

MAX_AGENTS = 500


@dataclass
class AgentFigures:
    """One agent's work in the period."""

    agent_id: int
    name: str
    written: int = 0
    updated: int = 0
    answered: int = 0
    acknowledged: int = 0
    acknowledge_median: float | None = None  # seconds from the case's first signal
    contacted: int = 0
    contact_median: float | None = None
    resolved: int = 0
    resolve_median: float | None = None
    recovered: int = 0  # customers whose re-survey scored 4 or 5 (the follow-up report's measure)
    spend: list[tuple[str, int, Decimal | None]] = field(default_factory=list)  # (currency, offers, amount)

    @property
    def gestures(self) -> int:
        """Recovery offers made (standing: not declined or cancelled), every currency and none."""
        return sum(count for _currency, count, _amount in self.spend)

    @property
    def active(self) -> bool:
        """Whether the agent did anything counted here."""
        return any((self.written, self.updated, self.answered, self.acknowledged, self.contacted, self.resolved,
                    self.recovered, self.spend))


def _counts(session: so.Session, stmt: sa.Select) -> dict[int, int]:
    return {agent_id: int(n) for agent_id, n in session.execute(stmt) if agent_id is not None}


def _work(session: so.Session, period: Period) -> tuple[dict[int, int], dict[int, int], dict[int, int]]:
    """Articles written, revisions saved after the first, and emails answered, per agent."""
    lang = period.lang
    written = (sa.select(Article.author_id, sa.func.count()).where(
        Article.created_at >= period.start, Article.created_at < period.end,
        *([Article.lang == lang] if lang else [])).group_by(Article.author_id))
    updated = (sa.select(Revision.author_id, sa.func.count()).where(
        Revision.created_at >= period.start, Revision.created_at < period.end, Revision.number > 1,
        *([Revision.lang == lang] if lang else [])).group_by(Revision.author_id))
    answered = (sa.select(MailRecord.answered_by, sa.func.count()).where(
        MailRecord.answered_at >= period.start, MailRecord.answered_at < period.end,
        *([MailRecord.lang == lang] if lang else [])).group_by(MailRecord.answered_by))
    return _counts(session, written), _counts(session, updated), _counts(session, answered)


def team(session: so.Session, period: Period, settings: Mapping[str, Any]) -> list[AgentFigures]:
    """Every agent who did something counted in the period (and every active agent), by name."""
    names = {agent_id: (name, active) for agent_id, name, active in
             session.execute(sa.select(Agent.id, Agent.name, Agent.active).limit(MAX_AGENTS))}
    rows = {agent_id: AgentFigures(agent_id, name) for agent_id, (name, _active) in names.items()}
    written, updated, answered = _work(session, period)
    for agent_id, row in rows.items():
        row.written, row.updated, row.answered = (written.get(agent_id, 0), updated.get(agent_id, 0),
                                                  answered.get(agent_id, 0))
    report = followup_report.build_report(session, settings, period.start, period.end)
    for figures in report.agents:
        row = rows.get(figures.agent_id) if figures.agent_id is not None else None
        if row is None:
            continue  # unassigned cases belong to nobody's row
        ack, contact, resolve = (figures.timings[name] for name in ("acknowledge", "contact", "resolve"))
        row.acknowledged, row.acknowledge_median = ack.count, ack.median
        row.contacted, row.contact_median = contact.count, contact.median
        row.resolved, row.resolve_median = resolve.count, resolve.median
        row.recovered = figures.recovered
    spent = recovery_insights.period(session, "period", period.start, period.end)
    for line in spent.by_agent:
        if line.key in rows:
            rows[line.key].spend.append((line.currency, line.count, line.amount))
    shown = [row for agent_id, row in rows.items() if row.active or names[agent_id][1]]
    return sorted(shown, key=lambda row: (row.name.casefold(), row.agent_id))


def spend_text(spend: list[tuple[str, int, Decimal | None]]) -> str:
    """"EUR 120.00; NOK 300.00": money per currency (gestures without a currency are only counted)."""
    return "; ".join(f"{currency} {amount:.2f}" for currency, _count, amount in spend
                     if currency and amount is not None)


def hours(seconds: float | None) -> str:
    """A median time as hours with one decimal ("" when there is none)."""
    return "" if seconds is None else f"{seconds / 3600:.1f}"
