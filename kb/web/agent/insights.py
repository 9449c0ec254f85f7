"""/agent/insights: the dashboard. Deflection (honestly counted), questions by channel, top gaps,
articles that need attention and follow-ups waiting, for a period and a language.

The figures come from kb.insights (deflection, searches, health); this module turns them into
tables (the page, its CSV and its charts all read the same rows) and answers the chart images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from flask import abort, current_app, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from kb.db import get_session
from kb.insights import charts, deflection, health, searches
from kb.insights.deflection import Counts, Deflection
from kb.insights.periods import Period
from kb.web.agent import bp
from kb.web.agent.insights_common import (csv_response, page_context, period_or_default, require, svg_response,
                                          wants_csv)

LIST_LIMIT = 10  # rows of "Top gaps" and "Articles that need attention"
CHANNEL_LABELS = {"email": _l("Email"), "web_form": _l("Contact form")}


@dataclass(frozen=True)
class Table:
    """One table of the page: its header and rows (cells: text, numbers, or None for "—")."""

    name: str
    title: str
    header: list[str]
    rows: list[list[Any]]


def _share(part: int, whole: int) -> str | None:
    """``part`` of ``whole`` as a whole percentage ("42%"), None without a whole."""
    return f"{part / whole:.0%}" if whole else None


def _outcome_header(first: str) -> list[str]:
    """The header of every table of counts."""
    return [first, _("Questions"), _("Confirmed"), _("Assumed"), _("Reopened"), _("Pending"), _("Deflection rate")]


def _outcome_row(label: Any, counts: Counts) -> list[Any]:
    """One row of counts, the rate last."""
    return [label, *counts.as_tuple(), _share(counts.deflected, counts.questions)]


def _category_label(value: str) -> str:
    """A category as shown ("" is the questions kb did not answer, or whose article has none)."""
    return value or _("(none: not answered by kb, or no category)")


def _counts_tables(d: Deflection) -> list[Table]:
    """The tables of outcomes: over time, per channel, per category, per language."""
    first = _("Week of") if d.bucket == "week" else _("Day")
    return [
        Table("over_time", _("Deflection over time"), _outcome_header(first),
              [_outcome_row(day.isoformat(), counts) for day, counts in d.by_time]),
        Table("channels", _("Questions by channel"), _outcome_header(_("Channel")),
              [_outcome_row(str(CHANNEL_LABELS.get(name, name)), counts) for name, counts in d.by_channel]),
        Table("categories", _("By category"), _outcome_header(_("Category")),
              [_outcome_row(_category_label(name), counts) for name, counts in d.by_category]),
        Table("languages", _("By language"), _outcome_header(_("Language")),
              [_outcome_row(name or _("(unknown)"), counts) for name, counts in d.by_language]),
    ]


def _gaps_table(period: Period) -> Table:
    """Top gaps: the period's failing searches (kb.insights.searches)."""
    rows = [[group.query, group.searches, group.visitors, group.no_results, group.no_click, group.contacted]
            for group in searches.top_gaps(get_session(), period, LIST_LIMIT)]
    return Table("gaps", _("Top gaps"), [_("Search"), _("Searches"), _("Visitors"), _("No results"),
                                         _("Results, no click"), _("Then used the contact form")], rows)


def _attention_table(period: Period) -> Table:
    """Articles that need attention: flagged or overdue for review (kb.insights.health)."""
    rows = [[item.title, item.lang, item.views, item.votes,
             None if item.helpful_share is None else f"{item.helpful_share:.0%}",
             _("yes") if item.flagged else "", item.review_by.isoformat() if item.review_by else None,
             _("yes") if item.overdue else ""]
            for item in health.needing_attention(get_session(), period, current_app.config, LIST_LIMIT)]
    return Table("attention", _("Articles that need attention"),
                 [_("Article"), _("Language"), _("Views"), _("Votes"), _("Helpful"), _("Flagged"),
                  _("Review by"), _("Overdue")], rows)


TABLES: dict[str, Callable[..., Any]] = {"gaps": _gaps_table, "attention": _attention_table}


def _chart(name: str, d: Deflection) -> bytes:
    """The chart ``name`` of the figures (its numbers are the table of the same name)."""
    if name == "over_time":
        labels = [day.strftime("%d %b") for day, _counts in d.by_time]
        rest = [c.questions - c.deflected for _day, c in d.by_time]
        return charts.render("stacked", _("Deflection over time"), labels, {
            _("Confirmed"): [c.confirmed for _day, c in d.by_time],
            _("Assumed"): [c.assumed for _day, c in d.by_time],
            _("Not deflected"): rest})
    if name == "channels":
        labels = [str(CHANNEL_LABELS.get(channel, channel)) for channel, _counts in d.by_channel]
        return charts.render("bar", _("Questions by channel"), labels, {
            _("Questions"): [c.questions for _name, c in d.by_channel],
            _("Confirmed"): [c.confirmed for _name, c in d.by_channel],
            _("Assumed"): [c.assumed for _name, c in d.by_channel]})
    abort(404)


@bp.get("/insights")
def insights():
    """The dashboard for the chosen period and language (default: the last 30 days, every language)."""
    require()
    period, error = period_or_default()
    session = get_session()
    table = wants_csv()
    if table in TABLES:  # the gaps and attention lists need none of the deflection figures
        found = TABLES[table](period)
        return csv_response(table, period, found.header, found.rows)
    d = deflection.deflection(session, period, current_app.config)
    tables = {t.name: t for t in _counts_tables(d)}
    if table is not None:
        if table not in tables:
            abort(404)
        return csv_response(table, period, tables[table].header, tables[table].rows)
    tables.update({name: build(period) for name, build in TABLES.items()})
    waiting, oldest = deflection.followups_waiting(session)
    chart_urls = {name: url_for("agent.insights_chart", name=name, **period.query()) for name in ("over_time", "channels")}
    return render_template("agent/insights.html", d=d, tables=tables, chart_urls=chart_urls,
                           followups_waiting=waiting, followups_oldest=oldest,
                           **page_context(period, error))


@bp.get("/insights/chart/<name>.svg")
def insights_chart(name: str):
    """One of the dashboard's charts as an SVG image, for the same period and language."""
    require()
    if name not in ("over_time", "channels"):
        abort(404)
    period, _error = period_or_default()
    return svg_response(_chart(name, deflection.deflection(get_session(), period, current_app.config)))
