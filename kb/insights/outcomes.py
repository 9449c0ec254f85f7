"""PLACEHOLDER laid by the coordinator; helper "outcomes" replaces this module entirely.

The seam the mail worker, the feedback links and the contact form call:
- question_received(session, record, settings): a new question (email or web form) arrived; earlier
  answers to the same sender within REOPEN_DAYS become "reopened". The caller commits.
- answered(session, record, settings): kb gave this record an answer (auto-reply sent, or shown on
  the contact form): remember the top article's category and schedule the "assumed" check.
- resolved(session, record): the customer clicked "Solved" (confirmed) or "Still need help" (reopened).
"""

from __future__ import annotations

from typing import Any, Mapping

import sqlalchemy.orm as so

from kb.autoreply.models import MailRecord


def question_received(session: so.Session, record: MailRecord, settings: Mapping[str, Any]) -> None:
    """A new question arrived (placeholder: does nothing yet)."""


def answered(session: so.Session, record: MailRecord, settings: Mapping[str, Any]) -> None:
    """kb answered this question (placeholder: does nothing yet)."""


def resolved(session: so.Session, record: MailRecord) -> None:
    """The customer clicked Solved or Still need help (placeholder: does nothing yet)."""
