""""Was this helpful?" votes: one per visitor session and article, with an optional comment.

Votes are also counted per client (kb.visitors): at most PORTAL_COUNTS_PER_CLIENT a day for one
article from one address, however many fresh sessions it opens.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb import visitors
from kb.db import begin_write
from kb.errors import ValidationError
from kb.followup.models import VOTE_REASONS
from kb.models import Article, Vote

MAX_COMMENT_LENGTH = 2000
RECORDED, ALREADY_VOTED, CLIENT_LIMIT = "recorded", "already-voted", "client-limit"


@dataclass(frozen=True)
class HelpfulStats:
    """How many visitors found an article helpful, and how many did not."""

    yes: int
    no: int

    @property
    def total(self) -> int:
        """All votes."""
        return self.yes + self.no

    @property
    def share(self) -> float | None:
        """The fraction of yes votes, or None before the first vote."""
        return self.yes / self.total if self.total else None


def clean_comment(comment: str | None) -> str:
    """Trim the comment, drop NUL bytes (PostgreSQL refuses them) and cap its length."""
    text = str(comment or "").replace("\x00", "").replace("\r\n", "\n").strip()
    return text[:MAX_COMMENT_LENGTH]


def has_voted(session: so.Session, article: Article, visitor: str | None) -> bool:
    """Whether this visitor already voted on this article."""
    if not visitor:
        return False
    stmt = sa.select(Vote.id).where(Vote.article_id == article.id, Vote.visitor == visitor)
    return session.scalar(stmt) is not None


def record_vote(session: so.Session, article: Article, visitor: str, helpful: bool,
                comment: str = "", reason: str = "") -> Vote | None:
    """Store a vote; None (and nothing changed) if this visitor already voted. The caller commits.

    ``reason`` (kb.followup.models.VOTE_REASONS) is kept for a "No" only.
    """
    if not visitor or len(visitor) > 64:
        raise ValidationError("A vote needs a visitor id of 1 to 64 characters.")
    if reason and reason not in VOTE_REASONS:
        raise ValidationError(f"Unknown reason {reason!r}: use one of {', '.join(VOTE_REASONS)}.")
    if has_voted(session, article, visitor):
        return None
    begin_write(session)  # the vote and what the caller adds (a follow-up signal) commit together
    vote = Vote(article_id=article.id, visitor=visitor, helpful=bool(helpful), comment=clean_comment(comment),
                reason="" if helpful else reason)
    try:
        # A double-click can race past has_voted: the unique constraint decides, the savepoint
        # keeps the rest of the caller's transaction.
        with session.begin_nested():
            session.add(vote)
    except sa.exc.IntegrityError:
        return None
    return vote


def vote_of(session: so.Session, article: Article, visitor: str) -> Vote | None:
    """This visitor's vote on this article, if any."""
    return session.scalar(sa.select(Vote).where(Vote.article_id == article.id, Vote.visitor == visitor))


def vote_once(session: so.Session, article: Article, *, visitor: str, client: str, limit: int,
              helpful: bool, comment: str = "", reason: str = "") -> str:
    """Record a vote unless this session already voted or this client used its ``limit`` for today.

    Returns RECORDED, ALREADY_VOTED or CLIENT_LIMIT. The caller commits.
    """
    if has_voted(session, article, visitor):
        return ALREADY_VOTED
    if not visitors.claim(session, "vote", article.id, client, limit):
        return CLIENT_LIMIT
    return RECORDED if record_vote(session, article, visitor, helpful, comment, reason) else ALREADY_VOTED


def helpful_stats(session: so.Session, article: Article) -> HelpfulStats:
    """Count the article's yes and no votes."""
    rows = session.execute(sa.select(Vote.helpful, sa.func.count(Vote.id))
                           .where(Vote.article_id == article.id).group_by(Vote.helpful))
    counts = {bool(helpful): n for helpful, n in rows}
    return HelpfulStats(yes=counts.get(True, 0), no=counts.get(False, 0))
