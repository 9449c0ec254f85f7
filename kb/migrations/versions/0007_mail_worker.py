"""mail worker: bounded attempts per email (handling, team alert, IMAP mark)

Revision ID: 0007_mail_worker
Revises: 0006_render
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_mail_worker'
down_revision = '0006_render'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mail_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handling_attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('handling_started_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('alert_attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('mark_attempts', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('mail_records', schema=None) as batch_op:
        batch_op.drop_column('mark_attempts')
        batch_op.drop_column('alert_attempts')
        batch_op.drop_column('handling_started_at')
        batch_op.drop_column('handling_attempts')
