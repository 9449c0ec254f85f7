"""Where follow-up signals come from: a "No" vote, a "Still need help" click, and a customer writing
back into a thread kb auto-answered. Each turns its own record into one kb.followup.signals call.

Request-free glue: the portal and the mail worker call these after storing their own record, and
commit afterwards. Every signal's key names the record it comes from, so a double click, a retried
request or a second worker records it once (record_signal is idempotent by key).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.models import MailRecord
from kb.errors import ValidationError
from kb.followup.customers import EMAIL, check_identity
from kb.followup.models import VOTE_REASONS
from kb.followup.signals import SignalResult, record_signal
from kb.models import Vote

MAX_ADDRESS = 320  # RFC 5321's longest forward path, and the identity column's size
WRITEBACK = "writeback: the customer answered kb's auto-reply"
MAX_THREAD_IDS = 50  # of In-Reply-To and References looked up: the newest, where kb's reply sits


def vote_reason(value: str | None) -> str:
    """The reason of a "No" vote (one of VOTE_REASONS, or empty); ValidationError for any other."""
    value = str(value or "").strip()
    if value and value not in VOTE_REASONS:
        raise ValidationError(f"Unknown reason {value!r}: use one of {', '.join(VOTE_REASONS)}.")
    return value


def vote_address(value: str | None) -> str:
    """The address a voter left so kb can follow up (empty when none); ValidationError if not one."""
    value = str(value or "").replace("\x00", "").strip()
    if not value:
        return ""
    if len(value) > MAX_ADDRESS or not EMAIL.fullmatch(value):
        raise ValidationError("Enter an email address such as name@example.com.")
    return value


def _mail_address(address: str) -> str:
    """An email's reply address, or empty when no customer can have it (kb replies only to clean
    addresses, but a case without a customer is better than a lost signal)."""
    try:
        check_identity("email", address or "")
    except ValidationError:
        return ""
    return address


def from_vote(session: so.Session, vote: Vote, address: str, settings: Mapping[str, Any],
              lang: str = "") -> SignalResult | None:
    """The signal of a "No" vote (None for a "Yes"): about the voter when they left an address,
    else about the article (its author follows up). The caller commits."""
    if vote.helpful:
        return None
    if vote.id is None:
        session.flush()
    return record_signal(session, key=f"vote:{vote.id}", source="vote", settings=settings,
                         address=vote_address(address), article_id=vote.article_id, words=vote.comment or "",
                         reason=vote.reason or "", channel="web", lang=lang)


def from_still_need_help(session: so.Session, record: MailRecord, settings: Mapping[str, Any]) -> SignalResult | None:
    """The signal of a "Still need help" click on an auto-reply (None unless that is the record's
    resolution): the customer, their question, and the email to thread on. The caller commits."""
    if record.resolution != "still_need_help":
        return None
    return record_signal(session, key=f"mail:{record.id}:still_need_help", source="still_need_help",
                         settings=settings, address=_mail_address(record.reply_to or record.from_addr), words=record.text or "",
                         mail_record_id=record.id, channel="email", lang=record.lang or "",
                         thread_message_id=record.message_id or "", thread_subject=record.subject or "")


def answered_record(session: so.Session, thread_ids: Iterable[str]) -> MailRecord | None:
    """The email kb auto-answered whose reply one of ``thread_ids`` names, if any: state "replied",
    or handed to a person by a "Still need help" click on that reply (the write-back joins its case)."""
    wanted: set[str] = set()
    for message_id in list(thread_ids)[-MAX_THREAD_IDS:]:
        bare = str(message_id or "").strip().strip("<>")
        if bare:
            wanted.update((f"<{bare}>", bare))  # kb stores its own ids with the brackets; be lenient
    if not wanted:
        return None
    return session.scalar(sa.select(MailRecord).where(
        MailRecord.reply_message_id.in_(sorted(wanted)),
        sa.or_(MailRecord.state == "replied", MailRecord.resolution == "still_need_help"),
    ).order_by(MailRecord.id.desc()).limit(1))


def from_writeback(session: so.Session, record: MailRecord, *, address: str, words: str, lang: str,
                   thread_message_id: str, thread_subject: str, settings: Mapping[str, Any]) -> SignalResult:
    """The signal of a customer writing back into a thread kb auto-answered (the reply did not
    solve it). ``record`` is the new email's; the thread is the new email's. The caller commits."""
    return record_signal(session, key=f"mail:{record.id}:writeback", source="writeback", settings=settings,
                         address=_mail_address(address), words=words, mail_record_id=record.id, channel="email", lang=lang,
                         thread_message_id=thread_message_id, thread_subject=thread_subject)
