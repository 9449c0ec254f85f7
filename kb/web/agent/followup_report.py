"""/agent/followups/report: the follow-up measures for a period, as a table, a chart and CSV.

The figures come from kb.followup.report; this module reads the form, and lays the chart out as
inline SVG drawn on the server (the CSP allows no script and no inline style, so the bars are
plain shapes coloured by classes in agent.css, and the table beside them carries the same numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import Response, current_app, render_template, request

from kb.db import get_session
from kb.errors import ValidationError
from kb.followup import report as measures
from kb.followup.report_csv import report_csv
from kb.models import Agent, parse_id
from kb.recovery.report import csv_rows, gesture_outcomes
from kb.web.agent import bp
from kb.web.agent.auth import require

WIDTH, HEIGHT = 640, 220  # the chart's drawing area, in SVG user units (it scales with the page)
LEFT, BOTTOM, TOP = 44, 36, 12
LABELS = 236  # where the time chart's bars start: its step names sit to the left
OUTCOMES = (("open", "Open"), ("resolved", "Resolved"), ("recovered", "Recovered (after-score 4-5)"))


@dataclass(frozen=True)
class Bar:
    """One rectangle of a chart, with the words a screen reader or a hover shows for it."""

    x: float
    y: float
    width: float
    height: float
    kind: str
    title: str


def _require_support() -> None:
    """Support agents and admins only, as for customers' mail: the report counts their cases."""
    require("read_customer_mail")


def _assignee(value: str) -> int | str | None:
    """The agent filter: empty (all), "unassigned", or an agent's id."""
    value = (value or "").strip()
    if not value:
        return None
    if value == measures.UNASSIGNED:
        return value
    agent_id = parse_id(value)
    if agent_id is None:
        raise ValidationError("Choose an agent from the list.")
    return agent_id


def _read_form():
    """(first day, last day, assignee) from the query string; ValidationError if malformed."""
    first, last = measures.parse_period(request.args.get("from"), request.args.get("to"))
    return first, last, _assignee(request.args.get("agent", ""))


def _build(first, last, assignee):
    """The report of the chosen period and agent."""
    start, end = measures.day_bounds(first, last)
    return measures.build_report(get_session(), current_app.config, start, end, assignee=assignee)


@bp.get("/followups/report")
def followup_report():
    """The measures of the chosen period (default the last 30 days), with a chart and a table."""
    _require_support()
    session = get_session()
    team = list(session.execute(sa.select(Agent.id, Agent.name).order_by(Agent.name)))
    try:
        first, last, assignee = _read_form()
    except ValidationError as error:
        return render_template("agent/followup_report.html", error=str(error), report=None, team=team,
                               form=request.args, unassigned=measures.UNASSIGNED), 400
    report = _build(first, last, assignee)
    return render_template("agent/followup_report.html", error=None, report=report, team=team,
                           gestures=gesture_outcomes(session, report.outcomes),
                           form={"from": first.isoformat(), "to": last.isoformat(), "agent": request.args.get("agent", "")},
                           unassigned=measures.UNASSIGNED, stages=measures.STAGES, outcomes=OUTCOMES,
                           weeks=week_bars(report.weeks), stage_bars=stage_bars(report.total),
                           chart={"width": WIDTH, "height": HEIGHT, "left": LEFT, "top": TOP, "bottom": BOTTOM, "labels": LABELS},
                           duration=duration, share=share)


@bp.get("/followups/report.csv")
def followup_report_csv():
    """The same figures as CSV."""
    _require_support()
    try:
        first, last, assignee = _read_form()
    except ValidationError as error:
        return Response(str(error) + "\n", 400, mimetype="text/plain")
    name = f"followup-report-{first.isoformat()}-{last.isoformat()}.csv"
    report = _build(first, last, assignee)
    extra = csv_rows(gesture_outcomes(get_session(), report.outcomes))  # recovery's measures, all cases
    return Response(report_csv(report, extra), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def week_bars(weeks: list[measures.Week]) -> dict:
    """Stacked bars of cases per week by outcome, the y-axis top, and the week labels to print."""
    top = max([w.open + w.resolved + w.recovered for w in weeks] + [1])
    band = (WIDTH - LEFT) / max(1, len(weeks))
    scale = (HEIGHT - TOP - BOTTOM) / top
    bars, labels = [], []
    every = max(1, len(weeks) // 8)  # at most about eight dates under the axis, so they stay legible
    for i, week in enumerate(weeks):
        x, base = LEFT + i * band + band * 0.15, HEIGHT - BOTTOM
        for kind, label in OUTCOMES:
            count = getattr(week, kind)
            if count:
                height = count * scale
                base -= height
                bars.append(Bar(round(x, 1), round(base, 1), round(band * 0.7, 1), round(height, 1), kind,
                                f"Week of {week.start.isoformat()}: {count} {label.lower()}"))
        if i % every == 0:
            labels.append((round(LEFT + i * band + band / 2, 1), week.start.strftime("%d %b")))
    return {"bars": bars, "labels": labels, "top": top}


def stage_bars(figures: measures.Figures) -> list[Bar]:
    """Horizontal bars of the median time to each stage, the longest filling the width."""
    longest = max([t.median or 0 for t in figures.timings.values()] + [1])
    step = (HEIGHT - TOP - BOTTOM) / len(measures.STAGES)
    bars = []
    for i, (name, _column, label) in enumerate(measures.STAGES):
        median = figures.timings[name].median
        width = (WIDTH - LABELS - 80) * (median or 0) / longest  # 80 left for the figure after the bar
        width = max(width, 2) if median else width  # a short time stays visible beside the long ones
        bars.append(Bar(LABELS, round(TOP + i * step + step * 0.2, 1), round(width, 1), round(step * 0.6, 1), name,
                        f"{label}: median {duration(median)}"))
    return bars


def duration(seconds: float | None) -> str:
    """A duration for people: seconds, minutes, hours or days; a dash when there is none."""
    if seconds is None:
        return "—"
    for limit, unit, size in ((90, "s", 1), (90 * 60, "min", 60), (48 * 3600, "h", 3600)):
        if seconds < limit:
            return f"{seconds / size:.{0 if size == 1 else 1}f} {unit}".replace(".0 ", " ")
    return f"{seconds / 86400:.1f} days".replace(".0 ", " ")


def share(value: float | None) -> str:
    """A share as a percentage with one decimal, or a dash when nothing was counted."""
    return "—" if value is None else f"{value * 100:.1f} %".replace(".0 ", " ")
