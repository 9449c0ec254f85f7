"""Email addresses read from an incoming email's headers, with the standard library's header parser.

From, Reply-To, To and Cc go through email.headerregistry (policy.default's address parser),
which knows quoted strings, comments, groups and encoded words; kb takes each address's
addr-spec, never a display name. The address a reply would go to must parse cleanly: exactly one
mailbox, no parser defects, a plain local part and a host name; anything else is refused with a
reason a person can read, so the email goes to a person instead of to whatever the header hid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import errors as email_errors
from email import policy
from email.utils import getaddresses

from kb.autoreply.addresses import sender_key
from kb.autoreply.charsets import clean_line

# The stdlib's address parser costs about 25 microseconds a character, more than linear past a
# few thousand; kb uses To and Cc for nothing but the record, so about 50 addresses are read.
MAX_ADDRESS_HEADER_CHARS = 2_000
MAX_ADDRESSES = 100
MAX_ADDRESS_CHARS = 254  # RFC 5321's limit on a path
# A reply address stands alone; a long Reply-To is an attempt to hide something.
MAX_REPLY_HEADER_CHARS = 1_000
# RFC 6532 allows UTF-8 in addresses; the parser flags it, but it is not a syntax error.
HARMLESS_DEFECTS = (email_errors.NonASCIILocalPartDefect,)
_LOCAL_PART = re.compile(r"[^\W_]|[!#$%&'*+/=?^_`{|}~-]")
_DOMAIN_LABEL = re.compile(r"[^\W_](?:[^\W_]|-)*", re.UNICODE)
# The usual header, one plain mailbox ("a.b@c.example", "<a@c.example>", "Pat Smith <a@c.example>"):
# the stdlib's parser takes half a millisecond for what this reads alike (tests compare the two).
_ADDR = r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_SIMPLE_MAILBOX = re.compile(rf"(?:([A-Za-z0-9]+(?: [A-Za-z0-9]+)*) )?<({_ADDR})>|({_ADDR})")
_ADDRESS_LIKE = re.compile(r"[^\s<>(),;:\"\[\]]+@[^\s<>(),;:\"\[\]]+")


@dataclass(frozen=True)
class AddressHeader:
    """The (display name, lower-cased addr-spec) pairs of one header name, and what went wrong."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    problem: str = ""  # why the header did not parse cleanly; "" when it did
    present: bool = False


def unfold(raw: str) -> str:
    """A raw header value on one line (RFC 5322 unfolding: line breaks removed, the space kept)."""
    return re.sub(r"\r\n|\r|\n", "", raw)


def parse_addresses(name: str, values: list[str], notes: list[str],
                    max_chars: int = MAX_ADDRESS_HEADER_CHARS) -> AddressHeader:
    """Every address in the fields called ``name`` (their raw values), bounded, with any problem."""
    values = [unfold(value) for value in values]
    if not any(value.strip() for value in values):
        return AddressHeader()
    value = ", ".join(value for value in values if value.strip())
    if len(value) > max_chars:
        notes.append(f"{name} is {len(value)} characters long: only the first {max_chars} were read")
        value = value[:max(value.rfind(",", 0, max_chars), 0) or max_chars]
    simple = _SIMPLE_MAILBOX.fullmatch(value.strip())
    pairs, problem = ([(simple.group(1) or "", simple.group(2) or simple.group(3))], "") if simple else (
        stdlib_addresses(name, value))
    if len(pairs) > MAX_ADDRESSES:
        notes.append(f"{name} holds {len(pairs)} addresses: only the first {MAX_ADDRESSES} were kept")
        del pairs[MAX_ADDRESSES:]
    kept = [(clean_line(display).strip(), clean_line(addr).strip().lower()) for display, addr in pairs]
    return AddressHeader([(display, addr) for display, addr in kept if addr and addr != "<>"],
                         problem, present=True)


def stdlib_addresses(name: str, value: str) -> tuple[list[tuple[str, str]], str]:
    """(display name, addr-spec) pairs of a header value by the stdlib's parser, and its problem."""
    problem = ""
    try:
        header = policy.default.header_factory(name, value)
        pairs = [(a.display_name, a.addr_spec) for a in header.addresses]
        defects = [d for d in header.defects if not isinstance(d, HARMLESS_DEFECTS)]
        if defects:
            problem = f"{type(defects[0]).__name__} ({defects[0]})"
        elif any(group.display_name for group in header.groups):
            problem = "it names a group of addresses"
    except Exception as exc:  # the parser gives up (deeply nested comments): the forgiving one reads it
        problem = f"the header parser failed ({type(exc).__name__})"
        pairs = getaddresses([value])
    return pairs, problem


def reply_address(name: str, values: list[str], parsed: AddressHeader | None = None) -> tuple[str, str]:
    """(address, "") when the header a reply would go to names one clean mailbox, else ("", why not).

    ``parsed``: these values already read by parse_addresses (From, read for the record), so they
    are not parsed twice."""
    raw = " ".join(unfold(value) for value in values)
    if len(values) > 1:
        return "", f"{name} appears {len(values)} times"
    if len(raw) > MAX_REPLY_HEADER_CHARS:
        return "", f"{name} is {len(raw)} characters long"
    if re.search(r"[\x00-\x08\x0a-\x1f\x7f]", raw):
        return "", f"{name} holds control characters"
    # Under MAX_REPLY_HEADER_CHARS here, so a parse with parse_addresses' larger cap cut nothing.
    header = parsed if parsed is not None else parse_addresses(name, values, [], MAX_REPLY_HEADER_CHARS)
    if header.problem:
        return "", f"{name} does not parse cleanly: {header.problem}"
    if len(header.pairs) != 1:
        return "", f"{name} names {len(header.pairs)} addresses, not one"
    address = header.pairs[0][1]
    why = address_problem(address)
    return ("", f"{name} address {address[:80]!r} {why}") if why else (address, "")


def address_problem(address: str) -> str:
    """Why ``address`` is no plain mailbox kb may send to ("" when it is one)."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return "has no local part and domain"
    if len(address) > MAX_ADDRESS_CHARS:
        return f"is over {MAX_ADDRESS_CHARS} characters"
    if "=?" in address:
        return "holds an undecoded encoded word"
    if local.startswith(".") or local.endswith(".") or ".." in local or not all(
            _LOCAL_PART.fullmatch(char) for char in local.replace(".", "")):
        return "has a local part that needs quoting"
    labels = domain.split(".")
    if len(labels) < 2 or not all(len(label) <= 63 and _DOMAIN_LABEL.fullmatch(label)
                                  and not label.endswith("-") for label in labels):
        return "has no host name a reply can go to"
    return ""


def mailbox_key(address: str) -> str:
    """The mailbox an address reaches, for comparing: kb.autoreply.addresses.sender_key of its addr-spec."""
    text = (address or "").strip()
    if "<" in text[1:]:  # "Support <support@kb.example>": the address inside the brackets
        text = getaddresses([text])[0][1] or text
    return sender_key(text.strip("<>"))


def addresses_in(text: str) -> list[str]:
    """Address-like words in free text (an X-Loop value, say), for comparing with mailbox_key."""
    return _ADDRESS_LIKE.findall(text or "")
