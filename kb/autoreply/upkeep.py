"""The worker's upkeep: retries, take-overs of emails a dead worker left, IMAP marks.

A mixin of kb.autoreply.worker.Worker (split out to keep each module small); it uses the
worker's app, settings, folder, stop event, counters and per-email steps.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa

from kb.autoreply import ledger, smtp
from kb.autoreply.mailbox import Mailbox, MailboxError, MailboxGone, MessageMissing
from kb.autoreply.models import MailRecord
from kb.autoreply.parsing import ParsedEmail
from kb.contact import marker
from kb.db import session_scope
from kb.models import utcnow

log = logging.getLogger("kb.autoreply")

SEND_GIVE_UP_SECONDS = 24 * 3600  # a reply still refused a day after the email came goes to a person

# Final state -> (keyword setting, move setting): what agents see in their mail client.
MARKS = {"replied": ("IMAP_KEYWORD_REPLIED", "IMAP_MOVE_REPLIED"),
         "person": ("IMAP_KEYWORD_PERSON", "IMAP_MOVE_PERSON"),
         "skipped": ("IMAP_KEYWORD_SKIPPED", "IMAP_MOVE_SKIPPED")}


class Upkeep:
    """Everything a worker owes besides new mail; see Worker.cycle for the order.

    Each loop here handles records one by one, and one record can never stop it: a failure is
    recorded on the record with its reason (or handed to a person), and retries are bounded.
    """

    def _hand_over(self, session, record: MailRecord, reason: str) -> None:
        """Leave an email for a person, with the reason (only from new or retry)."""
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
        """Replies refused earlier whose time has come: fetch the email again and send; one that
        fails for its own reasons, or still cannot go after SEND_GIVE_UP_SECONDS, goes to a person."""
        with session_scope(self.app) as session:
            for record in ledger.due_retries(session):
                if self.stop.is_set():
                    break
                if record.created_at < utcnow() - timedelta(seconds=SEND_GIVE_UP_SECONDS):
                    self._hand_over(session, record, f"send-failed: not sent within {SEND_GIVE_UP_SECONDS // 3600} "
                                                     f"hours, given up; last: {record.reason}")
                else:
                    self._upkeep_step(session, record, self._retry, mailbox, record, uidvalidity)
                self.mark(session, mailbox, record, uidvalidity)

    def _retry(self, session, mailbox: Mailbox, record: MailRecord, uidvalidity: int) -> None:
        """Send one due retry (without the original, moved or expunged meanwhile, the record still threads it)."""
        self.send_reply(session, mailbox, record, self._refetch(session, mailbox, record, uidvalidity))

    def _upkeep_step(self, session, record: MailRecord, step, *args) -> None:
        """Run ``step(session, *args)`` for one record; a failure of its own hands it to a person."""
        try:
            step(session, *args)
        except (MailboxGone, sa.exc.OperationalError):
            raise  # the connection, not the record: reconnect and carry on later
        except Exception as exc:  # this record's own problem: a person takes it, the loop goes on
            log.exception("upkeep of UID %s failed", record.uid)
            session.rollback()
            self._hand_over(session, record, f"error: {type(exc).__name__}: {exc}")

    def _refetch(self, session, mailbox: Mailbox, record: MailRecord, uidvalidity: int) -> ParsedEmail | None:
        """The record's email read again from the mailbox (within the limits), None if it cannot be."""
        if record.folder != self.folder or record.uidvalidity != uidvalidity or not record.uid:
            return None
        try:
            raw, _size = mailbox.fetch(record.uid, self.max_bytes)
        except MessageMissing:
            return None
        outcome = self.sandbox.run(raw, matcher=self.holder.matcher, settings=self.settings,
                                   lookup=lambda _message_id: False, max_bytes=self.max_bytes)
        return outcome.decision.email if outcome.decision else None

    def take_over(self, mailbox: Mailbox, uidvalidity: int) -> None:
        """Emails a dead worker claimed but never decided or sent: handle them again (the claim
        re-checks and counts the attempt); one no longer in the mailbox goes to a person."""
        cutoff = utcnow() - timedelta(seconds=self.stale_seconds)
        with session_scope(self.app) as session:
            stale = list(session.execute(sa.select(MailRecord.id, MailRecord.uid).where(
                MailRecord.state == "new", MailRecord.folder == self.folder,
                MailRecord.uidvalidity == uidvalidity, MailRecord.updated_at < cutoff,
                ~MailRecord.reason.startswith("dry-run"),
                MailRecord.dedupe_key.startswith(ledger.DRY_RUN_KEY) == self.dry_run)))
        for record_id, uid in stale:
            if self.stop.is_set():
                break
            if uid and self.handle_uid(mailbox, uidvalidity, uid) == "vanished":
                with session_scope(self.app) as session:
                    record = session.get(MailRecord, record_id)
                    self._hand_over(session, record, f"vanished: the email left {self.folder} before kb "
                                                     "finished it; look for it in the mail client")

    def apply_marks(self, mailbox: Mailbox, uidvalidity: int) -> None:
        """IMAP keywords/moves a cut connection (or a "Still need help" click) left to apply."""
        with session_scope(self.app) as session:
            for record in ledger.unmarked(session):
                if record.folder == self.folder and not record.dedupe_key.startswith(ledger.DRY_RUN_KEY):
                    self.mark(session, mailbox, record, uidvalidity)

    def mark(self, session, mailbox: Mailbox, record: MailRecord, uidvalidity: int) -> None:
        """Set the keyword and/or move for the record's final state, then note it is marked. A
        connection that breaks on the same email KB_AUTOREPLY_MAX_ATTEMPTS times ends the trying."""
        if record.state not in MARKS or record.marked:
            return
        keyword_setting, move_setting = MARKS[marker.mailbox_state(record.state, record.reason)]
        keyword, move = self.settings.get(keyword_setting) or None, self.settings.get(move_setting) or None
        same_mailbox = record.folder == self.folder and record.uidvalidity == uidvalidity and record.uid
        if (keyword or move) and same_mailbox:
            try:
                mailbox.mark(record.uid, keyword=keyword, move_to=move)
            except MailboxGone:
                if ledger.mark_failed(session, record, max_attempts=self.max_attempts):
                    log.warning("UID %s: the connection broke while marking it %d times; left unmarked",
                                record.uid, record.mark_attempts)
                raise  # reconnect; apply_marks tries again (if not given up)
            except MailboxError as exc:  # e.g. no custom keywords: don't retry it every cycle
                log.warning("could not mark UID %s (%s)", record.uid, exc)
        ledger.set_marked(session, record)
        self._step("marked", record)
