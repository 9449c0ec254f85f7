"""cached article HTML and text, render and index problems, outbox retries

Revision ID: 0006_render
Revises: 0005_mail_reply
Create Date: 2026-11-24 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = "0006_render"
down_revision = "0005_mail_reply"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The caches start empty: kb fills them at start (through the index outbox) and on first view.
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body_html", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("body_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("render_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("render_error", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("index_error", sa.Text(), server_default="", nullable=False))
    with op.batch_alter_table("index_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("retry_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.Text(), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("index_outbox", schema=None) as batch_op:
        batch_op.drop_column("last_error")
        batch_op.drop_column("retry_at")
        batch_op.drop_column("attempts")
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_column("index_error")
        batch_op.drop_column("render_error")
        batch_op.drop_column("render_key")
        batch_op.drop_column("body_text")
        batch_op.drop_column("body_html")
