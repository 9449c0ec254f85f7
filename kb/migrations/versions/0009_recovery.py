"""service recovery: gesture types, bounds, and the append-only ledger (refused UPDATE and DELETE)

Revision ID: 0009_recovery
Revises: 0008_followup
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_recovery'
down_revision = '0008_followup'
branch_labels = None
depends_on = None

APPEND_ONLY = "recovery_entries is append-only: add a correction instead"


def upgrade() -> None:

    op.create_table('gesture_types',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('template', sa.Text(), nullable=False),
    sa.Column('needs_reference', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('sample', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('apology', 'discount_percent', 'fixed_credit', 'free_shipping', 'shipping_refund', 'gift', 'other')", name=op.f('ck_gesture_types_kind')),
    sa.CheckConstraint("currency = '' OR length(currency) = 3", name=op.f('ck_gesture_types_currency')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gesture_types')),
    sa.UniqueConstraint('name', name=op.f('uq_gesture_types_name'))
    )
    op.create_table('recovery_bounds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('gesture_type_id', sa.Integer(), nullable=True),
    sa.Column('max_amount', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('max_count', sa.Integer(), nullable=True),
    sa.Column('approver_role', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('sample', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("scope IN ('per_incident', 'agent_week', 'customer_90d')", name=op.f('ck_recovery_bounds_scope')),
    sa.CheckConstraint("approver_role IN ('support', 'admin')", name=op.f('ck_recovery_bounds_approver_role')),
    sa.CheckConstraint('max_amount IS NOT NULL OR max_count IS NOT NULL', name=op.f('ck_recovery_bounds_some_limit')),
    sa.CheckConstraint('max_amount IS NULL OR max_amount >= 0', name=op.f('ck_recovery_bounds_max_amount')),
    sa.CheckConstraint('max_count IS NULL OR max_count >= 0', name=op.f('ck_recovery_bounds_max_count')),
    sa.ForeignKeyConstraint(['gesture_type_id'], ['gesture_types.id'], name=op.f('fk_recovery_bounds_gesture_type_id_gesture_types')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_bounds'))
    )
    with op.batch_alter_table('recovery_bounds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_bounds_gesture_type_id'), ['gesture_type_id'], unique=False)

    op.create_table('recovery_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('offer_id', sa.Integer(), nullable=True),
    sa.Column('corrects_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('gesture_type_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('bounds', sa.JSON(), nullable=False),
    sa.Column('approver_id', sa.Integer(), nullable=True),
    sa.Column('sample', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('offer', 'approval', 'decline', 'send', 'cancel', 'correction')", name=op.f('ck_recovery_entries_kind')),
    sa.CheckConstraint("state IN ('approved_auto', 'pending', 'approved', 'declined', 'cancelled', 'sent')", name=op.f('ck_recovery_entries_state')),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_recovery_entries_amount')),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_recovery_entries_agent_id_agents')),
    sa.ForeignKeyConstraint(['approver_id'], ['agents.id'], name=op.f('fk_recovery_entries_approver_id_agents')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_recovery_entries_case_id_cases')),
    sa.ForeignKeyConstraint(['corrects_id'], ['recovery_entries.id'], name=op.f('fk_recovery_entries_corrects_id_recovery_entries')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_recovery_entries_customer_id_customers')),
    sa.ForeignKeyConstraint(['gesture_type_id'], ['gesture_types.id'], name=op.f('fk_recovery_entries_gesture_type_id_gesture_types')),
    sa.ForeignKeyConstraint(['offer_id'], ['recovery_entries.id'], name=op.f('fk_recovery_entries_offer_id_recovery_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_entries'))
    )
    with op.batch_alter_table('recovery_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_entries_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recovery_entries_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recovery_entries_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_recovery_entries_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recovery_entries_offer_id'), ['offer_id'], unique=False)

    _refuse_changes()


def _refuse_changes() -> None:
    """The database itself refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL) of ledger rows."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""CREATE FUNCTION recovery_entries_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END; $$ LANGUAGE plpgsql""")
        op.execute("""CREATE TRIGGER recovery_entries_append_only BEFORE UPDATE OR DELETE ON recovery_entries
            FOR EACH ROW EXECUTE FUNCTION recovery_entries_append_only()""")
        op.execute("""CREATE TRIGGER recovery_entries_no_truncate BEFORE TRUNCATE ON recovery_entries
            FOR EACH STATEMENT EXECUTE FUNCTION recovery_entries_append_only()""")
    elif op.get_bind().dialect.name == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER recovery_entries_no_{event.lower()} BEFORE {event} ON recovery_entries
                BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END""")


def downgrade() -> None:

    op.drop_table('recovery_entries')  # its triggers go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION recovery_entries_append_only()")
    op.drop_table('recovery_bounds')
    op.drop_table('gesture_types')
