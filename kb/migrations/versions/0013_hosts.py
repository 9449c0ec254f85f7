"""hosts: the index change feed (index_outbox becomes index_changes, kept, with the writing
transaction's id on PostgreSQL) and worker heartbeats

Revision ID: 0013_hosts
Revises: 0012_insights
"""
from alembic import op
import sqlalchemy as sa


revision = '0013_hosts'
down_revision = '0012_insights'
branch_labels = None
depends_on = None

# The writing transaction's id (PostgreSQL 13+), so a follower reads the feed in commit-safe order.
TXID_DEFAULT = "(pg_current_xact_id()::text)::bigint"
COLUMNS = "id, article_id, queued_at"  # retry state is per host now (its cursor file)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table('index_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('queued_at', sa.DateTime(), nullable=False),
    sa.Column('txid', sa.BigInteger(), server_default=sa.text(TXID_DEFAULT) if postgres else None, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_index_changes')),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('index_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_index_changes_article_id'), ['article_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_index_changes_queued_at'), ['queued_at'], unique=False)
        batch_op.create_index('ix_index_changes_txid_id', ['txid', 'id'], unique=False)
    op.execute(f"INSERT INTO index_changes ({COLUMNS}) SELECT {COLUMNS} FROM index_outbox")
    if postgres:
        op.execute("SELECT setval(pg_get_serial_sequence('index_changes', 'id'), "
                   "GREATEST((SELECT max(id) FROM index_changes), 1))")
    op.drop_table('index_outbox')

    op.create_table('worker_heartbeats',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('beat_at', sa.DateTime(), nullable=False),
    sa.Column('detail', sa.Text(), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_heartbeats')),
    sa.UniqueConstraint('host', 'kind', 'pid', name='uq_worker_heartbeats_host_kind_pid')
    )
    with op.batch_alter_table('worker_heartbeats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_worker_heartbeats_beat_at'), ['beat_at'], unique=False)


def downgrade() -> None:
    op.drop_table('worker_heartbeats')
    op.create_table('index_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('queued_at', sa.DateTime(), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('retry_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_index_outbox'))
    )
    with op.batch_alter_table('index_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_index_outbox_article_id'), ['article_id'], unique=False)
    op.execute(f"INSERT INTO index_outbox ({COLUMNS}) SELECT {COLUMNS} FROM index_changes")
    op.drop_table('index_changes')
