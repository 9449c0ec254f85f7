"""The follow-up report as CSV: the same figures as the page, one row per measure and group.

Agent names and root causes are text people typed; a spreadsheet would run one starting with = + - @
as a formula, so such cells get a leading quote.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any, Iterable

from kb.followup.report import STAGES, Figures, Report

# Spreadsheets run a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_HEADER = ("period_from", "period_to", "agent_id", "agent", "measure", "category", "value", "unit")


def safe_cell(value: Any) -> Any:
    """A text cell made inert for spreadsheets (a leading quote); numbers and None pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def figure_rows(figures: Figures) -> list[tuple[str, str, float | int | None, str]]:
    """(measure, category, value, unit) for every measure of one group, in the page's order."""
    rows: list[tuple[str, str, float | int | None, str]] = [("cases", "", figures.cases, "cases"),
                                                            ("resolved", "", figures.resolved, "cases")]
    for name, _column, _label in STAGES:
        stage = figures.timings[name]
        rows += [(f"time_to_{name}_median", "", stage.median, "seconds"),
                 (f"time_to_{name}_p90", "", stage.p90, "seconds"),
                 (f"time_to_{name}_cases", "", stage.count, "cases")]
    rows += [("acknowledged_in_time_share", "", figures.ack_share, "share"),
             ("acknowledged_in_time", "", figures.ack_in_time, "cases"),
             ("acknowledgement_due", "", figures.ack_due, "cases"),
             ("resurvey_response_rate", "", figures.response_rate, "share"),
             ("resurveys_sent", "", figures.surveys_sent, "surveys"),
             ("resurveys_answered", "", figures.surveys_answered, "surveys"),
             ("recovered_share", "", figures.recovered_share, "share"),
             ("recovered", "", figures.recovered, "surveys")]
    rows += [("cases_by_root_cause", cause, n, "cases") for cause, n in figures.by_root_cause.items()]
    rows += [("cases_by_source", source, n, "cases") for source, n in figures.by_source.items()]
    rows += [("wrote_again_share", "", figures.wrote_again_share, "share"),
             ("customers_wrote_again", "", figures.customers_wrote_again, "customers"),
             ("customers_with_resolved_case", "", figures.customers_resolved, "customers")]
    return rows


def report_csv(report: Report, extra: Iterable[tuple[str, str, Any, str]] = ()) -> str:
    """The report's figures as CSV: one row per measure and group (all cases, then each agent).

    ``extra`` rows (measure, category, value, unit) follow the all-cases group: measures that other
    packages build on the report (service recovery's), which this package does not import.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    first, last = report.start.date().isoformat(), (report.end - timedelta(days=1)).date().isoformat()
    for figures in [report.total, *report.agents]:
        agent_id = "" if figures.agent_id is None else figures.agent_id
        rows = figure_rows(figures) + (list(extra) if figures is report.total else [])
        for measure, category, value, unit in rows:
            writer.writerow([first, last, agent_id, safe_cell(figures.label), measure, safe_cell(category),
                             "" if value is None else value, unit])
    return out.getvalue()
