"""/agent/recovery: what the service-recovery ledger says (spend, budgets, approvals, outliers), and its CSV.

The figures come from kb.recovery.insights; this module checks roles and lays the bars out as inline
SVG drawn on the server (the CSP allows no script and no inline style: the bars are shapes coloured
by agent.css classes, and the tables beside them carry the same numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask import Response, current_app, render_template, request, stream_with_context, url_for
from flask_babel import gettext as _

from kb import agents
from kb.db import get_session
from kb.errors import ValidationError
from kb.models import utcnow
from kb.recovery import insights, ledger_csv
from kb.recovery.models import Bound, GestureType
from kb.web.agent import bp
from kb.web.agent.auth import current_agent, require

WIDTH, ROW, LEFT = 400, 28, 140  # SVG units: about the width of a phone, so its text stays legible there


@dataclass(frozen=True)
class Bar:
    """One agent's bar in a spend chart."""

    y: float
    width: float
    label: str
    value: str
    flagged: bool


def money(amount: Decimal | None, currency: str) -> str:
    """An amount with its currency, or a dash for gestures that are counted, not summed."""
    return "—" if amount is None or not currency else f"{Decimal(amount):,.2f} {currency}"


def chart(period: insights.Period, found: list[insights.Outliers]) -> list[dict]:
    """One horizontal bar chart per currency of the period's spend per agent; outliers marked."""
    flagged = {(o.currency, line.key) for o in found for line in o.flagged}
    charts = []
    for currency in sorted({line.currency for line in period.by_agent}):
        lines = [line for line in period.by_agent if line.currency == currency]
        values = [insights.spent_value(line) for line in lines]
        top = max(values + [Decimal(1)])
        bars = [Bar(i * ROW + 6, round(float(value / top) * (WIDTH - LEFT - 110), 1), line.label,
                    money(line.amount, currency) if currency else str(line.count), (currency, line.key) in flagged)
                for i, (line, value) in enumerate(zip(lines, values))]
        charts.append({"currency": currency, "bars": bars, "height": len(bars) * ROW + 12})
    return charts


def _rules(session) -> list[tuple[Bound, str, str]]:
    """Active per-case and per-customer bounds with their gesture's name and unit ("" = overall)."""
    return list(session.execute(
        sa.select(Bound, sa.func.coalesce(GestureType.name, ""), GestureType.kind, GestureType.currency)
        .outerjoin(GestureType, GestureType.id == Bound.gesture_type_id)
        .where(Bound.active.is_(True), Bound.scope.in_(("per_incident", "customer_90d")))
        .order_by(Bound.scope, Bound.gesture_type_id.is_not(None), Bound.id)))


@bp.get("/recovery")
def recovery():
    """Spend this week and this month, budgets left, approvals waiting, and agents far above the median."""
    require("read_customer_mail")
    session, config, now = get_session(), current_app.config, utcnow()
    periods = insights.spend(session, config, now)
    outliers = {period.name: insights.outliers(period) for period in periods}
    return render_template(
        "agent/recovery.html", periods=periods, outliers=outliers,
        charts={period.name: chart(period, outliers[period.name]) for period in periods},
        budgets=insights.budgets(session, config, now), rules=_rules(session), waiting=insights.pending(session),
        approvals_url=url_for("agent.recovery_approvals"), names=insights.agent_names(session),
        zone=config.get("TIME_ZONE") or "UTC", money=money, last_day=lambda end: (end - timedelta(days=1)).date(),
        chart_box={"width": WIDTH, "row": ROW, "left": LEFT}, factor=insights.OUTLIER_FACTOR,
        min_agents=insights.MIN_AGENTS, can_export=agents.can(current_agent(), "manage_agents"))


@bp.get("/recovery/ledger.csv")
def recovery_ledger_csv():
    """Every ledger row as CSV, optionally from/to a day (YYYY-MM-DD, in TIME_ZONE); admins only."""
    require("manage_agents")
    try:
        start, end = ledger_csv.period(current_app.config, request.args.get("from"), request.args.get("to"))
    except ValidationError as error:
        return Response(_("Cannot export the ledger: %(error)s", error=str(error)) + "\n", 422,
                        mimetype="text/plain")
    first, last = (ledger_csv.parse_day(request.args.get(key), key) for key in ("from", "to"))
    name = f"recovery-ledger-{first or 'start'}-{last or utcnow().date()}.csv"
    return Response(stream_with_context(ledger_csv.lines(get_session(), start, end)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
