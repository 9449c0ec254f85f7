"""pg_search_heads: each search document's title and tags in a narrow table, so common words rank fast

``search_heads`` holds, per article, the lexemes of ``search_documents.terms`` with weights A and B
(the title and the tags, via ``ts_filter``) and the columns searches filter on, with a GIN index.
A search for a word that half the articles contain takes its first candidates from here (best
title match first) without reading the wide documents (kb.search.postgres.ranked). A trigger on
``search_documents`` keeps it in step in the same transaction, whatever writes a document. The
table is filled from the documents already there. PostgreSQL only.

Revision ID: 0015_pg_search_heads
Revises: 0014_pg_search
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0015_pg_search_heads'
down_revision = '0014_pg_search'
branch_labels = None
depends_on = None

SYNC = """
CREATE FUNCTION kb_search_heads_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM search_heads WHERE article_id = OLD.article_id;
        RETURN OLD;
    END IF;
    INSERT INTO search_heads (article_id, lang, category, head)
    VALUES (NEW.article_id, NEW.lang, NEW.category, ts_filter(NEW.terms, '{a,b}'))
    ON CONFLICT (article_id) DO UPDATE
        SET lang = EXCLUDED.lang, category = EXCLUDED.category, head = EXCLUDED.head;
    RETURN NEW;
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_table('search_heads',
    sa.Column('article_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('lang', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=120), nullable=False),
    sa.Column('head', postgresql.TSVECTOR(), nullable=False),
    sa.PrimaryKeyConstraint('article_id', name=op.f('pk_search_heads'))
    )
    op.create_index('ix_search_heads_head', 'search_heads', ['head'], unique=False, postgresql_using='gin')
    op.execute(SYNC)
    op.execute("CREATE TRIGGER kb_search_heads_sync AFTER INSERT OR UPDATE OR DELETE ON search_documents "
               "FOR EACH ROW EXECUTE FUNCTION kb_search_heads_sync()")
    op.execute("INSERT INTO search_heads (article_id, lang, category, head) "
               "SELECT article_id, lang, category, ts_filter(terms, '{a,b}') FROM search_documents")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS kb_search_heads_sync ON search_documents")
    op.execute("DROP FUNCTION IF EXISTS kb_search_heads_sync()")
    op.drop_table('search_heads')
