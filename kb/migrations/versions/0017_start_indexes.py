"""start indexes: a worker's start-up count of published articles reads an index, never the wide rows

Revision ID: 0017_start_indexes
Revises: 0016_listing_indexes
"""
from alembic import op


revision = "0017_start_indexes"
down_revision = "0016_listing_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_articles_status_index_error", "articles", ["status", "index_error"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_articles_status_index_error", table_name="articles")
