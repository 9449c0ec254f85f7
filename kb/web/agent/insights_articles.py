"""/agent/insights/articles: each article's views, votes, helpful share, searches and review; flagged and overdue ones.

The figures come from kb.insights.health. Every table is built here once as rows of cells, which
the page shows and ``?format=csv&table=<name>`` downloads, so the two never differ.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import abort, current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from kb.db import get_session
from kb.insights import charts, health
from kb.models import parse_id
from kb.web.agent import bp
from kb.web.agent.insights_common import (csv_response, page_context, period_or_default, svg_response,
                                          wants_csv)

REASON_LABELS = {"not_answered": _l("didn't answer my question"), "hard_to_follow": _l("hard to follow"),
                 "out_of_date": _l("out of date"), "other": _l("other"), "": _l("no reason given")}


def percent(share: float | None) -> str:
    """A share as "59%", or "" when there were no votes."""
    return "" if share is None else f"{share * 100:.0f}%"


def _day(value: date | datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d")


def _marks(article: health.ArticleHealth) -> str:
    return ", ".join(label for on, label in ((article.flagged, _("flagged")), (article.overdue, _("overdue"))) if on)


def article_header() -> list[str]:
    """The per-article table's columns (the flagged and overdue tables share them)."""
    return [_("Article"), _("Language"), _("Author"), _("Views"), _("Votes"), _("Helpful"), _("Searches"),
            _("Last review"), _("Review by"), _("Attention")]


def article_cells(article: health.ArticleHealth) -> list[Any]:
    """One article's row, as the page shows it and the CSV writes it."""
    return [article.title, article.lang, article.author, article.views, article.votes,
            percent(article.helpful_share), article.searches, _day(article.reviewed_at), _day(article.review_by),
            _marks(article)]


def flagged_header() -> list[str]:
    """The flagged table's columns: what the flag counts (the votes since the last review) first."""
    return [_("Article"), _("Language"), _("Author"), _("Votes since the last review"),
            _("Helpful since the last review"), _("Views"), _("Last review"), _("Review by"), _("Attention")]


def flagged_cells(article: health.ArticleHealth) -> list[Any]:
    """One flagged article's row."""
    share = article.flag_helpful / article.flag_votes if article.flag_votes else None
    return [article.title, article.lang, article.author, article.flag_votes, percent(share), article.views,
            _day(article.reviewed_at), _day(article.review_by), _marks(article)]


def _reason_label(reason: str) -> str:
    return str(REASON_LABELS.get(reason, reason))


def _detail(session, period, settings) -> dict[str, Any] | None:
    """The chosen article (?article=<id>): its figures, "No" reasons and latest comments."""
    article_id = parse_id(request.args.get("article"))
    if article_id is None:
        return None
    found = health.one(session, article_id, period, settings)
    if found is None:
        abort(404, "There is no article with this number. It may have been deleted.")
    return {"article": found,
            "reasons": [[_reason_label(reason), count] for reason, count in health.reasons(session, article_id, period)],
            "comments": [[_day(vote.created_at), _reason_label(vote.reason) if not vote.helpful else _("helpful"),
                          vote.comment] for vote in health.comments(session, article_id, period)]}


def _sorting() -> tuple[str, bool]:
    sort = request.args.get("sort", "views")
    sort = sort if sort in health.SORTS else "views"
    default = sort not in ("title", "review_by")
    return sort, {"asc": False, "desc": True}.get(request.args.get("order", ""), default)


def _tables(session, period, settings) -> dict[str, Any]:
    """Every table of the page: name -> (header, rows, articles), from one query (kb.insights.health.page)."""
    sort, descending = _sorting()
    lists = health.page(session, period, settings, sort=sort, descending=descending)
    top = lists.pop("most_viewed")
    tables = {name: (article_header(), [article_cells(a) for a in items], items) for name, items in lists.items()}
    tables["flagged"] = (flagged_header(), [flagged_cells(a) for a in lists["flagged"]], lists["flagged"])
    tables["most_viewed"] = ([_("Article"), _("Views"), _("Votes"), _("Helpful")],
                             [[a.title, a.views, a.votes, percent(a.helpful_share)] for a in top], top)
    return {"tables": tables, "sort": sort, "descending": descending}


@bp.get("/insights/articles")
def insights_articles():
    """Article health for the period: the per-article table, flagged and overdue articles, one article's reasons."""
    period, error = period_or_default()
    session, settings = get_session(), current_app.config
    found = _tables(session, period, settings)
    detail = _detail(session, period, settings)
    table = wants_csv()
    if table is not None:
        if table in found["tables"]:
            header, rows, _items = found["tables"][table]
            return csv_response(table, period, header, rows)
        if detail is not None and table in ("reasons", "comments"):
            header = [_("Reason"), _("Votes")] if table == "reasons" else [_("Date"), _("Vote"), _("Comment")]
            return csv_response(f"{table}-{detail['article'].article_id}", period, header, detail[table])
        abort(404, "There is no such table on this page: use articles, flagged, overdue, most_viewed, "
                   "or reasons and comments with an article.")
    return render_template("agent/insights_articles.html", **found, detail=detail, **page_context(period, error),
                           endpoint="agent.insights_articles")


@bp.get("/insights/articles/chart/<name>.svg")
def insights_articles_chart(name: str):
    """The page's charts: "most_viewed" (views of the most read articles) and "helpful" (their helpful share)."""
    period, _error = period_or_default()
    top = health.page(get_session(), period, current_app.config)["most_viewed"]
    labels = [a.title for a in top]
    if name == "most_viewed":
        svg = charts.render("hbar", _("Most viewed articles"), labels, {_("Views"): [a.views for a in top]})
    elif name == "helpful":
        svg = charts.render("hbar", _("Helpful share of the most viewed articles"), labels,
                            {_("Helpful"): [a.helpful_share for a in top]}, percent=True)
    else:
        abort(404, "There is no such chart: use most_viewed or helpful.")
    return svg_response(svg)
