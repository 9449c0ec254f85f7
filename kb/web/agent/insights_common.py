"""What every /agent/insights page shares: the period and language it shows, CSV and chart responses.

The figures come from kb.insights; a page module reads the period with ``period_or_default``,
renders its template (which uses the macros of agent/_insights.html) and answers
``?format=csv&table=<name>`` with ``csv_response``. Charts are separate SVG responses
(``svg_response``) the page shows as images, so no script is needed and the CSP stays strict.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

from flask import Response, current_app, request, url_for
from flask_babel import lazy_gettext as _l

from kb import agents
from kb.config import configured_languages
from kb.errors import ValidationError
from kb.insights import csvout
from kb.insights.periods import PERIOD_DAYS, Period, default_period, parse_period
from kb.models import utcnow
from kb.web.agent.auth import current_agent, require  # noqa: F401 (require: the pages' permission check)

# An SVG chart may style itself (pygal's inline style sheet) and nothing else: no script, no fetch.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def period_or_default() -> tuple[Period, str | None]:
    """The period and language the query string asks for, or the default with the error to show."""
    now = utcnow()
    try:
        return parse_period(current_app.config, request.args, now), None
    except ValidationError as error:
        return default_period(now), str(error)


def page_context(period: Period, error: str | None) -> dict[str, Any]:
    """What the period-and-language form and the tabs of agent/_insights.html need."""
    return {"period": period, "period_error": error, "period_days": PERIOD_DAYS,
            "languages": configured_languages(current_app.config), "insights_tabs": tabs(period)}


# The insights pages (endpoint, tab label, permission), in the order of their tabs.
PAGES = (("agent.insights", _l("Overview"), None), ("agent.insights_search", _l("Searches"), None),
         ("agent.insights_articles", _l("Articles"), None), ("agent.insights_team", _l("Team"), "read_customer_mail"))


def tabs(period: Period) -> list[tuple[str, str, bool]]:
    """(label, url keeping the period, current?) of each insights page this agent may open."""
    agent = current_agent()
    return [(str(label), url_for(endpoint, **period.query()), request.endpoint == endpoint)
            for endpoint, label, permission in PAGES
            if endpoint in current_app.view_functions and (permission is None or agents.can(agent, permission))]


def wants_csv() -> str | None:
    """The table asked for as CSV (``?format=csv&table=name``), or None for the page."""
    if request.args.get("format") != "csv":
        return None
    return str(request.args.get("table") or "")[:40]


def csv_response(name: str, period: Period, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """A CSV download named after the table and the period, with the same rows as the page."""
    stamp = f"{period.start.date().isoformat()}-{period.end.date().isoformat()}"
    filename = SAFE_NAME.sub("-", f"kb-{name}-{stamp}{'-' + period.lang if period.lang else ''}.csv")
    response = Response(csvout.to_csv(header, rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


def svg_response(svg: bytes) -> Response:
    """A chart as an image: its own CSP (the page's would forbid its inline style), never sniffed."""
    response = Response(svg, content_type="image/svg+xml; charset=utf-8")
    response.headers["Content-Security-Policy"] = SVG_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, max-age=60"
    return response
