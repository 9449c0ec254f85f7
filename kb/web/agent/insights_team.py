"""/agent/insights/team: what each agent did in the period (support and admins only: it names customers' cases).

The figures come from kb.insights.team, which reuses the follow-up report's and the recovery
ledger's own measures. The one table is built here as rows of cells for the page and its CSV alike.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, render_template
from flask_babel import gettext as _

from kb.db import get_session
from kb.insights import charts
from kb.insights import team as kb_team
from kb.web.agent import bp
from kb.web.agent.insights_common import (csv_response, page_context, period_or_default, require, svg_response,
                                          wants_csv)

PERMISSION = "read_customer_mail"  # as insights_common.PAGES says for this tab
CHART_AGENTS = 12


def header() -> list[str]:
    """The team table's columns."""
    return [_("Agent"), _("Articles written"), _("Articles updated"), _("Emails answered from kb"),
            _("Cases acknowledged"), _("Median hours to acknowledge"), _("Cases contacted"),
            _("Median hours to contact"), _("Cases resolved"), _("Median hours to resolve"),
            _("Customers recovered"), _("Recovery gestures"), _("Recovery spend")]


def cells(row: kb_team.AgentFigures) -> list[Any]:
    """One agent's row, as the page shows it and the CSV writes it."""
    return [row.name, row.written, row.updated, row.answered, row.acknowledged, kb_team.hours(row.acknowledge_median),
            row.contacted, kb_team.hours(row.contact_median), row.resolved, kb_team.hours(row.resolve_median),
            row.recovered, row.gestures, kb_team.spend_text(row.spend)]


def _figures():
    period, error = period_or_default()
    return period, error, kb_team.team(get_session(), period, current_app.config)


@bp.get("/insights/team")
def insights_team():
    """Per agent: articles written and updated, emails answered, follow-up cases and their times, recovery."""
    require(PERMISSION)
    period, error, rows = _figures()
    table = wants_csv()
    if table is not None:
        if table != "team":
            abort(404, "There is no such table on this page: use team.")
        return csv_response("team", period, header(), [cells(row) for row in rows])
    return render_template("agent/insights_team.html", header=header(), rows=[cells(row) for row in rows],
                           endpoint="agent.insights_team", **page_context(period, error))


@bp.get("/insights/team/chart/<name>.svg")
def insights_team_chart(name: str):
    """The "work" chart: articles written and updated, emails answered and cases resolved per agent."""
    require(PERMISSION)
    if name != "work":
        abort(404, "There is no such chart: use work.")
    _period, _error, rows = _figures()
    rows = sorted((r for r in rows if r.active), key=lambda r: -(r.written + r.updated + r.answered + r.resolved))
    rows = rows[:CHART_AGENTS]
    series = {_("Articles written"): [r.written for r in rows], _("Articles updated"): [r.updated for r in rows],
              _("Emails answered from kb"): [r.answered for r in rows], _("Cases resolved"): [r.resolved for r in rows]}
    return svg_response(charts.render("bar", _("Work per agent"), [r.name for r in rows], series))
