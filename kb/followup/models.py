"""Follow-up records: customers and their addresses, signals, cases, their events, and surveys.

Exactly-once is a property of the database here, as in the mail ledger: a signal's unique ``key``
means a retried request or a second worker never records it twice, and a case's unique
``open_key`` (set while the case is open, NULL once resolved) means one open case per customer (or,
without a customer, per article), however many signals arrive at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.storable import StoredJSON, StoredString, StoredText
from kb.models import Base, UTCDateTime, utcnow

CASE_STATES = ("new", "acknowledged", "contacted", "resolved", "reopened")
OPEN_STATES = ("new", "acknowledged", "contacted", "reopened")
SOURCES = ("vote", "still_need_help", "writeback", "survey", "manual")
VOTE_REASONS = ("not_answered", "hard_to_follow", "out_of_date", "other")
CHANNELS = ("email", "phone", "chat", "in_person", "social", "web", "other")
IDENTITY_KINDS = ("email", "phone", "other")
# Kinds of case event: a state change, an assignment, a note, a message sent to the customer,
# the root cause set, and the timed work's alert, escalation and survey.
EVENT_KINDS = ("state", "assign", "note", "message", "root_cause", "alert", "escalation", "survey", "recovery")
SURVEY_STATES = ("scheduled", "sent", "answered", "cancelled")
MAX_WORDS = 5000  # of a customer's words kept on a signal: enough for a person to read


class Customer(Base):
    """A person kb knows of, identified by one or more addresses (see CustomerIdentity)."""

    __tablename__ = "customers"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(StoredString(200), default="")
    lang: so.Mapped[str] = so.mapped_column(sa.String(16), default="")
    # Set when merged into another customer; the row stays so an undo can bring it back.
    merged_into_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("customers.id"))
    sample: so.Mapped[bool] = so.mapped_column(default=False)  # starter data, removed by `kb sample remove`
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


class CustomerIdentity(Base):
    """An email address, phone number or other handle that belongs to one customer."""

    __tablename__ = "customer_identities"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    customer_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(16), default="email")
    # Normalised (addresses case-folded, phone numbers digits and a leading +), for lookups.
    value: so.Mapped[str] = so.mapped_column(StoredString(320))
    display: so.Mapped[str] = so.mapped_column(StoredString(320), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("kind", "value", name="uq_customer_identities_kind_value"),
        sa.CheckConstraint(f"kind IN {IDENTITY_KINDS}", name="kind"),
    )


class CustomerMerge(Base):
    """One merge of ``merged`` into ``kept``, with the ids it moved, so it can be undone."""

    __tablename__ = "customer_merges"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    kept_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("customers.id"), index=True)
    merged_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("customers.id"), index=True)
    moved: so.Mapped[dict[str, Any]] = so.mapped_column(StoredJSON, default=dict)  # table -> [ids]
    agent_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    undone_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)


class Case(Base):
    """A follow-up: one unhappy experience a person must acknowledge, act on and resolve."""

    __tablename__ = "cases"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    # "customer:<id>" or "article:<id>" while open, NULL once resolved: one open case per key.
    open_key: so.Mapped[Optional[str]] = so.mapped_column(sa.String(64), unique=True)
    customer_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("customers.id"), index=True)
    article_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("articles.id", ondelete="SET NULL"))
    source: so.Mapped[str] = so.mapped_column(sa.String(32))  # of the first signal
    state: so.Mapped[str] = so.mapped_column(sa.String(16), default="new", index=True)
    assignee_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("agents.id", ondelete="SET NULL"))
    root_cause: so.Mapped[str] = so.mapped_column(sa.String(64), default="")
    lang: so.Mapped[str] = so.mapped_column(sa.String(16), default="")
    # The customer's email to thread messages on (Message-ID, and the subject to answer).
    thread_message_id: so.Mapped[str] = so.mapped_column(StoredString(500), default="")
    thread_subject: so.Mapped[str] = so.mapped_column(StoredString(500), default="")
    score_before: so.Mapped[Optional[int]] = so.mapped_column()
    score_after: so.Mapped[Optional[int]] = so.mapped_column()
    opened_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    alerted_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)
    acknowledged_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)
    first_contact_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)
    resolved_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)
    escalated_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)
    sample: so.Mapped[bool] = so.mapped_column(default=False)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (sa.CheckConstraint(f"state IN {CASE_STATES}", name="state"),)


class Signal(Base):
    """One sign that an answer failed a customer: what, when, about what, and their words."""

    __tablename__ = "signals"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    # What makes it this signal and no other ("vote:12", "mail:40:still_need_help", ...).
    key: so.Mapped[str] = so.mapped_column(StoredString(200), unique=True)
    case_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    customer_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("customers.id"), index=True)
    source: so.Mapped[str] = so.mapped_column(sa.String(32))
    channel: so.Mapped[str] = so.mapped_column(sa.String(16), default="web")
    article_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("articles.id", ondelete="SET NULL"))
    mail_record_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("mail_records.id", ondelete="SET NULL"))
    reason: so.Mapped[str] = so.mapped_column(sa.String(32), default="")
    words: so.Mapped[str] = so.mapped_column(StoredText(MAX_WORDS), default="")
    score: so.Mapped[Optional[int]] = so.mapped_column()
    agent_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("agents.id", ondelete="SET NULL"))
    sample: so.Mapped[bool] = so.mapped_column(default=False)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)

    __table_args__ = (sa.CheckConstraint(f"source IN {SOURCES}", name="source"),)


class CaseEvent(Base):
    """One entry of a case's history or a customer's timeline: who did what, when, and a note.

    ``case_id`` is empty for a note an agent adds to a customer outside any case.
    """

    __tablename__ = "case_events"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    case_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    customer_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("customers.id"), index=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(16))
    from_state: so.Mapped[str] = so.mapped_column(sa.String(16), default="")
    to_state: so.Mapped[str] = so.mapped_column(sa.String(16), default="")
    agent_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("agents.id", ondelete="SET NULL"))
    channel: so.Mapped[str] = so.mapped_column(sa.String(16), default="")
    note: so.Mapped[str] = so.mapped_column(StoredText(20_000), default="")
    outcome: so.Mapped[str] = so.mapped_column(StoredString(200), default="")  # of a phone call, say
    message_id: so.Mapped[str] = so.mapped_column(StoredString(500), default="")
    sample: so.Mapped[bool] = so.mapped_column(default=False)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)

    __table_args__ = (sa.CheckConstraint(f"kind IN {EVENT_KINDS}", name="kind"),)


class Survey(Base):
    """The one satisfaction survey of a resolved case: 1-5 and an optional comment."""

    __tablename__ = "surveys"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    case_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("cases.id", ondelete="CASCADE"), unique=True)
    address: so.Mapped[str] = so.mapped_column(StoredString(320), default="")
    state: so.Mapped[str] = so.mapped_column(sa.String(16), default="scheduled")
    score: so.Mapped[Optional[int]] = so.mapped_column()
    comment: so.Mapped[str] = so.mapped_column(StoredText(5000), default="")
    sent_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)
    answered_at: so.Mapped[Optional[datetime]] = so.mapped_column(UTCDateTime)
    sample: so.Mapped[bool] = so.mapped_column(default=False)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint(f"state IN {SURVEY_STATES}", name="state"),
        sa.CheckConstraint("score IS NULL OR score BETWEEN 1 AND 5", name="score"),
    )
