"""Revisions: the numbered history of an article, one per change, with who and when.

kb.articles records live changes here and kb.drafts records drafts kept apart from the article.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.models import Agent, Article, Revision, utcnow

if TYPE_CHECKING:
    from kb.articles import ArticleDraft


def get_revision(session: so.Session, article: Article, number: int) -> Revision | None:
    """Revision ``number`` of the article, or None."""
    return session.scalar(sa.select(Revision).where(Revision.article_id == article.id, Revision.number == number))


def latest_revision_number(session: so.Session, article: Article) -> int:
    """The number of the article's newest revision (0 if it has none)."""
    return session.scalar(sa.select(sa.func.max(Revision.number)).where(Revision.article_id == article.id)) or 0


def add_revision(session: so.Session, article: Article, author: Agent | None, note: str,
                 pending: ArticleDraft | None = None, when: datetime | None = None) -> Revision:
    """Record the article's next revision: its live content, or ``pending`` (a clean draft kept apart).

    It is dated ``when``, else the article's update time (a live change), else now (a draft).
    """
    content = pending or article
    revision = Revision(article=article, number=latest_revision_number(session, article) + 1,
                        title=content.title, body_md=content.body_md, lang=content.lang,
                        category=content.category, tags=list(content.tags), slug=content.slug or article.slug,
                        status=article.status, pending=pending is not None, author=author, note=note[:300],
                        created_at=when or (utcnow() if pending else article.updated_at))
    session.add(revision)
    return revision
