"""The ledger's lookups and plain bookkeeping: what kb sent, what is still to mark, the
folder cursors, the listings of the agents' page. kb.autoreply.ledger re-exports every function
here; callers use ``ledger.<name>``.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.models import MAIL_STATES, MailCursor, MailRecord


def our_message_ids(session: so.Session) -> set[str]:
    """The Message-IDs kb put on its replies, so replies to them are recognised."""
    return set(session.scalars(sa.select(MailRecord.reply_message_id).where(
        MailRecord.reply_message_id.is_not(None))))


def unmarked(session: so.Session) -> list[MailRecord]:
    """Decided emails whose IMAP keyword or move is still to be applied."""
    return list(session.scalars(sa.select(MailRecord).where(
        MailRecord.marked.is_(False), MailRecord.state.in_(["replied", "person", "skipped"])
    ).order_by(MailRecord.id)))


def set_marked(session: so.Session, record: MailRecord) -> None:
    """Note that the mailbox now shows what kb did with this email. Commits."""
    record.marked = True
    session.commit()


def get_cursor(session: so.Session, folder: str) -> MailCursor | None:
    """The folder's cursor, None before the first email."""
    return session.get(MailCursor, folder)


def save_cursor(session: so.Session, folder: str, uidvalidity: int, last_uid: int) -> MailCursor:
    """Move the folder's cursor forward (never back under the same UIDVALIDITY). Commits."""
    for _ in range(2):  # a second worker may insert the row between our read and our insert
        cursor = session.get(MailCursor, folder, populate_existing=True)
        if cursor is None:
            cursor = MailCursor(folder=folder, uidvalidity=uidvalidity, last_uid=last_uid)
            session.add(cursor)
        elif cursor.uidvalidity != uidvalidity:
            cursor.uidvalidity, cursor.last_uid = uidvalidity, last_uid
        else:
            cursor.last_uid = max(cursor.last_uid, last_uid)
        try:
            session.commit()
            return cursor
        except sa.exc.IntegrityError:
            session.rollback()
    raise RuntimeError(f"could not save the cursor of {folder!r}")


def list_records(session: so.Session, state: str | None = None, limit: int = 200) -> list[MailRecord]:
    """Recorded emails, newest first, optionally of one state (for the agents' mail page)."""
    query = sa.select(MailRecord).order_by(MailRecord.created_at.desc(), MailRecord.id.desc()).limit(limit)
    if state:
        query = query.where(MailRecord.state == state)
    return list(session.scalars(query))


def state_counts(session: so.Session) -> dict[str, int]:
    """How many recorded emails are in each state (every state listed, zeros included)."""
    rows = session.execute(sa.select(MailRecord.state, sa.func.count()).group_by(MailRecord.state))
    return {state: 0 for state in MAIL_STATES} | {state: count for state, count in rows}
