"""Service recovery: gestures an agent may offer a customer at once within bounds, approval above them,
and an append-only ledger of every offer, decision, sending and correction.

Request-free (STYLE.md 11): the web pages, the emails and the CLI import this package, never the
other way round.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the service-recovery job handlers (sending an offer's message, escalating an approval)."""
    from kb.recovery import sending  # noqa: F401  (registers the "recovery.send" job handler)
    from kb.recovery import approvals  # noqa: F401  (the approval, escalation and decision emails)
