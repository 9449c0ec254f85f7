"""The auto-responder's records: one MailRecord per incoming email, and a UID cursor per folder.

The unique dedupe_key is what makes "never answer the same email twice" hold across restarts and
concurrent workers: the database, not timing, decides who handles an email.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.addresses import sender_key
from kb.autoreply.storable import StoredJSON, StoredString, StoredText
from kb.models import Base, UTCDateTime, utcnow

# new: claimed, no decision yet (or a reply decided, not yet sent); sending: a worker won the
# right to send and the reply's Message-ID is stored; retry: SMTP refused, try again later.
# answered: a person answered it from kb (/agent/mail "Answer with articles").
MAIL_STATES = ("new", "sending", "replied", "person", "skipped", "retry", "answered")
RESOLUTIONS = ("solved", "still_need_help")
ALERT_STATES = ("pending", "sent")
CHANNELS = ("email", "web_form")  # how a question came: the mailbox or the portal's /contact form
OUTCOMES = ("confirmed", "assumed", "reopened")  # of kb's answer: see kb.insights.models
MAX_TEXT = 20_000  # of the cleaned question kept on a record: enough for a person to read


def _sender_key_of_reply_to(context) -> str:
    """The new row's sender_key: its reply_to folded to one key per mailbox (addresses.sender_key)."""
    return sender_key(context.get_current_parameters().get("reply_to") or "")


class MailRecord(Base):
    """One incoming email and the one decision kb recorded for it.

    Every text column sanitises what is written to it (kb/autoreply/storable.py): an email can
    carry anything, and no value it carries may make a write fail.
    """

    __tablename__ = "mail_records"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    dedupe_key: so.Mapped[str] = so.mapped_column(StoredString(500), unique=True)
    message_id: so.Mapped[str] = so.mapped_column(StoredString(500), default="")
    folder: so.Mapped[str] = so.mapped_column(StoredString(200), default="")
    uidvalidity: so.Mapped[Optional[int]] = so.mapped_column(sa.BigInteger)
    uid: so.Mapped[Optional[int]] = so.mapped_column(sa.BigInteger)
    from_addr: so.Mapped[str] = so.mapped_column(StoredString(320), default="", index=True)
    reply_to: so.Mapped[str] = so.mapped_column(StoredString(320), default="")
    # reply_to without "+tag", case-folded (Gmail: without dots): the per-sender cap counts on it.
    sender_key: so.Mapped[str] = so.mapped_column(StoredString(320), default=_sender_key_of_reply_to, index=True)
    subject: so.Mapped[str] = so.mapped_column(StoredString(500), default="")
    lang: so.Mapped[str] = so.mapped_column(StoredString(16), default="")
    # The cleaned question, kept so alerts, retries and the agents' page need not refetch the email.
    text: so.Mapped[str] = so.mapped_column(StoredText(MAX_TEXT), default="")
    state: so.Mapped[str] = so.mapped_column(StoredString(16), default="new", index=True)
    reason: so.Mapped[str] = so.mapped_column(StoredText(), default="")
    matches: so.Mapped[list[dict[str, Any]]] = so.mapped_column(StoredJSON, default=list)
    reply_message_id: so.Mapped[Optional[str]] = so.mapped_column(StoredString(500), unique=True)
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    # Handling attempts (claim or take-over, counted before the heavy work) and when the last began:
    # a worker killed during an email leaves them behind, so a restart does not start over forever.
    handling_attempts: so.Mapped[int] = so.mapped_column(default=0, server_default="0")
    handling_started_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)
    # Failed tries to alert the team and to mark the email in the mailbox: bounded, never endless.
    alert_attempts: so.Mapped[int] = so.mapped_column(default=0, server_default="0")
    mark_attempts: so.Mapped[int] = so.mapped_column(default=0, server_default="0")
    next_attempt_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)
    sending_since: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)
    marked: so.Mapped[bool] = so.mapped_column(default=False)
    resolution: so.Mapped[Optional[str]] = so.mapped_column(StoredString(32))
    resolved_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)
    alert_state: so.Mapped[Optional[str]] = so.mapped_column(StoredString(16))
    # Answered by a person from kb: who, when, with which articles (ids), and the answer's Message-ID.
    answered_by: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("agents.id", ondelete="SET NULL"))
    answered_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime, index=True)
    answered_articles: so.Mapped[list[int]] = so.mapped_column(StoredJSON, default=list, server_default="[]")
    answer_message_id: so.Mapped[Optional[str]] = so.mapped_column(StoredString(500), unique=True)
    # Insights (kb.insights): how the question came (kb.insights.models.CHANNELS), what became of
    # kb's answer (OUTCOMES, NULL while unknown or when kb gave none) and the top article's category.
    channel: so.Mapped[str] = so.mapped_column(StoredString(16), default="email", server_default="email")
    outcome: so.Mapped[Optional[str]] = so.mapped_column(StoredString(16))
    outcome_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)
    category: so.Mapped[str] = so.mapped_column(StoredString(120), default="", server_default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.CheckConstraint(f"state IN {MAIL_STATES}", name="state"),
        sa.CheckConstraint(f"resolution IS NULL OR resolution IN {RESOLUTIONS}", name="resolution"),
        sa.CheckConstraint(f"alert_state IS NULL OR alert_state IN {ALERT_STATES}", name="alert_state"),
        sa.CheckConstraint(f"channel IN {CHANNELS}", name="channel"),
        sa.CheckConstraint(f"outcome IS NULL OR outcome IN {OUTCOMES}", name="outcome"),
        # The insights' deflection figures read a period's questions from this index alone.
        sa.Index("ix_mail_records_insights", "created_at", "channel", "state", "lang", "category", "outcome",
                 "outcome_at", "dedupe_key"),
    )


class MailCursor(Base):
    """How far kb has read a folder: the last UID handled under one UIDVALIDITY."""

    __tablename__ = "mail_cursors"
    folder: so.Mapped[str] = so.mapped_column(StoredString(200), primary_key=True)
    uidvalidity: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)
    last_uid: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)
