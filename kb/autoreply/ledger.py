"""The ledger: every incoming email's record and the small state machine that sends a reply once.

    claim -> new -> (record_decision) -> skipped | person | new (reply decided)
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
from kb.autoreply.models import MAIL_STATES, MailCursor, MailRecord
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
MAX_TEXT = 20_000  # of the cleaned question kept on the record: enough for a person to read


def dedupe_key_for(raw: bytes, message_id: str) -> str:
    """The email's identity: its Message-ID, or a hash of its headers and body when it has none."""
    message_id = (message_id or "").strip()
    if message_id and len(message_id) <= KEY_LENGTH:
        return message_id
    if message_id:  # absurdly long: still the same email each time it is read
        return "mid-sha256:" + hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()
    # Line endings differ between servers and clients; the content does not.
    data = bytes(raw).replace(b"\r\n", b"\n")
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _cut(value: str | None, length: int) -> str:
    """A string that fits its column (PostgreSQL refuses longer ones)."""
    return (value or "")[:length]


def claim(session: so.Session, *, dedupe_key: str, message_id: str, folder: str,
          uidvalidity: int | None, uid: int | None, from_addr: str, reply_to: str,
          subject: str, text: str = "", reclaim_after: float = RECLAIM_AFTER_SECONDS) -> MailRecord | None:
    """Record a new email and return it; None when it is already recorded (handled or in hand)."""
    record = MailRecord(dedupe_key=dedupe_key, message_id=_cut(message_id, 500), folder=_cut(folder, 200),
                        uidvalidity=uidvalidity, uid=uid, from_addr=_cut(from_addr, 320).lower(),
                        reply_to=_cut(reply_to or from_addr, 320).lower(), subject=_cut(subject, 500),
                        text=_cut(text, MAX_TEXT), state="new", reason="", matches=[])
    session.add(record)
    try:
        session.commit()
        return record
    except sa.exc.IntegrityError:
        session.rollback()
    return _reclaim(session, dedupe_key, reclaim_after)


def _reclaim(session: so.Session, dedupe_key: str, reclaim_after: float) -> MailRecord | None:
    """Take over an email whose claimer died before a reply was under way (one taker wins)."""
    record = session.scalar(sa.select(MailRecord).where(MailRecord.dedupe_key == dedupe_key))
    if record is None or record.state != "new" or record.reason.startswith("dry-run"):
        return None
    if record.updated_at > utcnow() - timedelta(seconds=reclaim_after):
        return None
    won = _cas(session, record, [record.state], where=[MailRecord.updated_at == record.updated_at],
               updated_at=utcnow())
    return record if won else None


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


def resolve(session: so.Session, record_id: int, action: str) -> tuple[MailRecord, bool]:
    """Record a "Solved" / "Still need help" click; a repeated click changes nothing."""
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
            resolution="still_need_help", resolved_at=now, state="person", reason=STILL_NEED_HELP,
            alert_state="pending", marked=False)
    return record, changed


def pending_alerts(session: so.Session) -> list[MailRecord]:
    """"Still need help" clicks whose alert to the team has not gone out yet."""
    return list(session.scalars(sa.select(MailRecord).where(
        MailRecord.alert_state == "pending").order_by(MailRecord.resolved_at, MailRecord.id)))


def alert_sent(session: so.Session, record: MailRecord) -> None:
    """The team was told. Commits."""
    record.alert_state = "sent"
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
