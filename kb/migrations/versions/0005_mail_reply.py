"""mail_records.sender_key: the per-sender cap counts per mailbox, not per spelling of an address

Revision ID: 0005_mail_reply
Revises: 0004_editor
"""
from alembic import op
import sqlalchemy as sa

from kb.autoreply.addresses import sender_key

revision = "0005_mail_reply"
down_revision = "0004_editor"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("mail_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sender_key", sa.String(length=320), nullable=False, server_default=""))
    records = sa.table("mail_records", sa.column("id", sa.Integer), sa.column("reply_to", sa.String),
                       sa.column("sender_key", sa.String))
    connection = op.get_bind()
    last = 0
    while True:  # in batches: a large ledger must not be read into memory at once
        rows = connection.execute(sa.select(records.c.id, records.c.reply_to).where(records.c.id > last)
                                  .order_by(records.c.id).limit(BATCH)).all()
        if not rows:
            break
        for row_id, reply_to in rows:
            connection.execute(sa.update(records).where(records.c.id == row_id)
                               .values(sender_key=sender_key(reply_to or "")))
        last = rows[-1][0]
    with op.batch_alter_table("mail_records", schema=None) as batch_op:
        batch_op.alter_column("sender_key", server_default=None)
        batch_op.create_index(batch_op.f("ix_mail_records_sender_key"), ["sender_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mail_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_records_sender_key"))
        batch_op.drop_column("sender_key")
