"""insights: portal visits, views per day, contact-form rate counts; search-log clicks and grouping;
mail channels and outcomes; article review dates

Revision ID: 0012_insights
Revises: 0011_capture
"""
from alembic import op
import sqlalchemy as sa


revision = '0012_insights'
down_revision = '0011_capture'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('portal_visits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visitor', sa.String(length=64), nullable=True),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('lang', sa.String(length=16), nullable=False),
    sa.Column('searched', sa.Boolean(), nullable=False),
    sa.Column('viewed', sa.Boolean(), nullable=False),
    sa.Column('contacted', sa.Boolean(), nullable=False),
    sa.Column('sample', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_visits')),
    sa.UniqueConstraint('visitor', 'day', name='uq_portal_visits_visitor_day')
    )
    with op.batch_alter_table('portal_visits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portal_visits_day'), ['day'], unique=False)

    op.create_table('rate_counts',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('window_start', sa.DateTime(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_counts'))
    )
    with op.batch_alter_table('rate_counts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_counts_window_start'), ['window_start'], unique=False)

    op.create_table('article_days',
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('sample', sa.Boolean(), nullable=False),
    sa.Column('views', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], name=op.f('fk_article_days_article_id_articles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('article_id', 'day', 'sample', name=op.f('pk_article_days'))
    )
    with op.batch_alter_table('article_days', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_article_days_day'), ['day'], unique=False)
        batch_op.create_index('ix_article_days_day_article', ['day', 'article_id', 'views'], unique=False)

    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review_by', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_articles_review_by'), ['review_by'], unique=False)

    with op.batch_alter_table('mail_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=16), server_default='email', nullable=False))
        batch_op.add_column(sa.Column('outcome', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('outcome_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('category', sa.String(length=120), server_default='', nullable=False))
        batch_op.create_index(batch_op.f('ix_mail_records_answered_at'), ['answered_at'], unique=False)
        batch_op.create_index('ix_mail_records_insights', ['created_at', 'channel', 'state', 'lang', 'category',
                                                           'outcome', 'outcome_at', 'dedupe_key'], unique=False)
        batch_op.create_check_constraint('channel', "channel IN ('email', 'web_form')")
        batch_op.create_check_constraint('outcome', "outcome IS NULL OR outcome IN ('confirmed', 'assumed', 'reopened')")

    with op.batch_alter_table('votes', schema=None) as batch_op:
        batch_op.create_index('ix_votes_article_created', ['article_id', 'created_at', 'helpful'], unique=False)

    with op.batch_alter_table('search_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('visitor', sa.String(length=64), server_default='', nullable=False))
        batch_op.add_column(sa.Column('group_key', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('clicked_article_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('click_position', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('contacted', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index('ix_search_log_created_group', ['created_at', 'group_key'], unique=False)
        batch_op.create_index('ix_search_log_visitor_updated', ['visitor', 'updated_at'], unique=False)
        batch_op.create_index('ix_search_log_created_clicked', ['created_at', 'clicked_article_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_search_log_clicked_article_id_articles'), 'articles', ['clicked_article_id'], ['id'], ondelete='SET NULL')


    op.create_table('search_rollup',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('span', sa.Integer(), nullable=False),
    sa.Column('lang', sa.String(length=16), nullable=False),
    sa.Column('group_key', sa.String(length=200), nullable=False),
    sa.Column('searches', sa.Integer(), nullable=False),
    sa.Column('visitors', sa.Integer(), nullable=False),
    sa.Column('no_results', sa.Integer(), nullable=False),
    sa.Column('v_no_results', sa.Integer(), nullable=False),
    sa.Column('no_click', sa.Integer(), nullable=False),
    sa.Column('v_no_click', sa.Integer(), nullable=False),
    sa.Column('v_gaps', sa.Integer(), nullable=False),
    sa.Column('contacted', sa.Integer(), nullable=False),
    sa.Column('ct_no_results', sa.Integer(), nullable=False),
    sa.Column('ct_no_click', sa.Integer(), nullable=False),
    sa.Column('wording', sa.String(length=500), nullable=False),
    sa.Column('wording_count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_search_rollup'))
    )
    with op.batch_alter_table('search_rollup', schema=None) as batch_op:
        batch_op.create_index('ix_search_rollup_day_key', ['day', 'group_key'], unique=False)

    op.create_table('search_rollup_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('lang', sa.String(length=16), nullable=False),
    sa.Column('searches', sa.Integer(), nullable=False),
    sa.Column('visitors', sa.Integer(), nullable=False),
    sa.Column('no_results', sa.Integer(), nullable=False),
    sa.Column('no_click', sa.Integer(), nullable=False),
    sa.Column('contacted', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'lang', name=op.f('pk_search_rollup_days'))
    )
    op.create_table('search_rollup_hours',
    sa.Column('hour', sa.DateTime(), nullable=False),
    sa.Column('lang', sa.String(length=16), nullable=False),
    sa.Column('searches', sa.Integer(), nullable=False),
    sa.Column('no_results', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('hour', 'lang', name=op.f('pk_search_rollup_hours'))
    )


def downgrade() -> None:
    op.drop_table('search_rollup_hours')
    op.drop_table('search_rollup_days')
    with op.batch_alter_table('search_rollup', schema=None) as batch_op:
        batch_op.drop_index('ix_search_rollup_day_key')

    op.drop_table('search_rollup')
    with op.batch_alter_table('search_log', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_search_log_clicked_article_id_articles'), type_='foreignkey')
        batch_op.drop_index('ix_search_log_created_clicked')
        batch_op.drop_index('ix_search_log_visitor_updated')
        batch_op.drop_index('ix_search_log_created_group')
        batch_op.drop_column('contacted')
        batch_op.drop_column('click_position')
        batch_op.drop_column('clicked_article_id')
        batch_op.drop_column('group_key')
        batch_op.drop_column('visitor')
        batch_op.drop_column('updated_at')

    with op.batch_alter_table('votes', schema=None) as batch_op:
        batch_op.drop_index('ix_votes_article_created')

    with op.batch_alter_table('mail_records', schema=None) as batch_op:
        batch_op.drop_index('ix_mail_records_insights')
        batch_op.drop_index(batch_op.f('ix_mail_records_answered_at'))
        batch_op.drop_constraint(batch_op.f('ck_mail_records_outcome'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_mail_records_channel'), type_='check')
        batch_op.drop_column('category')
        batch_op.drop_column('outcome_at')
        batch_op.drop_column('outcome')
        batch_op.drop_column('channel')

    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_articles_review_by'))
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('review_by')

    with op.batch_alter_table('article_days', schema=None) as batch_op:
        batch_op.drop_index('ix_article_days_day_article')
        batch_op.drop_index(batch_op.f('ix_article_days_day'))

    op.drop_table('article_days')
    with op.batch_alter_table('rate_counts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_counts_window_start'))

    op.drop_table('rate_counts')
    with op.batch_alter_table('portal_visits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portal_visits_day'))

    op.drop_table('portal_visits')
