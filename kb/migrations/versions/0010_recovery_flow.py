"""service recovery flow: templates per language, recovery entries on case histories, removable sample rows,
and offer messages the retention scrub may blank

Revision ID: 0010_recovery_flow
Revises: 0009_recovery
"""
from alembic import op
import sqlalchemy as sa


revision = '0010_recovery_flow'
down_revision = '0009_recovery'
branch_labels = None
depends_on = None

APPEND_ONLY = "recovery_entries is append-only: add a correction instead"
OLD_KINDS = "('state', 'assign', 'note', 'message', 'root_cause', 'alert', 'escalation', 'survey')"
NEW_KINDS = "('state', 'assign', 'note', 'message', 'root_cause', 'alert', 'escalation', 'survey', 'recovery')"


def upgrade() -> None:
    with op.batch_alter_table('gesture_types', schema=None) as batch_op:
        batch_op.add_column(sa.Column('templates', sa.JSON(), nullable=False, server_default='{}'))
    _event_kinds(NEW_KINDS)
    _sample_rows_removable(True)


def _event_kinds(kinds: str) -> None:
    """A case's history may hold recovery entries (offers, decisions, sendings) beside its other events."""
    # On SQLite the batch copies the table, as SQLite cannot alter a CHECK constraint in place.
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_case_events_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_case_events_kind'), f"kind IN {kinds}")


# Every column but ``message``: an UPDATE may blank an offer's message (retention) and change nothing else.
KEPT = ("id", "kind", "offer_id", "corrects_id", "state", "case_id", "customer_id", "agent_id", "gesture_type_id",
        "amount", "currency", "reason", "reference", "bounds", "approver_id", "sample", "created_at")


def _sample_rows_removable(removable: bool) -> None:
    """Rows marked sample (the starter data) may be deleted by `kb sample remove`, and the retention scrub
    may blank an offer's message to the customer (their name and situation); nothing else may change."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        allow = ("IF TG_OP = 'DELETE' AND OLD.sample THEN RETURN OLD; END IF; "
                 "IF TG_OP = 'UPDATE' AND NEW.message = '' AND to_jsonb(NEW) - 'message' = to_jsonb(OLD) - 'message' "
                 "THEN RETURN NEW; END IF; ") if removable else ""
        op.execute(f"""CREATE OR REPLACE FUNCTION recovery_entries_append_only() RETURNS trigger AS $$
            BEGIN {allow}RAISE EXCEPTION '{APPEND_ONLY}'; END; $$ LANGUAGE plpgsql""")
    elif dialect == "sqlite":
        unchanged = " AND ".join(f"NEW.{column} IS OLD.{column}" for column in KEPT)
        when = {"delete": " WHEN OLD.sample = 0", "update": f" WHEN NOT (NEW.message = '' AND {unchanged})"}
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER recovery_entries_no_{event}")
            op.execute(f"""CREATE TRIGGER recovery_entries_no_{event} BEFORE {event.upper()} ON recovery_entries
                {when[event] if removable else ""} BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END""")


def downgrade() -> None:
    _sample_rows_removable(False)
    _event_kinds(OLD_KINDS)
    with op.batch_alter_table('gesture_types', schema=None) as batch_op:
        batch_op.drop_column('templates')
