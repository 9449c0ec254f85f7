"""The database schema: typed SQLAlchemy 2.0 models. The database is the source of truth."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

STATUSES = ("draft", "published", "archived")
# editor: writes articles; support: also reads customers' email on /agent/mail; admin: also manages
# agents. What each role may do is decided in one place, kb.agents.PERMISSIONS.
ROLES = ("editor", "support", "admin")
# The largest id an Integer primary key holds on PostgreSQL (int4); a larger one cannot name a row.
MAX_ID = 2**31 - 1


def parse_whole(value: object, low: int, high: int) -> int | None:
    """A whole number typed or sent by a client, from ``low`` to ``high``; None for anything else.

    Only ASCII digits: str.isdigit() also accepts "²" and "٣", which int() refuses or reads
    differently, and a number of thousands of digits is no page or id.
    """
    text = str(value or "").strip()
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(high))):
        return None
    number = int(text)
    return number if low <= number <= high else None


def parse_id(value: object) -> int | None:
    """A record's id as sent in a form or a URL (1 to MAX_ID), or None."""
    return parse_whole(value, 1, MAX_ID)


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
    # Raised by logout, a new password, deactivation and a role change: every session cookie
    # carries the version it was issued under, and an older one no longer logs anybody in.
    session_version: so.Mapped[int] = so.mapped_column(default=0, server_default="0")

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
    # The number of the revision holding unpublished changes to this article, if any (kb.drafts).
    # The columns above stay what customers see until that draft is published.
    pending_revision: so.Mapped[Optional[int]] = so.mapped_column()
    # Derived from body_md by kb.render_cache, so page views never render Markdown. The key says
    # which renderer made it from which body; a cache with another key is made again.
    body_html: so.Mapped[Optional[str]] = so.mapped_column(sa.Text)
    body_text: so.Mapped[Optional[str]] = so.mapped_column(sa.Text)
    render_key: so.Mapped[Optional[str]] = so.mapped_column(sa.String(200))
    # For agents: why the body is shown as plain text, or why search skips the article ("" if fine).
    render_error: so.Mapped[str] = so.mapped_column(sa.Text, default="", server_default="")
    index_error: so.Mapped[str] = so.mapped_column(sa.Text, default="", server_default="")
    # When an editor should look at the article again (listed once overdue), and when one last did.
    review_by: so.Mapped[Optional[date]] = so.mapped_column(index=True)
    reviewed_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)

    author: so.Mapped[Optional[Agent]] = so.relationship()
    revisions: so.Mapped[list["Revision"]] = so.relationship(
        back_populates="article", order_by="Revision.number", cascade="all, delete-orphan")

    # The portal's lists (kb.catalog: most viewed, recently updated) read the top few of a language
    # in index order instead of sorting every published article (8 ms a list at 10,000), and the
    # topic counts read the index alone, never the wide rows (12 ms at 10,000). So does each worker's
    # start-up count of the published articles in the index and those that failed to index
    # (kb.search.freshness: 2 x 78 ms at 100,000 read from the rows).
    __table_args__ = (sa.CheckConstraint(f"status IN {STATUSES}", name="status"),
                      sa.Index("ix_articles_status_lang_views", "status", "lang", "views"),
                      sa.Index("ix_articles_status_lang_updated", "status", "lang", "updated_at"),
                      sa.Index("ix_articles_status_category_lang", "status", "category", "lang"),
                      sa.Index("ix_articles_status_index_error", "status", "index_error"))


class Revision(Base):
    """A snapshot of an article after each change (save, draft, publish, restore...), with who and when.

    ``pending`` marks a draft of changes kept apart from the live article: the article's own
    columns were not touched. ``slug`` and ``status`` are None on revisions made before kb
    recorded them.
    """

    __tablename__ = "revisions"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    article_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("articles.id", ondelete="CASCADE"))
    number: so.Mapped[int]
    title: so.Mapped[str] = so.mapped_column(sa.String(300))
    body_md: so.Mapped[str] = so.mapped_column(sa.Text)
    lang: so.Mapped[str] = so.mapped_column(sa.String(16))
    category: so.Mapped[str] = so.mapped_column(sa.String(120))
    tags: so.Mapped[list[str]] = so.mapped_column(sa.JSON, default=list)
    slug: so.Mapped[Optional[str]] = so.mapped_column(sa.String(200))
    status: so.Mapped[Optional[str]] = so.mapped_column(sa.String(16))
    pending: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    author_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("agents.id", ondelete="SET NULL"))
    note: so.Mapped[str] = so.mapped_column(sa.String(300), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    article: so.Mapped[Article] = so.relationship(back_populates="revisions")
    author: so.Mapped[Optional[Agent]] = so.relationship()

    __table_args__ = (sa.UniqueConstraint("article_id", "number", name="uq_revisions_article_number"),)


class Media(Base):
    """An uploaded image. Its bytes live in the database, the one truth that every host shares."""

    __tablename__ = "media"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    key: so.Mapped[str] = so.mapped_column(sa.String(32), unique=True)  # random, the image's URL
    filename: so.Mapped[str] = so.mapped_column(sa.String(120))
    content_type: so.Mapped[str] = so.mapped_column(sa.String(32))
    width: so.Mapped[int]
    height: so.Mapped[int]
    size: so.Mapped[int]
    sha256: so.Mapped[str] = so.mapped_column(sa.String(64), index=True)
    data: so.Mapped[bytes] = so.mapped_column(sa.LargeBinary, deferred=True)
    uploaded_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    uploaded_by: so.Mapped[Optional[Agent]] = so.relationship()


class MediaUse(Base):
    """An image shown by an article's live text: customers may see it while that article is published."""

    __tablename__ = "media_uses"
    article_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True)
    media_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("media.id", ondelete="CASCADE"), primary_key=True,
                                                index=True)


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
    # Why a "No" (kb.followup.models.VOTE_REASONS), empty when none was given.
    reason: so.Mapped[str] = so.mapped_column(sa.String(32), default="", server_default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.UniqueConstraint("article_id", "visitor", name="uq_votes_article_visitor"),
                      # article health: an article's votes of a period, read from the index alone
                      sa.Index("ix_votes_article_created", "article_id", "created_at", "helpful"))


class SearchLog(Base):
    """One search: what was asked, in which language, and how many results. No IP addresses.

    Typing that extends a query updates its row (kb.insights.searchlog), so a row is one search.
    ``visitor`` is the portal's random visitor-cookie value (empty for API and old rows);
    ``group_key`` the query's stems, sorted, so near-identical queries count together.
    """

    __tablename__ = "search_log"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    query: so.Mapped[str] = so.mapped_column(sa.String(500))
    lang: so.Mapped[str] = so.mapped_column(sa.String(16), default="")
    results: so.Mapped[int] = so.mapped_column(default=0)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)
    visitor: so.Mapped[str] = so.mapped_column(sa.String(64), default="", server_default="")
    group_key: so.Mapped[str] = so.mapped_column(sa.String(200), default="", server_default="")
    # The first result the visitor opened from this search, and its place in the list (1 = top).
    clicked_article_id: so.Mapped[Optional[int]] = so.mapped_column(
        sa.ForeignKey("articles.id", ondelete="SET NULL"))
    click_position: so.Mapped[Optional[int]] = so.mapped_column()
    # The same browser session used the contact form after this search.
    contacted: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())

    __table_args__ = (sa.Index("ix_search_log_visitor_updated", "visitor", "updated_at"),
                      sa.Index("ix_search_log_created_clicked", "created_at", "clicked_article_id"),
                      sa.Index("ix_search_log_created_group", "created_at", "group_key"))


class IndexChange(Base):
    """One change to an article's search entry: the durable feed that Whoosh hosts follow.

    Domain functions add a row in the same transaction as the change (``kb.articles.enqueue_index``).
    Rows are kept INDEX_FEED_DAYS (kb.search.feed purges them); each host keeps its own cursor. On PostgreSQL ``txid`` is the writing transaction's id (a server default), so a follower can
    read the feed in commit-safe order; on SQLite writes are serial and ``id`` order is enough.
    """

    __tablename__ = "index_changes"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    article_id: so.Mapped[int] = so.mapped_column(index=True)
    queued_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    txid: so.Mapped[Optional[int]] = so.mapped_column(sa.BigInteger, server_default=sa.FetchedValue())

    # ids are never reused (AUTOINCREMENT), so a cursor never skips one; (txid, id) is the feed's order on PostgreSQL.
    __table_args__ = (sa.Index("ix_index_changes_txid_id", "txid", "id"), {"sqlite_autoincrement": True})


class WorkerHeartbeat(Base):
    """The last sign of life of one background worker (job runner, auto-responder) on one host."""

    __tablename__ = "worker_heartbeats"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    host: so.Mapped[str] = so.mapped_column(sa.String(255))
    kind: so.Mapped[str] = so.mapped_column(sa.String(40))
    pid: so.Mapped[int] = so.mapped_column()
    started_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    beat_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    detail: so.Mapped[str] = so.mapped_column(sa.Text, default="", server_default="")

    __table_args__ = (sa.UniqueConstraint("host", "kind", "pid", name="uq_worker_heartbeats_host_kind_pid"),)


class LoginThrottle(Base):
    """Failed logins in a row for one account or one client address, shared by every worker.

    ``key`` is a keyed hash (kb.throttle), so neither typed emails nor IP addresses are stored.
    """

    __tablename__ = "login_throttle"
    key: so.Mapped[str] = so.mapped_column(sa.String(64), primary_key=True)
    failures: so.Mapped[int] = so.mapped_column(default=0)
    last_failure_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)


class PortalCount(Base):
    """How many views or votes of one article were counted today from one client (kb.visitors).

    ``client`` is a keyed hash of the address that changes every day, never the address itself.
    """

    __tablename__ = "portal_counts"
    kind: so.Mapped[str] = so.mapped_column(sa.String(16), primary_key=True)
    article_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("articles.id", ondelete="CASCADE"),
                                                  primary_key=True)
    client: so.Mapped[str] = so.mapped_column(sa.String(64), primary_key=True)
    day: so.Mapped[date] = so.mapped_column(primary_key=True, index=True)
    count: so.Mapped[int] = so.mapped_column(default=0)
