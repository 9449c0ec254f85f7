"""The auto-responder loop: read new mail, decide, reply once, mark, wait; survive everything.

One cycle: recover replies stuck in "sending" (a worker died around SMTP) -> refresh the matcher
if articles changed -> handle new UIDs past the cursor -> take over emails a dead worker claimed
-> send due retries -> send pending "Still need help" alerts -> apply pending IMAP marks. Between
cycles the worker waits in IDLE (or polls). Exactly-once is the ledger's job (unique dedupe key,
compare-and-set states); this module only calls its steps in order, and ``hook(step, record)``
lets tests stop the worker between any two of them. Retries, take-overs, alerts and marks are in
kb/autoreply/upkeep.py.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask

from kb.autoreply import compose, ledger, links, smtp
from kb.autoreply.decision import PERSON, REPLY, Decision, decide
from kb.autoreply.mailbox import Mailbox, MailboxError, MailboxGone, MessageMissing
from kb.autoreply.matcher import ModelHolder, published_match_articles
from kb.autoreply.models import MailRecord
from kb.autoreply.parsing import ParsedEmail, ParseError, parse_message
from kb.autoreply.upkeep import Upkeep
from kb.db import session_scope
from kb.errors import ConfigError
from kb.models import Article

log = logging.getLogger("kb.autoreply")

DRY_RUN = "dry-run: "
Hook = Callable[[str, MailRecord | None], None]


class SentIds:
    """``mid in SentIds(session)``: did kb put this Message-ID on a reply? One indexed lookup."""

    def __init__(self, session) -> None:
        self.session = session

    def __contains__(self, message_id: object) -> bool:
        if not isinstance(message_id, str) or not message_id:
            return False
        return self.session.scalar(sa.select(MailRecord.id).where(
            MailRecord.reply_message_id == message_id).limit(1)) is not None


class Worker(Upkeep):
    """Answers the support mailbox; ``run_once`` for what is waiting, ``run_forever`` to keep at it."""

    def __init__(self, app: Flask, *, mailbox_factory: Callable[[], Mailbox] | None = None,
                 dry_run: bool = False, wake_seconds: float | None = None,
                 backoff: tuple[float, float] = (1.0, 60.0), retry_base: float = 60.0,
                 stale_seconds: float = ledger.RECLAIM_AFTER_SECONDS, hook: Hook | None = None) -> None:
        self.app = app
        self.settings: dict[str, Any] = dict(app.config)
        self.mailbox_factory = mailbox_factory or (lambda: Mailbox(self.settings))
        self.dry_run = dry_run
        self.wake_seconds = float(wake_seconds or self.settings.get("AUTOREPLY_WAKE_SECONDS") or 30)
        self.backoff = backoff
        self.poll_seconds = float(self.settings.get("IMAP_POLL_SECONDS") or 60)
        self.retry_base = retry_base
        self.stale_seconds = stale_seconds
        self.hook = hook
        self.folder = self.settings.get("IMAP_FOLDER") or "INBOX"
        # Shadow mode keeps its own cursor and keys, so it never hides mail from the live worker.
        self.namespace = "dry-run:" if dry_run else ""
        self.max_bytes = int(self.settings.get("AUTOREPLY_MAX_BYTES") or 10_000_000)
        self.allow_list = [a.strip() for a in str(self.settings.get("AUTOREPLY_ALLOW_LIST") or "").split(",") if a.strip()]
        self.holder = ModelHolder(default_lang=self.settings.get("DEFAULT_LANGUAGE") or "en")
        self.counts: Counter[str] = Counter()
        self.stop = threading.Event()
        self.waiting = False  # True while in IDLE: interrupt() then ends the wait at once
        self._mailbox: Mailbox | None = None
        self._articles_signature: tuple | None = None

    # --- the loops ------------------------------------------------------------------------------

    def run_once(self) -> Counter[str]:
        """Handle everything waiting in the mailbox, then return the counts per outcome."""
        with self.mailbox_factory() as mailbox:
            self.cycle(mailbox, mailbox.select())
        return self.counts

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Cycle and wait until ``stop`` is set; reconnect with exponential backoff when the server goes."""
        self.stop = stop or self.stop
        delay = self.backoff[0]
        while not self.stop.is_set():
            try:
                with self.mailbox_factory() as mailbox:
                    uidvalidity = mailbox.select()
                    delay = self.backoff[0]
                    while not self.stop.is_set():
                        self.cycle(mailbox, uidvalidity)
                        if not self.stop.is_set():
                            self._wait(mailbox)
            except (MailboxGone, OSError) as exc:
                if self.stop.is_set():
                    break
                log.warning("mailbox connection lost (%s); reconnecting in %.1f s", exc, delay)
            except Exception:  # a database hiccup or a bug must not end the service; log it loudly
                log.exception("auto-responder cycle failed; retrying in %.1f s", delay)
            if self.stop.wait(delay):
                break
            delay = min(delay * 2, self.backoff[1])

    def _wait(self, mailbox: Mailbox) -> None:
        """IDLE (or poll) until mail may have come, ``wake_seconds`` passed, or interrupt()."""
        self._mailbox, self.waiting = mailbox, True
        try:
            if self.stop.is_set():
                return
            if mailbox.has_idle:
                mailbox.wait(self.wake_seconds)
            else:  # no IDLE: poll; waiting on the event lets interrupt() end the sleep at once
                self.stop.wait(min(self.wake_seconds, self.poll_seconds))
        finally:
            self._mailbox, self.waiting = None, False

    def interrupt(self) -> None:
        """Stop after the email in hand; an IDLE wait ends at once (safe from threads and signal handlers)."""
        self.stop.set()
        client = getattr(self._mailbox, "client", None) if self.waiting else None
        if client is not None:
            try:  # the blocked idle_check sees the socket end and returns; the loop then sees stop
                client.shutdown()
            except OSError:
                pass

    def cycle(self, mailbox: Mailbox, uidvalidity: int) -> None:
        """One pass over everything the worker owes: new mail, take-overs, retries, alerts, marks."""
        with session_scope(self.app) as session:
            # Shadow mode leaves the live worker's records alone.
            recovered = 0 if self.dry_run else ledger.recover_interrupted(session, self.stale_seconds)
            if recovered:
                log.warning("%d reply(s) interrupted while sending were handed to a person", recovered)
            self.refresh_model(session)
        self.handle_new(mailbox, uidvalidity)
        self.take_over(mailbox, uidvalidity)
        if not self.dry_run:
            self.send_retries(mailbox, uidvalidity)
            self.send_alerts()
            self.apply_marks(mailbox, uidvalidity)

    def refresh_model(self, session) -> bool:
        """Refit the matcher when published articles changed (a cheap signature query first)."""
        signature = session.execute(sa.select(
            sa.func.count(Article.id).filter(Article.status == "published"),
            sa.func.max(Article.updated_at), sa.func.count(Article.id))).one()
        if tuple(signature) == self._articles_signature:
            return False
        changed = self.holder.refresh(published_match_articles(session))
        self._articles_signature = tuple(signature)
        if changed:
            log.info("matcher fitted on %d published articles", len(self.holder.matcher))
        return changed

    # --- new mail ---------------------------------------------------------------------------------

    def handle_new(self, mailbox: Mailbox, uidvalidity: int) -> None:
        """Every UID past the cursor, in order; the cursor moves after each fully handled one."""
        name = self.namespace + self.folder
        with session_scope(self.app) as session:
            cursor = ledger.get_cursor(session, name)
            last = cursor.last_uid if cursor and cursor.uidvalidity == uidvalidity else 0
            if cursor and cursor.uidvalidity != uidvalidity:
                log.warning("UIDVALIDITY of %s changed (%s -> %s): reading it again from the start; "
                            "emails already handled are recognised", self.folder, cursor.uidvalidity, uidvalidity)
        for uid in mailbox.new_uids(last):
            if self.stop.is_set():
                break  # SIGTERM: the email in hand is done, the rest waits for the next start
            self.handle_uid(mailbox, uidvalidity, uid)
            with session_scope(self.app) as session:
                ledger.save_cursor(session, name, uidvalidity, uid)

    def handle_uid(self, mailbox: Mailbox, uidvalidity: int, uid: int) -> str:
        """Fetch, parse, claim, decide, reply, mark one email; returns its state ("already" if taken)."""
        try:
            raw, _size = mailbox.fetch(uid, self.max_bytes)
        except MessageMissing:  # expunged by another client before we read it: nothing to answer
            self.counts["vanished"] += 1
            return "vanished"
        except MailboxGone:
            raise
        except MailboxError as exc:  # the server will not hand this one out: a person must look
            raw, parsed, problem = None, None, f"unfetchable: {exc}"
        else:
            self._step("fetched", None)
            parsed, problem = self._parse(raw)
        key = (ledger.dedupe_key_for(raw, parsed.message_id if parsed else "") if raw is not None
               else f"unfetchable:{self.folder}:{uidvalidity}:{uid}")
        with session_scope(self.app) as session:
            record = ledger.claim(
                session, dedupe_key=self.namespace + key, message_id=parsed.message_id if parsed else "",
                folder=self.folder, uidvalidity=uidvalidity, uid=uid, from_addr=parsed.from_addr if parsed else "",
                reply_to=parsed.reply_to if parsed else "", subject=parsed.subject if parsed else "",
                text=parsed.clean_text if parsed else "", reclaim_after=self.stale_seconds)
            if record is None:
                self.counts["already"] += 1
                return "already"
            self._step("claimed", record)
            try:
                self._handle_claimed(session, mailbox, record, parsed, problem, uidvalidity)
            except (MailboxGone, sa.exc.OperationalError):
                raise  # reconnect; a take-over or apply_marks finishes the email later
            except Exception as exc:  # a bug on one email must not block the mailbox: a person takes it
                log.exception("handling UID %s failed", uid)
                session.rollback()
                self._hand_over(session, record, f"error: {type(exc).__name__}: {exc}")
            self.counts[record.state] += 1
            log.info("uid %s from %s: %s (%s)", uid, record.from_addr, record.state, record.reason)
            return record.state

    def _handle_claimed(self, session, mailbox: Mailbox, record: MailRecord, parsed: ParsedEmail | None,
                        problem: str, uidvalidity: int) -> None:
        """Decide, record, reply when confident (never in dry-run), mark."""
        self._record(session, record, self._decide(session, parsed, problem))
        if record.state == "new" and not self.dry_run:
            self.send_reply(session, mailbox, record, parsed)
        if not self.dry_run:
            self.mark(session, mailbox, record, uidvalidity)

    def _parse(self, raw: bytes) -> tuple[ParsedEmail | None, str]:
        """The parsed email, or None and why it could not be read."""
        try:
            return parse_message(raw, max_bytes=self.max_bytes), ""
        except ParseError as exc:
            return None, str(exc)

    def _decide(self, session, parsed: ParsedEmail | None, problem: str) -> Decision:
        """decide() for one email; an unreadable email or a failure goes to a person, never stops us."""
        if parsed is None:
            return Decision(PERSON, problem if problem.startswith("unfetchable") else f"unparseable: {problem}")
        try:
            return decide(parsed, self.holder.matcher, self.settings,
                          sent_message_ids=SentIds(session), allow_list=self.allow_list)
        except Exception as exc:  # one odd email must not stop the worker; a person will look at it
            log.exception("deciding failed for %s", parsed.message_id)
            return Decision(PERSON, f"error: deciding failed ({type(exc).__name__}: {exc})", email=parsed)

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

    # --- replying -------------------------------------------------------------------------------

    def send_reply(self, session, mailbox: Mailbox, record: MailRecord, parsed: ParsedEmail | None) -> None:
        """Compose, win the right to send, send by SMTP, record; a 4xx is retried later, a 5xx goes to a person."""
        articles = compose.suggested_articles(session, record, self.settings)
        if not articles:
            self._hand_over(session, record, "no-article: the suggested articles are no longer published")
            return
        message_id = record.reply_message_id or compose.new_message_id(self.settings["BASE_URL"])
        urls = links.make_feedback_urls(self.settings["BASE_URL"], self.settings["SECRET_KEY"], record.id)
        try:
            message = compose.build_reply(record, parsed, articles, settings=self.settings, links=urls,
                                          message_id=message_id)
        except (compose.Unsendable, ConfigError) as exc:  # e.g. an address no email can carry
            self._hand_over(session, record, f"unsendable: {exc}")
            return
        if not ledger.begin_sending(session, record, message_id):
            return  # another worker won it
        self._step("sending", record)
        try:
            smtp.send(message, self.settings)
        except (smtp.SendFailed, smtp.SendUncertain) as exc:
            self._record_send_failure(session, record, exc)
            return
        self._step("sent", record)
        ledger.finish_sent(session, record)
        self._step("finished", record)
        sent_folder = self.settings.get("IMAP_SENT_FOLDER")
        if sent_folder:
            try:
                mailbox.append(sent_folder, compose.message_bytes(message))
            except MailboxGone:
                raise
            except MailboxError as exc:  # the reply left; only its copy is missing
                log.warning("could not store the reply in %s (%s)", sent_folder, exc)

    def _step(self, name: str, record: MailRecord | None) -> None:
        """Tell the test hook which step just finished."""
        if self.hook is not None:
            self.hook(name, record)
