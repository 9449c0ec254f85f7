"""What kb learns from people: example questions of articles, and synonym sets per language."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.storable import StoredJSON, StoredString, StoredText
from kb.models import Base, UTCDateTime, utcnow

# Where an example question came from: an email an agent answered with the article, an
# auto-reply the customer marked "Solved", a phrasing typed in the editor, a content-gap group,
# or a file loaded with `kb match --examples`.
EXAMPLE_SOURCES = ("answered", "solved", "editor", "gap", "import")
SYNONYM_KINDS = ("equivalent", "expansion")  # all terms mean the same; or the first term also finds the rest
SYNONYM_SOURCES = ("default", "agent")
MAX_EXAMPLE = 2000


class ExampleQuestion(Base):
    """Another way customers ask for an article, scrubbed of personal data, with its source and date.

    ``key`` (a hash of the article and the folded text) makes the same example for the same article
    one row, however often it is learnt.
    """

    __tablename__ = "example_questions"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    article_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    key: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    text: so.Mapped[str] = so.mapped_column(StoredText(MAX_EXAMPLE))
    lang: so.Mapped[str] = so.mapped_column(sa.String(16), default="")
    source: so.Mapped[str] = so.mapped_column(sa.String(16))
    mail_record_id: so.Mapped[Optional[int]] = so.mapped_column(
        sa.ForeignKey("mail_records.id", ondelete="SET NULL"), index=True)
    agent_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("agents.id", ondelete="SET NULL"))
    sample: so.Mapped[bool] = so.mapped_column(default=False)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)

    __table_args__ = (sa.CheckConstraint(f"source IN {EXAMPLE_SOURCES}", name="source"),)


class SynonymSet(Base):
    """Words and phrases that mean the same to customers in one language, or a one-way expansion.

    ``terms`` is a list of strings; for an expansion the first term also finds the others (not the
    other way round). Defaults shipped with kb have ``source`` "default" and a ``default_key`` so an
    agent's switching one off (``active`` False) survives upgrades.
    """

    __tablename__ = "synonym_sets"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    lang: so.Mapped[str] = so.mapped_column(sa.String(16), index=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(16), default="equivalent")
    terms: so.Mapped[list[str]] = so.mapped_column(StoredJSON, default=list)
    source: so.Mapped[str] = so.mapped_column(sa.String(16), default="agent")
    default_key: so.Mapped[Optional[str]] = so.mapped_column(StoredString(120), unique=True)
    active: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.CheckConstraint(f"kind IN {SYNONYM_KINDS}", name="kind"),
        sa.CheckConstraint(f"source IN {SYNONYM_SOURCES}", name="source"),
    )
