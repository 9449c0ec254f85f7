"""Follow-ups: when an answer fails a customer, a person hears of it, follows up, resolves the case
with its root cause, and kb asks the customer again and measures the result.

Request-free functions shared by the web, the CLI and the job runner; never imports kb.web or
kb.cli. Timed work (alerts, escalations, re-surveys) runs as kb.jobs handlers.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the follow-up job handlers, and keep the parsed settings in app.extensions."""
    from kb.followup import alerts  # noqa: F401 - registers the alert and escalation handlers
    from kb.followup import surveys  # noqa: F401  (registers the "followup.resurvey" job handler)
    from kb.followup import messages  # noqa: F401  (registers the "followup.message" job handler)

    app.extensions["kb.followup"] = {}
