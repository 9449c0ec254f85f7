"""The database schema: typed SQLAlchemy 2.0 models. The database is the source of truth."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

STATUSES = ("draft", "published", "archived")
ROLES = ("editor", "admin")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(sa.types.TypeDecorator):
    """Store naive UTC everywhere (SQLite keeps no zone) and hand back aware UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=timezone.utc) if value is not None else None


class Base(so.DeclarativeBase):
    """Declarative base with a naming convention, so migrations name constraints predictably."""

    metadata = sa.MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


class Agent(Base):
    """A support agent who can log in to the editor."""

    __tablename__ = "agents"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    email: so.Mapped[str] = so.mapped_column(sa.String(254), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120))
    role: so.Mapped[str] = so.mapped_column(sa.String(16), default="editor")
    password_hash: so.Mapped[str] = so.mapped_column(sa.String(255))
    active: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.CheckConstraint(f"role IN {ROLES}", name="role"),)

    @property
    def is_admin(self) -> bool:
        """Whether this agent may manage other agents."""
        return self.role == "admin"


class Article(Base):
    """A help-centre article; its body is Markdown."""

    __tablename__ = "articles"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    slug: so.Mapped[str] = so.mapped_column(sa.String(200), unique=True)
    title: so.Mapped[str] = so.mapped_column(sa.String(300))
    body_md: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    lang: so.Mapped[str] = so.mapped_column(sa.String(16), default="en", index=True)
    category: so.Mapped[str] = so.mapped_column(sa.String(120), default="", index=True)
    tags: so.Mapped[list[str]] = so.mapped_column(sa.JSON, default=list)
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default="draft", index=True)
    author_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("agents.id", ondelete="SET NULL"))
    views: so.Mapped[int] = so.mapped_column(default=0)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    published_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)
    # Derived from body_md by kb.render_cache, so page views never render Markdown. The key says
    # which renderer made it from which body; a cache with another key is made again.
    body_html: so.Mapped[Optional[str]] = so.mapped_column(sa.Text)
    body_text: so.Mapped[Optional[str]] = so.mapped_column(sa.Text)
    render_key: so.Mapped[Optional[str]] = so.mapped_column(sa.String(200))
    # For agents: why the body is shown as plain text, or why search skips the article ("" if fine).
    render_error: so.Mapped[str] = so.mapped_column(sa.Text, default="", server_default="")
    index_error: so.Mapped[str] = so.mapped_column(sa.Text, default="", server_default="")

    author: so.Mapped[Optional[Agent]] = so.relationship()
    revisions: so.Mapped[list["Revision"]] = so.relationship(
        back_populates="article", order_by="Revision.number", cascade="all, delete-orphan")

    __table_args__ = (sa.CheckConstraint(f"status IN {STATUSES}", name="status"),)


class Revision(Base):
    """A snapshot of an article, one per save; restoring makes a new one."""

    __tablename__ = "revisions"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    article_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("articles.id", ondelete="CASCADE"))
    number: so.Mapped[int]
    title: so.Mapped[str] = so.mapped_column(sa.String(300))
    body_md: so.Mapped[str] = so.mapped_column(sa.Text)
    lang: so.Mapped[str] = so.mapped_column(sa.String(16))
    category: so.Mapped[str] = so.mapped_column(sa.String(120))
    tags: so.Mapped[list[str]] = so.mapped_column(sa.JSON, default=list)
    author_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("agents.id", ondelete="SET NULL"))
    note: so.Mapped[str] = so.mapped_column(sa.String(300), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    article: so.Mapped[Article] = so.relationship(back_populates="revisions")
    author: so.Mapped[Optional[Agent]] = so.relationship()

    __table_args__ = (sa.UniqueConstraint("article_id", "number", name="uq_revisions_article_number"),)


class SlugRedirect(Base):
    """An article's former slug, so old links keep working."""

    __tablename__ = "slug_redirects"
    old_slug: so.Mapped[str] = so.mapped_column(sa.String(200), primary_key=True)
    article_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("articles.id", ondelete="CASCADE"))


class Vote(Base):
    """A "Was this helpful?" answer: one per visitor session and article."""

    __tablename__ = "votes"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    article_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    visitor: so.Mapped[str] = so.mapped_column(sa.String(64))
    helpful: so.Mapped[bool]
    comment: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.UniqueConstraint("article_id", "visitor", name="uq_votes_article_visitor"),)


class SearchLog(Base):
    """One search: what was asked, in which language, and how many results. No IP addresses."""

    __tablename__ = "search_log"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    query: so.Mapped[str] = so.mapped_column(sa.String(500))
    lang: so.Mapped[str] = so.mapped_column(sa.String(16), default="")
    results: so.Mapped[int] = so.mapped_column(default=0)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)


class IndexOutbox(Base):
    """Articles whose search-index entry must be refreshed; drained by the single indexer."""

    __tablename__ = "index_outbox"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    article_id: so.Mapped[int] = so.mapped_column(index=True)
    queued_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    # A row whose article failed waits until retry_at; after a few attempts the indexer gives up.
    attempts: so.Mapped[int] = so.mapped_column(default=0, server_default="0")
    retry_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)
    last_error: so.Mapped[str] = so.mapped_column(sa.Text, default="", server_default="")
