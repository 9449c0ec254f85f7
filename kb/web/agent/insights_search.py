"""/agent/insights/search: top searches, searches that found nothing, searches nobody opened a result of.

The figures come from kb.insights.searches; this module reads the period, builds each table's
rows once (the page and its CSV show the same rows) and draws the searches-per-day chart.
Each gap row links to the editor's new-article form with the query as its title, and (for admins)
to the synonyms page with the query's words.
"""

from __future__ import annotations

from flask import abort, current_app, render_template, url_for
from flask_babel import gettext as _

from kb import agents
from kb.db import get_session
from kb.insights import charts, searches
from kb.insights.periods import Period
from kb.web.agent import bp
from kb.web.agent.auth import current_agent
from kb.web.agent.insights_common import (csv_response, page_context, period_or_default, require, svg_response,
                                          wants_csv)

TABLE_ROWS = 25  # rows per table: the page and its CSV
ALL_TABLES = (*searches.TABLES, "per_day")


def _headers() -> dict[str, list[str]]:
    """The column names of each table, in the page's language (the CSV uses the same)."""
    groups = [_("Search"), _("Customers"), _("Searches"), _("No results"), _("No click"), _("Then contact form")]
    return {"top": groups, "no_results": groups, "no_click": groups,
            "per_day": [_("Day"), _("Searches"), _("Found nothing")]}


def _group_row(group: searches.SearchGroup) -> list:
    """One group's cells, as the page and the CSV show them."""
    return [group.query, group.visitors, group.searches, group.no_results, group.no_click,
            f"{group.contacted_share:.0%}"]


def _tables(period: Period, names=ALL_TABLES, *,
            totals: bool = True) -> tuple[dict[str, dict], searches.SearchSummary | None]:
    """The tables ``names``: each one's groups (for the links) and rows (for the cells and the CSV); and the totals."""
    session, tables = get_session(), {}
    wanted = tuple(name for name in searches.TABLES if name in names)
    found, summary = ({}, None) if not (wanted or totals) else searches.report(session, period, wanted, TABLE_ROWS,
                                                                               totals=totals)
    for name, groups in found.items():
        tables[name] = {"groups": groups, "rows": [_group_row(group) for group in groups]}
    if "per_day" in names:
        days = searches.per_day(session, period, current_app.config)
        tables["per_day"] = {"groups": days, "rows": [[d.day.isoformat(), d.searches, d.no_results] for d in days]}
    return tables, summary


@bp.get("/insights/search")
def insights_search():
    """The search report of a period and language, or one of its tables as CSV (?format=csv&table=...)."""
    require()
    period, error = period_or_default()
    table = wants_csv()
    if table is not None:
        if table not in ALL_TABLES:
            abort(404, _("There is no table \"%(table)s\" on this page: use one of %(tables)s.", table=table,
                         tables=", ".join(ALL_TABLES)))
        rows = _tables(period, (table,), totals=False)[0][table]["rows"]  # only this table's queries
        return csv_response(f"searches-{table}", period, _headers()[table], rows)
    tables, summary = _tables(period)
    return render_template("agent/insights_search.html", tables=tables, headers=_headers(),
                           summary=summary, can_add_synonyms=agents.can(
                               current_agent(), "manage_agents"), write_url=write_url, synonym_url=synonym_url,
                           **page_context(period, error)), 422 if error else 200


@bp.get("/insights/search/chart/<name>.svg")
def insights_search_chart(name: str):
    """The searches-per-day chart of the period (the same query string as the page)."""
    require()
    if name != "per_day":
        abort(404)
    period, _error = period_or_default()
    days = searches.per_day(get_session(), period, current_app.config)
    svg = charts.render("stacked", _("Searches per day"), [d.day.strftime("%d %b") for d in days],
                        {_("Found something"): [d.searches - d.no_results for d in days],
                         _("Found nothing"): [d.no_results for d in days]})
    return svg_response(svg)


def write_url(group: searches.SearchGroup) -> str:
    """The editor's new-article form with the search as the title, in the search's language."""
    return url_for("agent.new_article", title=group.query, lang=group.lang or None)


def synonym_url(group: searches.SearchGroup, period: Period) -> str:
    """The synonyms page of the search's language with its words in the new set's field."""
    return url_for("agent.synonyms_admin", lang=group.lang or period.lang or None, terms=group.query)
