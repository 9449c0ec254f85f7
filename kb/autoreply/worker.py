"""The auto-responder loop: read new mail, decide, reply once, mark, wait; survive everything.

One cycle: recover replies stuck in "sending" (a worker died around SMTP) -> refresh the matcher
if articles changed -> handle new UIDs past the cursor -> take over emails a dead worker claimed
-> send due retries -> apply pending IMAP marks. Between cycles the worker waits in IDLE (or
polls), after one last look for mail that came while it was busy. Exactly-once is the ledger's
job (unique dedupe key, compare-and-set states); this module only calls its steps in order, and
``hook(step, record)`` lets tests stop the worker between any two of them. New mail is
kb/autoreply/intake.py (``handle_email`` is the per-message handling); retries, take-overs and
marks are kb/autoreply/upkeep.py; each email's parsing and deciding runs in a child process with
a time and memory limit (kb/autoreply/sandbox.py).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask

from kb.autoreply import compose, ledger, links, smtp, synonym_expansion
from kb.autoreply.forkserver import start_server
from kb.autoreply.intake import DRY_RUN, Intake, SentIds, error_text  # noqa: F401 (SentIds, DRY_RUN: API)
from kb.autoreply.mailbox import Mailbox, MailboxError, MailboxGone, setting
from kb.autoreply.matcher import ModelHolder, published_match_articles
from kb.autoreply.models import MailRecord
from kb.autoreply.parsing import ParsedEmail
from kb.autoreply.processing import process_message
from kb.autoreply.sandbox import Limits, Outcome, Sandbox, SandboxError
from kb.autoreply.upkeep import Upkeep
from kb.capture import examples
from kb.db import session_scope
from kb.errors import ConfigError
from kb.hosts.heartbeats import Pacer
from kb.insights import outcomes
from kb.models import Article

log = logging.getLogger("kb.autoreply")

Hook = Callable[[str, MailRecord | None], None]
# Failures the loop expects from time to time (a server or database that is down or refuses):
# one line each, no traceback. Anything else is a bug: its traceback is logged once.
EXPECTED = (MailboxError, OSError, sa.exc.OperationalError, SandboxError)


class Worker(Intake, Upkeep):
    """Answers the support mailbox; ``run_once`` for what is waiting, ``run_forever`` to keep at it."""

    def __init__(self, app: Flask, *, mailbox_factory: Callable[[], Mailbox] | None = None,
                 dry_run: bool = False, wake_seconds: float | None = None,
                 backoff: tuple[float, float] = (1.0, 60.0), retry_base: float = 60.0,
                 stale_seconds: float | None = None, hook: Hook | None = None,
                 process: Callable[..., Any] = process_message) -> None:
        self.app = app
        self.settings: dict[str, Any] = dict(app.config)
        self.mailbox_factory = mailbox_factory or (lambda: Mailbox(self.settings))
        self.dry_run = dry_run
        self.wake_seconds = float(wake_seconds or self.settings.get("AUTOREPLY_WAKE_SECONDS") or 30)
        self.backoff = backoff
        self.poll_seconds = float(self.settings.get("IMAP_POLL_SECONDS") or 60)
        self.retry_base = retry_base
        self.stale_seconds = float(setting(self.settings, "AUTOREPLY_RECLAIM_SECONDS")
                                   if stale_seconds is None else stale_seconds)
        self.max_attempts = max(int(setting(self.settings, "AUTOREPLY_MAX_ATTEMPTS")), 1)
        self.hook = hook
        self.folder = self.settings.get("IMAP_FOLDER") or "INBOX"
        # Shadow mode keeps its own cursor and keys, so it never hides mail from the live worker.
        self.namespace = ledger.DRY_RUN_KEY if dry_run else ""
        self.max_bytes = int(self.settings.get("AUTOREPLY_MAX_BYTES") or 10_000_000)
        self.allow_list = [a.strip() for a in str(self.settings.get("AUTOREPLY_ALLOW_LIST") or "").split(",") if a.strip()]
        self.holder = ModelHolder(default_lang=self.settings.get("DEFAULT_LANGUAGE") or "en")
        self.counts: Counter[str] = Counter()
        self.stop = threading.Event()
        limits = Limits(float(setting(self.settings, "AUTOREPLY_MESSAGE_SECONDS")),
                        int(float(setting(self.settings, "AUTOREPLY_MESSAGE_MEMORY_MB")) * 2**20))
        self.sandbox = Sandbox(limits, self.stop, function=process)
        self.waiting = False  # True while in IDLE: interrupt() then ends the wait at once
        self.seen_uid = 0  # the last UID handle_new looked at: mail past it is still to come
        self.last_outcome = Outcome()  # the last email's processing figures (see handle_email)
        self._mailbox: Mailbox | None = None
        self._articles_signature: tuple | None = None
        self._synonyms_version: str | None = None
        self._bugs_seen: set[str] = set()
        self.heartbeat = Pacer(app, "autoreply")  # `kb doctor` sees which hosts answer mail

    # --- the loops ------------------------------------------------------------------------------

    def run_once(self) -> Counter[str]:
        """Handle everything waiting in the mailbox, then return the counts per outcome."""
        start_server()  # imports while the mailbox connects
        try:
            with self.mailbox_factory() as mailbox:
                self.cycle(mailbox, mailbox.select())
        finally:
            self.close()
        return self.counts

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Cycle and wait until ``stop`` is set; after a failure, try again with exponential backoff
        (reset only once a whole cycle worked), one log line per attempt."""
        self.stop = self.sandbox.stop = stop or self.stop
        delay = self.backoff[0]
        start_server()  # imports while the mailbox connects
        try:
            while not self.stop.is_set():
                try:
                    with self.mailbox_factory() as mailbox:
                        uidvalidity = mailbox.select()
                        while not self.stop.is_set():
                            self.cycle(mailbox, uidvalidity)
                            delay = self.backoff[0]  # a whole cycle worked: the next failure starts afresh
                            if not self.stop.is_set():
                                self._wait(mailbox)
                except Exception as exc:  # nothing may end the service; each failure is one log line
                    if self.stop.is_set():
                        break
                    self._log_failure(exc, delay)
                    self.heartbeat.beat(f"failing ({type(exc).__name__}); {self.status()}")
                if self.stop.wait(delay):
                    break
                delay = min(delay * 2, self.backoff[1])
        finally:
            self.heartbeat.forget()
            self.close()

    def status(self) -> str:
        """A short status for the heartbeat: this worker's counts of outcomes (no email's data)."""
        counts = self.counts
        text = (f"replied {counts['replied']}, person {counts['person']}, skipped {counts['skipped']}, "
                f"retry {counts['retry']}")
        return text + ", dry run" if self.dry_run else text

    def close(self) -> None:
        """End the process that reads emails (after handle_email calls made without run_*)."""
        self.sandbox.close()

    def _log_failure(self, exc: Exception, delay: float) -> None:
        """One line for an expected failure; for a bug, its traceback the first time, then one line."""
        if isinstance(exc, EXPECTED):
            log.warning("auto-responder: %s; trying again in %.3g s", error_text(exc, 500), delay)
            return
        signature = f"{type(exc).__name__}: {exc}"[:500]
        if signature not in self._bugs_seen:
            self._bugs_seen.add(signature)
            log.exception("auto-responder cycle failed; trying again in %.3g s", delay)
        else:
            log.error("auto-responder cycle failed again (%s; traceback above); trying again in %.3g s",
                      error_text(exc, 500), delay)

    def _wait(self, mailbox: Mailbox) -> None:
        """IDLE (or poll) until mail may have come, ``wake_seconds`` passed, or interrupt(); mail
        that came while the worker was busy ends the wait before it starts."""
        self._mailbox, self.waiting = mailbox, True
        try:
            # Waiting is when the process that reads emails finishes starting, not at the next email.
            if self.stop.is_set() or not self.sandbox.wait_ready():
                return
            if mailbox.has_idle:
                mailbox.wait(self.wake_seconds, after_uid=self.seen_uid)
            else:  # no IDLE: poll; waiting on the event lets interrupt() end the sleep at once
                self.stop.wait(min(self.wake_seconds, self.poll_seconds))
        finally:
            self._mailbox, self.waiting = None, False

    def interrupt(self) -> None:
        """Stop soon: an email in hand is given back, an IDLE wait ends at once (safe from threads
        and signal handlers)."""
        self.stop.set()
        self.sandbox.kill()  # a slow email ends now; the worker gives it back for the next start
        client = getattr(self._mailbox, "client", None) if self.waiting else None
        if client is not None:
            try:  # the blocked wait sees the socket end and returns; the loop then sees stop
                client.shutdown()
            except OSError:
                pass

    def cycle(self, mailbox: Mailbox, uidvalidity: int) -> None:
        """One pass over everything the worker owes: new mail, take-overs, retries, marks."""
        with session_scope(self.app) as session:
            # Shadow mode leaves the live worker's records alone.
            recovered = 0 if self.dry_run else ledger.recover_interrupted(session, self.stale_seconds)
            if recovered:
                log.warning("%d reply(s) interrupted while sending were handed to a person", recovered)
            self.refresh_model(session)
            self._synonyms_version = synonym_expansion.refresh(self.holder, session, self._synonyms_version)
        self.handle_new(mailbox, uidvalidity)
        self.take_over(mailbox, uidvalidity)
        if not self.dry_run:
            self.send_retries(mailbox, uidvalidity)
            self.apply_marks(mailbox, uidvalidity)
        self.heartbeat.beat(self.status())

    def refresh_model(self, session) -> bool:
        """Refit the matcher when published articles or their example questions changed (cheap
        signature queries first); if the refit fails, keep answering with the old model until they
        change again."""
        signature = (*session.execute(sa.select(
            sa.func.count(Article.id).filter(Article.status == "published"),
            sa.func.max(Article.updated_at), sa.func.count(Article.id))).one(), examples.version(session))
        if signature == self._articles_signature:
            return False
        self._articles_signature = signature
        try:
            changed = self.holder.refresh(published_match_articles(session))
        except sa.exc.OperationalError:
            self._articles_signature = None  # the database, not the articles: try again next cycle
            raise
        except Exception:  # one article must not stop the auto-responder
            log.exception("the matcher could not be refitted; it keeps the articles it had")
            return False
        if changed:
            log.info("matcher fitted on %d published articles", len(self.holder.matcher))
        return changed

    # --- replying -------------------------------------------------------------------------------

    def send_reply(self, session, mailbox: Mailbox | None, record: MailRecord, parsed: ParsedEmail | None) -> None:
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
        if ledger.finish_sent(session, record):
            self.note_outcome(session, outcomes.answered, record)  # the wait before "assumed" starts
        self._step("finished", record)
        sent_folder = self.settings.get("IMAP_SENT_FOLDER")
        if sent_folder and mailbox is not None:
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
