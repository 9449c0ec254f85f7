"""PLACEHOLDER laid by the coordinator; helper "health" replaces this module entirely.

Article health. The dashboard calls ``needing_attention(session, period, settings, limit)``: articles
flagged (at least ARTICLE_FLAG_VOTES votes, under ARTICLE_FLAG_HELPFUL helpful) or overdue for review.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Mapping

import sqlalchemy.orm as so

from kb.insights.periods import Period


@dataclass(frozen=True)
class ArticleHealth:
    """One article's figures for a period."""

    article_id: int
    title: str
    slug: str
    lang: str
    views: int
    votes: int
    helpful_share: float | None
    flagged: bool  # enough votes and too few helpful
    review_by: date | None
    overdue: bool  # review_by has passed


def needing_attention(session: so.Session, period: Period, settings: Mapping[str, Any],
                      limit: int = 10) -> list[ArticleHealth]:
    """Flagged and overdue articles, worst first (placeholder: none yet)."""
    return []
