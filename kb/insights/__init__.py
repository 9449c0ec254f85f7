"""Insights: honest deflection, search analytics, article health and agent metrics.

Request-free (STYLE.md 11): the agent pages, the portal, the CLI and the mail worker import this
package, never the other way. Modules: models (what is counted), outcomes (confirmed, assumed,
reopened answers), deflection (the rate and the self-service score), searchlog (recording
searches, clicks and visits), searches (the search report), health (articles), team (agents),
charts (SVG charts with pygal), periods (the period and language a page shows), csvout (CSV).
"""

from __future__ import annotations

from flask import Flask

from kb.db import get_session


def init_app(app: Flask) -> None:
    """Register the insights models, job handlers and the sample-data notice of the pages."""
    from kb.contact import sending  # noqa: F401  (the contact.send job)
    from kb.insights import models  # noqa: F401  (portal visits, article days, rate counts)
    from kb.insights import outcomes  # noqa: F401  (the "assumed" sweeps: kb.jobs handlers)
    from kb.insights import review  # the daily flag scan and the authors' emails
    from kb.insights import rollup  # the daily search roll-up
    from kb.insights import sample

    review.init_app(app)
    rollup.init_app(app)
    # The tabs of every insights page say so while sample rows are counted (one indexed look-up).
    app.add_template_global(lambda: sample.present(get_session()), "insights_sample")
