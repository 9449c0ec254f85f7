"""The signed header on a contact-form question kb sends to the support mailbox.

The mail worker reads the same mailbox, so the copy would otherwise come back as a new question:
answered a second time and counted twice. The header carries the question's record id signed with
the secret key (HMAC-SHA256), so nobody can forge it to make the worker ignore their email. A copy
with a valid marker is recorded as "skipped" (never counted, never answered) with a reason naming
the question, and is marked in the mailbox as waiting for a person, which it is.

Kept free of the mail worker's imports: kb.autoreply.intake and upkeep import this module.
"""

from __future__ import annotations

import hmac
import re

from kb.models import MAX_ID
from kb.visitors import keyed_hash

HEADER = "X-KB-Contact-Form"
PURPOSE = "contact-form-copy"
COPY_REASON = "contact-form-copy"  # the reason's code: "<code>: sent from the contact form: question #<id>"
_VALUE = re.compile(r"\s*(\d{1,19})\.([0-9a-f]{32})\s*")


def make(secret: str, record_id: int) -> str:
    """The header's value for the question recorded as ``record_id``: "<id>.<signature>"."""
    return f"{int(record_id)}.{keyed_hash(secret, PURPOSE, str(int(record_id)))}"


def read(secret: str, value: str | None) -> int | None:
    """The record id a header value names if kb signed it; None for a missing, altered or forged one."""
    found = _VALUE.fullmatch(str(value or ""))
    if not found or not secret:
        return None
    record_id = int(found.group(1))
    if not 0 < record_id <= MAX_ID:
        return None
    return record_id if hmac.compare_digest(found.group(2), keyed_hash(secret, PURPOSE, str(record_id))) else None


def copy_reason(record_id: int) -> str:
    """Why the worker leaves a copy alone: it is a question already recorded from the contact form."""
    return f"{COPY_REASON}: sent from the contact form: question #{record_id}"


def is_copy(state: str, reason: str) -> bool:
    """Whether a mail record is the mailbox copy of a contact-form question."""
    return state == "skipped" and (reason or "").startswith(COPY_REASON + ":")


def mailbox_state(state: str, reason: str) -> str:
    """The state whose mark the mailbox shows: a copy waits for a person like any question sent on."""
    return "person" if is_copy(state, reason) else state
