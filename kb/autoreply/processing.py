"""One email's processing as one function, and the quick look at its raw headers that comes first.

``process_message`` (parse, clean, decide) is the heavy part of handling an email; the worker runs
it in a child process with a time and memory limit (kb/autoreply/sandbox.py). ``peek`` is what the
worker does with the raw bytes before that, in its own process: a scan bounded in bytes and in
work, so that whatever an email holds, the worker can record it (its first handling attempt)
before anything slow starts.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterable, Mapping
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.utils import parseaddr
from typing import Any

from kb.autoreply.decision import PERSON, Decision, decide
from kb.autoreply.matcher import Matcher
from kb.autoreply.parsing import DEFAULT_MAX_BYTES, MESSAGE_ID, ParseError, parse_message

PEEK_BYTES = 256 * 1024  # the header scan never reads further into an email
PEEK_VALUE_CHARS = 998  # nor keeps more of one header value (RFC 5322's line length)


@dataclass(frozen=True)
class Peek:
    """What a quick look at the raw headers found (raw text, not yet properly decoded)."""

    message_id: str = ""
    from_addr: str = ""
    reply_to: str = ""
    subject: str = ""


def peek(raw: bytes) -> Peek:
    """Message-ID, From, Reply-To and Subject from the first PEEK_BYTES of ``raw``; never slow, never raises."""
    found = peek_headers(raw, ("message-id", "from", "reply-to", "subject"))
    message_id = found.get("message-id", "")
    first_id = MESSAGE_ID.search(message_id)
    return Peek(message_id=first_id.group(0) if first_id else message_id.strip(),
                from_addr=_address(found.get("from", "")), reply_to=_address(found.get("reply-to", "")),
                subject=_decoded(found.get("subject", "")))


def peek_headers(raw: bytes, names: Iterable[str]) -> dict[str, str]:
    """The first value of each header in ``names`` (lower-case), unfolded, read from the first
    PEEK_BYTES only and cut to PEEK_VALUE_CHARS; bytes that are not UTF-8 become U+FFFD."""
    wanted = set(names)
    head = bytes(raw[:PEEK_BYTES])
    end = min((i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0), default=len(head))
    values: dict[str, bytes] = {}
    current = None
    for line in head[:end].split(b"\n"):
        line = line.rstrip(b"\r")
        if line[:1] in (b" ", b"\t"):  # a folded continuation of the header before
            if current is not None and len(values[current]) < PEEK_VALUE_CHARS:
                values[current] += b" " + line.strip()
            continue
        name, colon, value = line.partition(b":")
        current = None
        if colon:
            key = name.strip().lower().decode("ascii", "replace")
            if key in wanted and key not in values:
                current, values[key] = key, value.strip()
    return {key: value[:PEEK_VALUE_CHARS * 4].decode("utf-8", "replace")[:PEEK_VALUE_CHARS]
            for key, value in values.items()}


def _address(value: str) -> str:
    """The address in a raw From/Reply-To value (the value itself when none can be picked out)."""
    try:
        _name, address = parseaddr(value)
    except Exception:  # parseaddr on a bounded string; still, a quick look must never fail
        address = ""
    return (address or value).strip()


def _decoded(value: str) -> str:
    """RFC 2047 words decoded (the raw value when they cannot be)."""
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # unknown charset, broken encoded word: the raw text still identifies the email
        return value


def process_message(raw: bytes, *, matcher: Matcher, settings: Mapping[str, Any],
                    sent_message_ids: Container[str] = (), allow_list: Collection[str] = (),
                    max_bytes: int = DEFAULT_MAX_BYTES) -> Decision:
    """Parse, clean and decide one email. Never raises for what the email holds: an email that
    cannot be read or decided is a Decision for a person, with the reason (MemoryError excepted:
    the sandbox reports it as the email being too big)."""
    try:
        parsed = parse_message(raw, max_bytes=max_bytes)
    except ParseError as exc:
        if isinstance(exc.__cause__, MemoryError):  # the parser wraps whatever it raises
            raise exc.__cause__
        return Decision(PERSON, f"unparseable: {exc}")
    try:
        return decide(parsed, matcher, settings, sent_message_ids=sent_message_ids, allow_list=allow_list)
    except MemoryError:
        raise
    except Exception as exc:  # one odd email must not stop the worker; a person will look at it
        return Decision(PERSON, f"error: deciding failed ({type(exc).__name__}: {exc})", email=parsed)
