"""The tables of the PostgreSQL search backend (migrations 0014 and 0015 create them, on PostgreSQL only).

They have a metadata of their own, not ``kb.models.Base``'s: they exist only on PostgreSQL, while
kb's own tables exist on every database (tests/test_postgres.py compares these separately).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects import postgresql as pg

from kb.models import Base

DOCUMENTS = "search_documents"
VOCABULARY = "search_vocabulary"
HEADS = "search_heads"


class SearchBase(so.DeclarativeBase):
    """The declarative base of the PostgreSQL search tables (kb's naming convention)."""

    metadata = sa.MetaData(naming_convention=Base.metadata.naming_convention)


class SearchDocument(SearchBase):
    """One published article as search sees it: its terms, its text for snippets, its words.

    ``terms`` holds kb's own analysis (kb.search.analysis) of the title (weight A), tags (B), body
    (C) and example questions (D), each term prefixed with its language group ("en:refund"), as
    Whoosh keeps one field per group. ``words`` is the article's vocabulary (kb.search.postgres
    .vocabulary), kept so an edit or a removal can take back exactly what it counted. No foreign key:
    the row of a deleted article is removed by the same commit hook that takes back its words.
    """

    __tablename__ = DOCUMENTS
    article_id: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    lang: so.Mapped[str] = so.mapped_column(sa.String(16))
    grp: so.Mapped[str] = so.mapped_column(sa.String(8))  # kb.search.analysis.group_for(lang)
    category: so.Mapped[str] = so.mapped_column(sa.String(120))
    terms: so.Mapped[str] = so.mapped_column(pg.TSVECTOR)
    plain: so.Mapped[str] = so.mapped_column(sa.Text)
    words: so.Mapped[list[str]] = so.mapped_column(pg.ARRAY(sa.Text))
    stamp: so.Mapped[str] = so.mapped_column(sa.Text)  # kb.search.schema.stamp: start-up finds stale rows

    __table_args__ = (sa.Index("ix_search_documents_terms", "terms", postgresql_using="gin"),)


class SearchHead(SearchBase):
    """A document's title and tags lexemes (``terms`` of weights A and B), narrow, for the first candidates.

    Never written by kb: a trigger on ``search_documents`` (migration 0015_pg_search_heads) keeps
    it in step in the same transaction. kb.search.postgres.ranked explains why it exists.
    """

    __tablename__ = HEADS
    article_id: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    lang: so.Mapped[str] = so.mapped_column(sa.String(16))
    category: so.Mapped[str] = so.mapped_column(sa.String(120))
    head: so.Mapped[str] = so.mapped_column(pg.TSVECTOR)

    __table_args__ = (sa.Index("ix_search_heads_head", "head", postgresql_using="gin"),)


class SearchWord(SearchBase):
    """A word of the published articles (lowercased, unstemmed) and how many articles use it.

    The vocabulary of "Did you mean" and typo tolerance, matched by trigram similarity (pg_trgm).
    Counts change by +1/-1 with INSERT ... ON CONFLICT, so concurrent publishes add up; a word no
    longer used keeps a count of 0 until the next rebuild.
    """

    __tablename__ = VOCABULARY
    grp: so.Mapped[str] = so.mapped_column(sa.String(8), primary_key=True)
    term: so.Mapped[str] = so.mapped_column(sa.Text, primary_key=True)
    docs: so.Mapped[int] = so.mapped_column(sa.Integer, default=0)
