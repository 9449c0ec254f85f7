"""PLACEHOLDER laid by the coordinator; helper "searches" replaces this module entirely.

The search report. The dashboard calls ``top_gaps(session, period, limit)``: the period's searches
that failed customers (no results, or results but no click), grouped by ``group_key``, ranked by
how many visitors they hit.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy.orm as so

from kb.insights.periods import Period


@dataclass(frozen=True)
class SearchGroup:
    """Near-identical searches counted together."""

    key: str  # SearchLog.group_key
    query: str  # the most frequent wording, to show
    searches: int
    visitors: int
    no_results: int  # searches with no results
    no_click: int  # searches with results and no click
    contacted: int  # searches after which the visitor used the contact form


def top_gaps(session: so.Session, period: Period, limit: int = 10) -> list[SearchGroup]:
    """The period's failing searches, most visitors first (placeholder: none yet)."""
    return []
