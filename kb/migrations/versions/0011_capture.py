"""knowledge capture: example questions, synonym sets, and emails a person answered from kb

Revision ID: 0011_capture
Revises: 0010_recovery_flow
"""
from alembic import op
import sqlalchemy as sa


revision = '0011_capture'
down_revision = '0010_recovery_flow'
branch_labels = None
depends_on = None

OLD_STATES = "('new', 'sending', 'replied', 'person', 'skipped', 'retry')"
NEW_STATES = "('new', 'sending', 'replied', 'person', 'skipped', 'retry', 'answered')"


def upgrade() -> None:
    op.create_table('example_questions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('lang', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('mail_record_id', sa.Integer(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('sample', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("source IN ('answered', 'solved', 'editor', 'gap', 'import')", name=op.f('ck_example_questions_source')),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_example_questions_agent_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], name=op.f('fk_example_questions_article_id_articles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['mail_record_id'], ['mail_records.id'], name=op.f('fk_example_questions_mail_record_id_mail_records'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_example_questions')),
    sa.UniqueConstraint('key', name=op.f('uq_example_questions_key'))
    )
    with op.batch_alter_table('example_questions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_example_questions_article_id'), ['article_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_example_questions_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_example_questions_mail_record_id'), ['mail_record_id'], unique=False)

    op.create_table('synonym_sets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lang', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('terms', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('default_key', sa.String(length=120), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('equivalent', 'expansion')", name=op.f('ck_synonym_sets_kind')),
    sa.CheckConstraint("source IN ('default', 'agent')", name=op.f('ck_synonym_sets_source')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_synonym_sets')),
    sa.UniqueConstraint('default_key', name=op.f('uq_synonym_sets_default_key'))
    )
    with op.batch_alter_table('synonym_sets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_synonym_sets_lang'), ['lang'], unique=False)

    with op.batch_alter_table('mail_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answered_by', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('answered_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('answered_articles', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('answer_message_id', sa.String(length=500), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_mail_records_answered_by_agents'), 'agents', ['answered_by'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_unique_constraint(batch_op.f('uq_mail_records_answer_message_id'), ['answer_message_id'])
        batch_op.drop_constraint(op.f('ck_mail_records_state'), type_='check')
        batch_op.create_check_constraint(op.f('ck_mail_records_state'), f"state IN {NEW_STATES}")


def downgrade() -> None:
    with op.batch_alter_table('mail_records', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_mail_records_state'), type_='check')
        batch_op.create_check_constraint(op.f('ck_mail_records_state'), f"state IN {OLD_STATES}")
        batch_op.drop_constraint(batch_op.f('uq_mail_records_answer_message_id'), type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_mail_records_answered_by_agents'), type_='foreignkey')
        batch_op.drop_column('answer_message_id')
        batch_op.drop_column('answered_articles')
        batch_op.drop_column('answered_at')
        batch_op.drop_column('answered_by')
    op.drop_table('synonym_sets')
    op.drop_table('example_questions')
