"""listing indexes: the portal's most viewed and recently updated lists read in index order,
the topic counts from the index alone

Revision ID: 0016_listing_indexes
Revises: 0015_pg_search_heads
"""
from alembic import op


revision = "0016_listing_indexes"
down_revision = "0015_pg_search_heads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_articles_status_lang_views", "articles", ["status", "lang", "views"], unique=False)
    op.create_index("ix_articles_status_lang_updated", "articles", ["status", "lang", "updated_at"], unique=False)
    op.create_index("ix_articles_status_category_lang", "articles", ["status", "category", "lang"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_articles_status_category_lang", table_name="articles")
    op.drop_index("ix_articles_status_lang_updated", table_name="articles")
    op.drop_index("ix_articles_status_lang_views", table_name="articles")
