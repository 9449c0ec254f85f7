"""Insights: honest deflection, search analytics, article health and agent metrics.

Request-free (STYLE.md 11): the agent pages, the portal, the CLI and the mail worker import this
package, never the other way. Modules: models (what is counted), outcomes (confirmed, assumed,
reopened answers), deflection (the rate and the self-service score), searchlog (recording
searches, clicks and visits), searches (the search report), health (articles), team (agents),
charts (SVG charts with pygal), periods (the period and language a page shows), csvout (CSV).
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the insights models (and, as they come, its job handlers)."""
    from kb.insights import models  # noqa: F401  (portal visits, article days, rate counts)
    from kb.insights import review  # (health) the daily flag scan and the authors' emails
    review.init_app(app)
