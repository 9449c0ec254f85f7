"""The worker's upkeep: retries, take-overs of emails a dead worker left, team alerts, IMAP marks.

A mixin of kb.autoreply.worker.Worker (split out to keep each module small); it uses the
worker's app, settings, folder, stop event, counters and per-email steps.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa

from kb.autoreply import compose, ledger, smtp
from kb.autoreply.mailbox import Mailbox, MailboxError, MailboxGone, MessageMissing
from kb.autoreply.models import MailRecord
from kb.autoreply.parsing import ParsedEmail
from kb.db import session_scope
from kb.models import utcnow

log = logging.getLogger("kb.autoreply")

# Final state -> (keyword setting, move setting): what agents see in their mail client.
MARKS = {"replied": ("IMAP_KEYWORD_REPLIED", "IMAP_MOVE_REPLIED"),
         "person": ("IMAP_KEYWORD_PERSON", "IMAP_MOVE_PERSON"),
         "skipped": ("IMAP_KEYWORD_SKIPPED", "IMAP_MOVE_SKIPPED")}


class Upkeep:
    """Everything a worker owes besides new mail; see Worker.cycle for the order."""

    def _hand_over(self, session, record: MailRecord, reason: str) -> None:
        """Leave an email whose reply cannot be sent for a person (only from new or retry)."""
        session.execute(sa.update(MailRecord).where(
            MailRecord.id == record.id, MailRecord.state.in_(["new", "retry"])
        ).values(state="person", reason=reason, updated_at=utcnow()))
        session.commit()
        session.refresh(record)

    def _record_send_failure(self, session, record: MailRecord, exc: Exception) -> None:
        """Record a reply that did not surely leave: a 5xx or a broken DATA to a person, else a bounded retry."""
        if isinstance(exc, smtp.SendRefused):  # sending again cannot help
            ledger.refuse_send(session, record, str(exc))
            log.warning("reply to %s refused for good (%s); left for a person", record.reply_to, exc)
        elif isinstance(exc, smtp.SendFailed):
            limit = self.settings.get("AUTOREPLY_SEND_ATTEMPTS")
            ledger.fail_send(session, record, str(exc), backoff_base=self.retry_base,
                             max_attempts=ledger.MAX_SEND_ATTEMPTS if limit is None else max(1, int(limit)))
            log.warning("reply to %s refused (%s); %s", record.reply_to, exc,
                        "retrying later" if record.state == "retry" else "left for a person")
        else:
            ledger.send_uncertain(session, record, str(exc))
            log.warning("reply to %s may or may not have left (%s); left for a person", record.reply_to, exc)

    def send_retries(self, mailbox: Mailbox, uidvalidity: int) -> None:
        """Replies refused earlier whose time has come: fetch the email again and send."""
        with session_scope(self.app) as session:
            for record in ledger.due_retries(session):
                if self.stop.is_set():
                    break
                # Without the original (moved or expunged meanwhile) the record still threads the reply.
                self.send_reply(session, mailbox, record, self._refetch(mailbox, record, uidvalidity))
                self.mark(session, mailbox, record, uidvalidity)

    def _refetch(self, mailbox: Mailbox, record: MailRecord, uidvalidity: int) -> ParsedEmail | None:
        """The record's email read again from the mailbox, None if it cannot be found."""
        if record.folder != self.folder or record.uidvalidity != uidvalidity or not record.uid:
            return None
        try:
            raw, _size = mailbox.fetch(record.uid, self.max_bytes)
        except MessageMissing:
            return None
        parsed, _problem = self._parse(raw) if raw else (None, "")
        return parsed

    def take_over(self, mailbox: Mailbox, uidvalidity: int) -> None:
        """Emails a dead worker claimed but never decided or sent: handle them again (claim re-checks)."""
        cutoff = utcnow() - timedelta(seconds=self.stale_seconds)
        with session_scope(self.app) as session:
            stale = list(session.scalars(sa.select(MailRecord.uid).where(
                MailRecord.state == "new", MailRecord.folder == self.folder,
                MailRecord.uidvalidity == uidvalidity, MailRecord.updated_at < cutoff,
                ~MailRecord.reason.startswith("dry-run"),
                MailRecord.dedupe_key.startswith("dry-run:") == self.dry_run)))
        for uid in stale:
            if not self.stop.is_set() and uid:
                self.handle_uid(mailbox, uidvalidity, uid)

    def send_alerts(self) -> None:
        """Tell the team about "Still need help" clicks; a refusal is tried again next cycle."""
        team = self.settings.get("TEAM_ADDRESS")
        with session_scope(self.app) as session:
            for record in ledger.pending_alerts(session):
                if team:
                    try:
                        smtp.send(compose.build_alert(record, self.settings), self.settings)
                    except smtp.SendFailed as exc:
                        log.warning("alert for %s refused (%s); trying again later", record.from_addr, exc)
                        return
                    except smtp.SendUncertain as exc:  # it may have arrived: a second copy is worse
                        log.warning("alert for %s may not have arrived (%s); not resent", record.from_addr, exc)
                ledger.alert_sent(session, record)

    def apply_marks(self, mailbox: Mailbox, uidvalidity: int) -> None:
        """IMAP keywords/moves a cut connection (or a "Still need help" click) left to apply."""
        with session_scope(self.app) as session:
            for record in ledger.unmarked(session):
                if record.folder == self.folder and not record.dedupe_key.startswith("dry-run:"):
                    self.mark(session, mailbox, record, uidvalidity)

    def mark(self, session, mailbox: Mailbox, record: MailRecord, uidvalidity: int) -> None:
        """Set the keyword and/or move for the record's final state, then note it is marked."""
        if record.state not in MARKS or record.marked:
            return
        keyword_setting, move_setting = MARKS[record.state]
        keyword, move = self.settings.get(keyword_setting) or None, self.settings.get(move_setting) or None
        same_mailbox = record.folder == self.folder and record.uidvalidity == uidvalidity and record.uid
        if (keyword or move) and same_mailbox:
            try:
                mailbox.mark(record.uid, keyword=keyword, move_to=move)
            except MailboxGone:
                raise  # reconnect; the mark is applied by apply_marks later
            except MailboxError as exc:  # e.g. no custom keywords: don't retry it every cycle
                log.warning("could not mark UID %s (%s)", record.uid, exc)
        ledger.set_marked(session, record)
        self._step("marked", record)
