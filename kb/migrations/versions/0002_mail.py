"""mail records and cursors for the auto-responder

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:46:38.060174
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mail_cursors',
    sa.Column('folder', sa.String(length=200), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('last_uid', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('folder', name=op.f('pk_mail_cursors'))
    )
    op.create_table('mail_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=500), nullable=False),
    sa.Column('message_id', sa.String(length=500), nullable=False),
    sa.Column('folder', sa.String(length=200), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=True),
    sa.Column('uid', sa.BigInteger(), nullable=True),
    sa.Column('from_addr', sa.String(length=320), nullable=False),
    sa.Column('reply_to', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('lang', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('matches', sa.JSON(), nullable=False),
    sa.Column('reply_message_id', sa.String(length=500), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
    sa.Column('sending_since', sa.DateTime(), nullable=True),
    sa.Column('marked', sa.Boolean(), nullable=False),
    sa.Column('resolution', sa.String(length=32), nullable=True),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('alert_state', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("alert_state IS NULL OR alert_state IN ('pending', 'sent')", name=op.f('ck_mail_records_alert_state')),
    sa.CheckConstraint("resolution IS NULL OR resolution IN ('solved', 'still_need_help')", name=op.f('ck_mail_records_resolution')),
    sa.CheckConstraint("state IN ('new', 'sending', 'replied', 'person', 'skipped', 'retry')", name=op.f('ck_mail_records_state')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_records')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_mail_records_dedupe_key')),
    sa.UniqueConstraint('reply_message_id', name=op.f('uq_mail_records_reply_message_id'))
    )
    with op.batch_alter_table('mail_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_records_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_mail_records_from_addr'), ['from_addr'], unique=False)
        batch_op.create_index(batch_op.f('ix_mail_records_state'), ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mail_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_records_state'))
        batch_op.drop_index(batch_op.f('ix_mail_records_from_addr'))
        batch_op.drop_index(batch_op.f('ix_mail_records_created_at'))

    op.drop_table('mail_records')
    op.drop_table('mail_cursors')
