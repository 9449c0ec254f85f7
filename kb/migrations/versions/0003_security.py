"""security: session versions, the support role, login throttling and portal counts

Revision ID: 0003_security
Revises: 0002
Create Date: 2026-12-01 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_security'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))
        batch_op.drop_constraint(batch_op.f('ck_agents_role'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_agents_role'), "role IN ('editor', 'support', 'admin')")

    op.create_table('login_throttle',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_login_throttle'))
    )
    with op.batch_alter_table('login_throttle', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_throttle_last_failure_at'), ['last_failure_at'], unique=False)

    op.create_table('portal_counts',
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], name=op.f('fk_portal_counts_article_id_articles'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('kind', 'article_id', 'client', 'day', name=op.f('pk_portal_counts'))
    )
    with op.batch_alter_table('portal_counts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portal_counts_day'), ['day'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('portal_counts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portal_counts_day'))
    op.drop_table('portal_counts')
    with op.batch_alter_table('login_throttle', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_throttle_last_failure_at'))
    op.drop_table('login_throttle')
    # Support agents become editors: the old schema knows no other role.
    op.execute("UPDATE agents SET role = 'editor' WHERE role = 'support'")
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_agents_role'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_agents_role'), "role IN ('editor', 'admin')")
        batch_op.drop_column('session_version')
