"""The ledger: every incoming email's record and the small state machine that sends a reply once.

    claim -> new -> (fill_in, record_decision) -> skipped | person | new (reply decided)
    new, undecided, its worker gone -> (claim again) new, one more attempt | person after the limit
    new | retry -> (begin_sending) -> sending -> (finish_sent) replied | (fail_send) retry, or
        person after MAX_SEND_ATTEMPTS | (refuse_send, a 5xx answer) person
    sending, stuck (worker killed) -> (recover_interrupted) person

Exactly-once rests on database constraints and compare-and-set updates, never on timing: the
unique dedupe_key lets one worker claim an email, and begin_sending lets one worker send, after
it stored the reply's Message-ID. Functions commit where a step must be durable before the next,
so the caller must have nothing else pending in the session.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.addresses import sender_key
# The lookups live in their own module; callers use them as ledger.<name>.
from kb.autoreply.ledger_lookups import (get_cursor, list_records, our_message_ids, save_cursor,  # noqa: F401
                                         set_marked, state_counts, unmarked)
from kb.autoreply.models import MAIL_STATES, MAX_TEXT, MailRecord
from kb.autoreply.storable import storable_key, storable_text
from kb.errors import NotFound, ValidationError
from kb.models import Article, utcnow

OUTCOME_STATES = {"skip": "skipped", "person": "person", "reply": "new"}
ACTIONS = {"solved": "solved", "still_need_help": "still_need_help", "help": "still_need_help"}
UNKNOWN_IF_SENT = ("unknown-if-sent: the worker stopped while sending; not sent again to avoid "
                   "a duplicate")
STILL_NEED_HELP = "still-need-help: the customer clicked \"Still need help\" after the auto-reply"
# A claimed email with no reply under way whose claimer went quiet this long is taken over: the
# worker was killed between claiming and sending, and the email must not be lost.
RECLAIM_AFTER_SECONDS = 120
KEY_LENGTH = 500  # MailRecord.dedupe_key
MAX_SEND_ATTEMPTS = 10  # refused sends before a person takes the email (KB_AUTOREPLY_SEND_ATTEMPTS)
DECIDED = "\ndecided: "  # a failed send's reason: its error, then this, then the decision (a success restores it)
MAX_ERROR = 1000  # of an SMTP error quoted in a reason
MAX_ATTEMPTS = 3  # handling attempts of one email before it goes to a person (KB_AUTOREPLY_MAX_ATTEMPTS)
DRY_RUN_KEY = "dry-run:"  # shadow mode's keys start with this; kept readable when a key is hashed


def dedupe_key_for(raw: bytes, message_id: str) -> str:
    """The email's identity: its Message-ID, or a hash of its headers and body when it has none."""
    message_id = (message_id or "").strip()
    if message_id and len(message_id) <= KEY_LENGTH:
        return message_id
    if message_id:  # absurdly long: still the same email each time it is read
        return "mid-sha256:" + hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()
    # Line endings differ between servers and clients; the content does not.
    data = bytes(raw).replace(b"\r\n", b"\n")
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _cut(value: str | None, length: int) -> str:
    """A string that fits its column and both databases store (see kb/autoreply/storable.py)."""
    return storable_text(value or "", length)


def claim(session: so.Session, *, dedupe_key: str, message_id: str, folder: str,
          uidvalidity: int | None, uid: int | None, from_addr: str, reply_to: str,
          subject: str, text: str = "", reclaim_after: float = RECLAIM_AFTER_SECONDS,
          max_attempts: int = MAX_ATTEMPTS) -> MailRecord | None:
    """Record a new email (its first handling attempt) and return it; None when it is in hand or done.

    An email a dead worker left undecided is taken over (its attempt count goes up); after
    ``max_attempts`` unfinished attempts it is handed to a person instead, and returned in state
    "person" so the caller can mark it.
    """
    dedupe_key = storable_key(dedupe_key, KEY_LENGTH, keep_prefix=DRY_RUN_KEY)
    now = utcnow()
    record = MailRecord(dedupe_key=dedupe_key, message_id=message_id, folder=folder, uidvalidity=uidvalidity,
                        uid=uid, from_addr=(from_addr or "").lower(), reply_to=(reply_to or from_addr or "").lower(),
                        subject=subject, text=text, state="new", reason="", matches=[],
                        handling_attempts=1, handling_started_at=now)
    session.add(record)
    try:
        session.commit()
    except sa.exc.IntegrityError:
        session.rollback()
        existing = session.scalar(sa.select(MailRecord).where(MailRecord.dedupe_key == dedupe_key))
        if existing is None:
            raise  # not a second claim: the database refused the values themselves
        return _reclaim(session, existing, reclaim_after, max_attempts)
    session.refresh(record)  # the stored (sanitised) values, not the ones handed in
    return record


def _reclaim(session: so.Session, record: MailRecord, reclaim_after: float, max_attempts: int) -> MailRecord | None:
    """Take over an email whose claimer died before a reply was under way (one taker wins)."""
    if record.state != "new" or record.reason.startswith("dry-run"):
        return None
    if record.updated_at > utcnow() - timedelta(seconds=reclaim_after):
        return None
    attempts = record.handling_attempts
    stale = [MailRecord.updated_at == record.updated_at]
    if attempts >= max_attempts:
        won = _cas(session, record, ["new"], where=stale, state="person", reason=_unfinished(record))
        return record if won else None
    won = _cas(session, record, ["new"], where=stale, handling_attempts=attempts + 1,
               handling_started_at=utcnow())
    return record if won else None


def _unfinished(record: MailRecord) -> str:
    """Why an email whose handling never finished goes to a person."""
    started = record.handling_started_at
    when = f"; the last began at {started:%Y-%m-%d %H:%M:%S} UTC" if started else ""
    return (f"unfinished: processing did not finish in {record.handling_attempts} attempt(s): the worker "
            f"stopped or was killed during each{when}. A person must read it.")


def claim_unrecordable(session: so.Session, *, dedupe_key: str, folder: str, uidvalidity: int | None,
                       uid: int | None, error: str) -> MailRecord | None:
    """Record, with the reason, an email whose own values could not be stored: a bare row for a person.

    Only values kb made itself are written (a hash of the key, the folder, the UID), so this write
    cannot fail on the email. None when that row exists already.
    """
    prefix = DRY_RUN_KEY if dedupe_key.startswith(DRY_RUN_KEY) else ""
    key = f"{prefix}unrecordable:" + hashlib.sha256(dedupe_key.encode("utf-8", "surrogatepass")).hexdigest()
    record = MailRecord(dedupe_key=key, folder=folder, uidvalidity=uidvalidity, uid=uid, state="person",
                        reason=f"unrecordable: the email's details could not be stored ({error}); "
                               f"open it in the mailbox (UID {uid})",
                        matches=[], handling_attempts=1, handling_started_at=utcnow())
    session.add(record)
    try:
        session.commit()
    except sa.exc.IntegrityError:
        session.rollback()
        return None
    return record


def release(session: so.Session, record: MailRecord) -> bool:
    """Give back an undecided email when the worker stops mid-way (SIGTERM): the attempt does not
    count, and the next worker may take it over at once."""
    long_ago = utcnow() - timedelta(days=1)
    return _cas(session, record, ["new"], where=[MailRecord.reason == ""],
                handling_attempts=max(record.handling_attempts - 1, 0), updated_at=long_ago)


def fill_in(session: so.Session, record: MailRecord, *, message_id: str, from_addr: str, reply_to: str,
            subject: str, text: str) -> bool:
    """Store what parsing found (the claim had only a quick look at the raw headers). Commits."""
    return _cas(session, record, ["new"], message_id=message_id, from_addr=(from_addr or "").lower(),
                reply_to=(reply_to or from_addr or "").lower(), subject=subject, text=text)


def _cas(session: so.Session, record: MailRecord, states: Iterable[str], *, where=(), **values) -> bool:
    """Compare-and-set: update the record only if it is still in one of ``states``; commit."""
    values.setdefault("updated_at", utcnow())
    result = session.execute(sa.update(MailRecord).where(
        MailRecord.id == record.id, MailRecord.state.in_(list(states)), *where).values(**values))
    session.commit()
    session.refresh(record)
    return result.rowcount == 1


def match_dicts(session: so.Session, matches: Iterable[Any]) -> list[dict[str, Any]]:
    """Matches (dicts, or matcher Match objects) as the JSON the record keeps, with slug and title."""
    out = []
    for match in matches:
        if isinstance(match, dict):
            out.append(dict(match))
            continue
        article = session.get(Article, int(match.article_id)) if str(match.article_id).isdigit() else None
        out.append({"article_id": match.article_id, "slug": article.slug if article else "",
                    "title": article.title if article else "", "score": float(match.score),
                    "terms": list(match.terms)})
        if getattr(match, "example", ""):  # the example question that drove it: shown without a refit
            out[-1].update(example=match.example, example_score=float(match.example_score))
    return out


def replies_to_sender(session: so.Session, sender: str, since: datetime, *, exclude_id: int = 0) -> int:
    """Auto-replies sent (or begun) to ``sender``'s mailbox (addresses.sender_key) since ``since``."""
    # A reply refused for good, or given up on, cleared its sending_since: it does not count.
    return session.scalar(sa.select(sa.func.count()).select_from(MailRecord).where(
        MailRecord.sender_key == sender_key(sender), MailRecord.reply_message_id.is_not(None),
        MailRecord.sending_since >= since, MailRecord.id != exclude_id)) or 0


def record_decision(session: so.Session, record: MailRecord, outcome: str, reason: str,
                    matches: Iterable[Any] = (), lang: str | None = "", *, sender_cap: int = 1,
                    window_hours: float = 24, text: str | None = None) -> MailRecord:
    """Store what kb decided (and the cleaned ``text``, if given).

    Over the sender cap a reply goes to a person: the customer asked a real question, and
    only the automatic answer is rationed.
    """
    if outcome not in OUTCOME_STATES:
        raise ValidationError(f"unknown outcome {outcome!r}: use reply, person or skip")
    state = OUTCOME_STATES[outcome]
    if outcome == "reply":
        since = utcnow() - timedelta(hours=window_hours)
        sent = replies_to_sender(session, record.reply_to, since, exclude_id=record.id)
        if sent >= sender_cap:
            state, reason = "person", (f"sender-cap: {record.reply_to} already got {sent} auto-reply(s) "
                                        f"in the last {window_hours:g} hours (cap {sender_cap})")
    extra = {} if text is None else {"text": _cut(text, MAX_TEXT)}
    _cas(session, record, ["new"], state=state, reason=reason, matches=match_dicts(session, matches),
         lang=_cut(lang, 16), **extra)
    return record


def begin_sending(session: so.Session, record: MailRecord, message_id: str) -> bool:
    """Win the right to send this reply (one worker only); its Message-ID is stored first. Commits."""
    return _cas(session, record, ["new", "retry"], state="sending", reply_message_id=message_id,
                sending_since=utcnow())


def _decision(reason: str) -> str:
    """The decision part of a reason (without the failures of earlier sends)."""
    return reason.rsplit(DECIDED, 1)[1] if DECIDED in reason else reason


def _failure(text: str, error: str, reason: str) -> str:
    """A reason that says what went wrong with the send first, and keeps the decision."""
    return f"{text}: {' '.join(error.split())[:MAX_ERROR]}{DECIDED}{_decision(reason)}"


def finish_sent(session: so.Session, record: MailRecord) -> bool:
    """The SMTP server took the reply: sending -> replied (also after a too-eager recovery), failures cleared."""
    late = sa.and_(MailRecord.state == "person", MailRecord.reason == UNKNOWN_IF_SENT)
    return _cas(session, record, ["sending", "person"], where=[sa.or_(MailRecord.state == "sending", late)],
                state="replied", next_attempt_at=None, reason=_decision(record.reason))


def fail_send(session: so.Session, record: MailRecord, error: str, *, backoff_base: float = 60,
              backoff_max: float = 3600, max_attempts: int = MAX_SEND_ATTEMPTS) -> bool:
    """Failed for now (4xx, no server): sending -> retry after a growing pause; person after ``max_attempts``."""
    attempts = record.attempts + 1
    if attempts >= max_attempts:
        return _cas(session, record, ["sending"], state="person", attempts=attempts, next_attempt_at=None,
                    sending_since=None, reason=_failure(f"send-failed: gave up after {attempts} attempts; "
                                                        "the last one", error, record.reason))
    delay = min(backoff_base * 2 ** (attempts - 1), backoff_max)
    return _cas(session, record, ["sending"], state="retry", attempts=attempts,
                next_attempt_at=utcnow() + timedelta(seconds=delay),
                reason=_failure(f"send-failed (attempt {attempts}, next in {delay:g} s)", error, record.reason))


def refuse_send(session: so.Session, record: MailRecord, error: str) -> bool:
    """The server refused the recipient or the message for good (5xx): sending -> person, never resent."""
    return _cas(session, record, ["sending"], state="person", attempts=record.attempts + 1, next_attempt_at=None,
                sending_since=None, reason=_failure("send-refused", error, record.reason))


def due_retries(session: so.Session, now: datetime | None = None) -> list[MailRecord]:
    """Replies whose retry time has come, oldest first."""
    return list(session.scalars(sa.select(MailRecord).where(
        MailRecord.state == "retry", MailRecord.next_attempt_at <= (now or utcnow())
    ).order_by(MailRecord.next_attempt_at, MailRecord.id)))


def send_uncertain(session: so.Session, record: MailRecord, error: str) -> bool:
    """The connection broke after DATA: it may have left, so sending -> person, never resent."""
    return _cas(session, record, ["sending"], state="person", next_attempt_at=None,
                reason=f"unknown-if-sent: the SMTP connection broke after the reply was handed over; "
                       f"not sent again to avoid a duplicate ({error})"[:1000])


def recover_interrupted(session: so.Session, older_than_seconds: float = 120) -> int:
    """Replies stuck in "sending" (a worker died around SMTP) go to a person, never resent."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    result = session.execute(sa.update(MailRecord).where(
        MailRecord.state == "sending", MailRecord.sending_since < cutoff
    ).values(state="person", reason=UNKNOWN_IF_SENT, updated_at=utcnow()))
    session.commit()
    return result.rowcount


def resolve(session: so.Session, record_id: int, action: str) -> tuple[MailRecord, bool]:
    """Record a "Solved" / "Still need help" click; a repeated click changes nothing.

    "Still need help" hands the email to a person; the team hears of it through the follow-up
    case the click opens (kb.followup.sources), no longer through an alert of the mail worker.
    """
    resolution = ACTIONS.get(action)
    if resolution is None:
        raise ValidationError(f"unknown action {action!r}: use solved or still_need_help")
    record = session.get(MailRecord, record_id)
    if record is None:
        raise NotFound("This email is no longer on record.")
    now = utcnow()
    if resolution == "solved":
        changed = _cas(session, record, MAIL_STATES, where=[MailRecord.resolution.is_(None)],
                       resolution="solved", resolved_at=now)
    else:  # a customer who first said solved may still need a person: that one wins
        changed = _cas(session, record, MAIL_STATES, where=[sa.or_(
            MailRecord.resolution.is_(None), MailRecord.resolution == "solved")],
            resolution="still_need_help", resolved_at=now, state="person", reason=STILL_NEED_HELP, marked=False)
    return record, changed


def mark_failed(session: so.Session, record: MailRecord, *, max_attempts: int) -> bool:
    """The connection broke while marking this email: count it; after ``max_attempts`` stop trying
    (it counts as marked). Returns True when it gave up."""
    attempts = record.mark_attempts + 1
    give_up = attempts >= max_attempts
    _cas(session, record, MAIL_STATES, mark_attempts=attempts, marked=give_up)
    return give_up
