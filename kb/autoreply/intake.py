"""New mail: every UID past the cursor, each through ``handle_email``, whatever the email holds.

``handle_email`` is THE per-message handling. It records the email first (its handling attempt,
from a quick bounded look at the raw headers), then processes it in the sandbox (parse, clean,
decide, within KB_AUTOREPLY_MESSAGE_SECONDS and _MEMORY_MB), then records the decision, replies
and marks. Every email ends recorded with its reason (or, if even a bare row cannot be written,
skipped with a logged reason) and the cursor moves on. Only a lost connection (IMAP or the
database) or the worker stopping leaves an email for later; a worker killed during one leaves its
attempt behind, and after KB_AUTOREPLY_MAX_ATTEMPTS of those the email goes to a person. A
customer answering one of kb's auto-replies (a write-back) goes to a person too, and opens a
follow-up case (kb.followup.sources). kb's own copy of a contact-form question (a valid signed
kb.contact.marker header) is no new question: it is recorded "skipped" with the question's number
and marked in the mailbox as waiting for a person.

A mixin of kb.autoreply.worker.Worker, like kb/autoreply/upkeep.py.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from kb.autoreply import ledger
from kb.autoreply.decision import PERSON, REPLY, SKIP, Decision
from kb.autoreply.mailbox import Mailbox, MailboxError, MailboxGone, MessageMissing
from kb.autoreply.models import MailRecord
from kb.autoreply.processing import Peek, peek, peek_headers
from kb.autoreply.rules import REPLY_TO_OUR_REPLY
from kb.autoreply.sandbox import Outcome, SandboxError
from kb.contact import marker
from kb.db import session_scope
from kb.followup import sources
from kb.insights import outcomes

log = logging.getLogger("kb.autoreply")

DRY_RUN = "dry-run: "
INTERRUPTED = "interrupted"  # handle_email's answer when the worker stopped in the middle


class SentIds:
    """``mid in SentIds(session)``: did kb put this Message-ID on a reply? One indexed lookup."""

    def __init__(self, session) -> None:
        self.session = session

    def __contains__(self, message_id: object) -> bool:
        if not isinstance(message_id, str) or not message_id:
            return False
        return self.session.scalar(sa.select(MailRecord.id).where(
            MailRecord.reply_message_id == message_id).limit(1)) is not None


def error_text(exc: BaseException, limit: int = 300) -> str:
    """An exception as one short line (a database error's driver message, not its SQL and parameters)."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first}"[:limit]


class Intake:
    """New mail for the Worker; see the module docstring."""

    def handle_new(self, mailbox: Mailbox, uidvalidity: int) -> None:
        """Every UID past the cursor, in order; the cursor moves after each one handled."""
        name = self.namespace + self.folder
        with session_scope(self.app) as session:
            cursor = ledger.get_cursor(session, name)
            last = cursor.last_uid if cursor and cursor.uidvalidity == uidvalidity else 0
            if cursor and cursor.uidvalidity != uidvalidity:
                log.warning("UIDVALIDITY of %s changed (%s -> %s): reading it again from the start; "
                            "emails already handled are recognised", self.folder, cursor.uidvalidity, uidvalidity)
        self.seen_uid = last
        for uid in mailbox.new_uids(last):
            if self.stop.is_set() or self.handle_uid(mailbox, uidvalidity, uid) == INTERRUPTED:
                break  # SIGTERM: the email in hand is given back, the rest waits for the next start
            self.seen_uid = uid
            with session_scope(self.app) as session:
                ledger.save_cursor(session, name, uidvalidity, uid)

    def handle_uid(self, mailbox: Mailbox, uidvalidity: int, uid: int) -> str:
        """Fetch one email and handle it; returns its state ("already", "vanished", "interrupted"...)."""
        try:
            raw, _size = mailbox.fetch(uid, self.max_bytes)
        except MessageMissing:  # expunged by another client before we read it: nothing to answer
            self.counts["vanished"] += 1
            return "vanished"
        except MailboxGone:
            raise
        except MailboxError as exc:  # the server will not hand this one out: a person must look
            return self.handle_email(None, uid=uid, uidvalidity=uidvalidity, mailbox=mailbox,
                                     problem=f"unfetchable: {exc}")
        self._step("fetched", None)
        return self.handle_email(raw, uid=uid, uidvalidity=uidvalidity, mailbox=mailbox)

    def handle_email(self, raw: bytes | None, *, uid: int | None = None, uidvalidity: int | None = None,
                     mailbox: Mailbox | None = None, problem: str = "") -> str:
        """Handle one email from its raw bytes: claim, process within the limits, record, reply, mark.

        Returns the email's state, or "already" (another worker has it or it is done) or
        "interrupted" (the worker is stopping; the email is given back). Raises only when the
        mailbox or the database is unreachable. Without ``mailbox`` nothing is marked (use a
        dry-run worker to send nothing either, and ``close()`` it after). ``raw`` None with a
        ``problem`` records an email that could not be fetched. ``last_outcome`` then holds its
        processing's figures (time, CPU time, peak memory of the child process).
        """
        self.last_outcome = outcome = Outcome()
        with session_scope(self.app) as session:
            record = self._claim(session, raw, uid, uidvalidity, problem)
            if record is None:
                self.counts["already"] += 1
                return "already"
            if record.state == "new":
                if record.handling_attempts > 1:
                    log.warning("uid %s: attempt %d of %d (the earlier one did not finish: the worker "
                                "stopped or was killed during it)", uid, record.handling_attempts, self.max_attempts)
                self._step("claimed", record)
                self.last_outcome = outcome = self._process(session, record, raw, problem)
                if outcome.interrupted:
                    ledger.release(session, record)
                    self.counts[INTERRUPTED] += 1
                    return INTERRUPTED
                self._settle(session, mailbox, record, outcome, uidvalidity)
            elif mailbox is not None and not self.dry_run:  # handed to a person at the claim: mark it
                self.mark(session, mailbox, record, uidvalidity)
            self.counts[record.state] += 1
            log.info("uid %s from %s: %s (%s) in %.3f s, %+.1f MB", uid, record.from_addr, record.state,
                     record.reason, outcome.seconds, outcome.peak_bytes / 2**20)
            return record.state

    def _claim(self, session, raw: bytes | None, uid: int | None, uidvalidity: int | None,
               problem: str) -> MailRecord | None:
        """Record the handling attempt before any heavy work; if the email's own values cannot be
        stored, a bare row with the reason instead (None: another worker has it, or it is done)."""
        look = peek(raw) if raw is not None else Peek()
        key = self.namespace + (ledger.dedupe_key_for(raw, look.message_id) if raw is not None
                                else f"unfetchable:{self.folder}:{uidvalidity}:{uid}")
        try:
            return ledger.claim(session, dedupe_key=key, message_id=look.message_id, folder=self.folder,
                                uidvalidity=uidvalidity, uid=uid, from_addr=look.from_addr,
                                reply_to=look.reply_to or look.from_addr, subject=look.subject,
                                reclaim_after=self.stale_seconds, max_attempts=self.max_attempts)
        except sa.exc.OperationalError:
            raise  # the database is unreachable or busy: nothing about this email is wrong
        except Exception as exc:  # something in the email still broke the write: keep what we can
            session.rollback()
            log.warning("UID %s could not be recorded (%s); recording a bare row for a person", uid, error_text(exc))
            return ledger.claim_unrecordable(session, dedupe_key=key, folder=self.folder,
                                             uidvalidity=uidvalidity, uid=uid, error=error_text(exc))

    def _process(self, session, record: MailRecord, raw: bytes | None, problem: str) -> Outcome:
        """Parse, clean and decide in the sandbox (an unfetched email has only its problem)."""
        if raw is None:
            return Outcome(problem=problem)
        question_id = marker.read(self.settings.get("SECRET_KEY") or "", peek_headers(raw, [marker.HEADER.lower()])
                                  .get(marker.HEADER.lower()))
        if question_id is not None:  # kb's own copy of a contact-form question: recorded once already
            return Outcome(decision=Decision(SKIP, marker.copy_reason(question_id)))
        if self._articles_signature is None:  # handle_email called on its own, outside a cycle
            self.refresh_model(session)
        try:
            return self.sandbox.run(raw, matcher=self.holder.matcher, settings=self.settings,
                                    lookup=SentIds(session).__contains__, allow_list=self.allow_list,
                                    max_bytes=self.max_bytes)
        except SandboxError:
            ledger.release(session, record)  # not the email's fault: it is tried again
            raise

    def _settle(self, session, mailbox: Mailbox | None, record: MailRecord, outcome: Outcome,
                uidvalidity: int | None) -> None:
        """Record the outcome, reply, mark; a failure here hands the email to a person, never stops us."""
        try:
            self._handle_claimed(session, mailbox, record, outcome, uidvalidity)
        except (MailboxGone, sa.exc.OperationalError):
            raise  # reconnect; a take-over or apply_marks finishes the email later
        except Exception as exc:  # a bug on one email must not block the mailbox: a person takes it
            log.exception("handling UID %s failed", record.uid)
            session.rollback()
            self._hand_over(session, record, f"error: {type(exc).__name__}: {exc}")

    def _handle_claimed(self, session, mailbox: Mailbox | None, record: MailRecord, outcome: Outcome,
                        uidvalidity: int | None) -> None:
        """Store what was found and decided, reply when confident (never in dry-run), mark."""
        decision = outcome.decision or Decision(PERSON, outcome.problem)
        parsed = decision.email
        if parsed is not None:
            ledger.fill_in(session, record, message_id=parsed.message_id, from_addr=parsed.from_addr,
                           reply_to=parsed.reply_to, subject=parsed.subject, text=parsed.clean_text)
            decision = self._writeback(session, record, decision)
        self._record(session, record, decision)
        if record.state != "skipped" and not self.dry_run:  # robots and loops are not customers asking again
            self.note_outcome(session, outcomes.question_received, record)
        if record.state == "new" and not self.dry_run:
            self.send_reply(session, mailbox, record, parsed)
        if not self.dry_run and mailbox is not None:
            self.mark(session, mailbox, record, uidvalidity)

    def _writeback(self, session, record: MailRecord, decision: Decision) -> Decision:
        """A customer answering kb's auto-reply: the reply did not solve it, so a person answers
        and a follow-up case opens (or joins, or reopens). Looked up here in the worker, not in the
        child process that decided; the signal is committed before the decision, so a worker killed
        in between records it once when the email is taken over."""
        parsed = decision.email
        if parsed is None or decision.outcome == SKIP or (
                decision.outcome == PERSON and not decision.reason.startswith(REPLY_TO_OUR_REPLY)):
            return decision  # automatic mail answering us, or a person has it for another reason
        answered = sources.answered_record(session, [*parsed.references, parsed.in_reply_to])
        if answered is None:
            return decision
        if not self.dry_run:
            sources.from_writeback(session, record, address=parsed.reply_to or parsed.from_addr,
                                   words=parsed.clean_text, lang=parsed.lang or answered.lang,
                                   thread_message_id=parsed.message_id, thread_subject=parsed.subject,
                                   settings=self.settings)
            session.commit()
            self._step("signalled", record)
        return Decision(PERSON, f"{sources.WRITEBACK} {answered.reply_message_id}", email=parsed)

    def note_outcome(self, session, step, record: MailRecord) -> None:
        """Tell kb.insights.outcomes (``step``: question_received or answered) and commit. Its failure
        never changes how the email is handled: the daily outcome sweep makes up for it."""
        try:
            step(session, record, self.settings)
            session.commit()
        except sa.exc.OperationalError:
            raise  # the database is unreachable or busy: reconnect as for any other step
        except Exception as exc:  # noqa: BLE001 - counting must not stop answering
            session.rollback()
            log.warning("uid %s: outcome not recorded (%s); the daily sweep records it", record.uid, error_text(exc))

    def _record(self, session, record: MailRecord, decision: Decision) -> None:
        """Store the decision (dry-run: prefixed, never becomes a reply to send)."""
        reason = decision.reason
        if self.dry_run:
            reason = DRY_RUN + ("would reply: " if decision.outcome == REPLY else "") + reason
        lang = decision.email.lang if decision.email else ""
        cap, window = self.settings.get("AUTOREPLY_SENDER_CAP"), self.settings.get("AUTOREPLY_SENDER_WINDOW_HOURS")
        ledger.record_decision(session, record, decision.outcome, reason, decision.matches, lang or "",
                               sender_cap=1 if cap is None else int(cap),
                               window_hours=24.0 if window is None else float(window))
        self._step("decided", record)
