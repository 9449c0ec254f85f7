"""pg_search: the PostgreSQL search backend's documents and vocabulary (PostgreSQL only), and pg_trgm

On SQLite this does nothing: the tables exist only where SEARCH_BACKEND=postgres can use them.
If kb's role may not create the pg_trgm extension, the migration still succeeds (Whoosh users
need nothing from it) and says what to do; kb creates the trigram index once the extension is there.

Revision ID: 0014_pg_search
Revises: 0013_hosts
"""
import logging

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0014_pg_search'
down_revision = '0013_hosts'
branch_labels = None
depends_on = None

log = logging.getLogger("kb.migrations")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.create_table('search_documents',
    sa.Column('article_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('lang', sa.String(length=16), nullable=False),
    sa.Column('grp', sa.String(length=8), nullable=False),
    sa.Column('category', sa.String(length=120), nullable=False),
    sa.Column('terms', postgresql.TSVECTOR(), nullable=False),
    sa.Column('plain', sa.Text(), nullable=False),
    sa.Column('words', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('stamp', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('article_id', name=op.f('pk_search_documents'))
    )
    op.create_index('ix_search_documents_terms', 'search_documents', ['terms'], unique=False, postgresql_using='gin')
    op.create_table('search_vocabulary',
    sa.Column('grp', sa.String(length=8), nullable=False),
    sa.Column('term', sa.Text(), nullable=False),
    sa.Column('docs', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('grp', 'term', name=op.f('pk_search_vocabulary'))
    )
    if _create_pg_trgm(bind):
        op.execute("CREATE INDEX IF NOT EXISTS ix_search_vocabulary_term_trgm ON search_vocabulary "
                   "USING gin (term gin_trgm_ops)")


def _create_pg_trgm(bind) -> bool:
    """CREATE EXTENSION pg_trgm in a savepoint; False (and what to do, printed) if the role may not."""
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        return True
    except sa.exc.DBAPIError as exc:
        database = bind.scalar(sa.text("SELECT current_database()"))
        message = (f"kb could not create the pg_trgm extension in database {database!r} "
                   f"({type(exc.orig).__name__}). SEARCH_BACKEND=whoosh needs nothing from it; for "
                   f"SEARCH_BACKEND=postgres ask a superuser to run `CREATE EXTENSION pg_trgm;` in that "
                   f"database, then run `kb db upgrade` or restart kb.")
        log.warning(message)
        print(message)
        return False


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_table('search_vocabulary')
    op.drop_table('search_documents')
