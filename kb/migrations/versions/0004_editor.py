"""editor: pending drafts of live articles, every field in revisions, uploaded images

Revision ID: 0004_editor
Revises: 0003_security
Create Date: 2026-11-24 09:00:00

Revisions made before this migration keep slug and status empty (NULL): kb did not record
them then, and the history says "not recorded" rather than guess.
"""
from alembic import op
import sqlalchemy as sa


revision = "0004_editor"
down_revision = "0003_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_revision", sa.Integer(), nullable=True))
    with op.batch_alter_table("revisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slug", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("pending", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("filename", sa.String(length=120), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["uploaded_by_id"], ["agents.id"], name=op.f("fk_media_uploaded_by_id_agents"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media")),
        sa.UniqueConstraint("key", name=op.f("uq_media_key")),
    )
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_sha256"), ["sha256"], unique=False)
    op.create_table(
        "media_uses",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"], name=op.f("fk_media_uses_article_id_articles"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"], name=op.f("fk_media_uses_media_id_media"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("article_id", "media_id", name=op.f("pk_media_uses")),
    )
    with op.batch_alter_table("media_uses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_uses_media_id"), ["media_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("media_uses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_uses_media_id"))
    op.drop_table("media_uses")
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_sha256"))
    op.drop_table("media")
    with op.batch_alter_table("revisions", schema=None) as batch_op:
        batch_op.drop_column("pending")
        batch_op.drop_column("status")
        batch_op.drop_column("slug")
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_column("pending_revision")
