"""Customers' email addresses: written into a reply's To, and folded into one sender for the cap.

Domains go out in their ASCII form (IDNA 2008 with the UTS 46 mapping, the `idna` package), so an
internationalised domain needs nothing from the SMTP server. A non-ASCII local part has no ASCII
form: it can only be sent through a server that announces SMTPUTF8 (kb.autoreply.smtp checks).
"""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.headerregistry import Address

import idna

from kb.autoreply.outgoing import header_text, readable
from kb.errors import KBError

MAX_NAME_CHARS = 100  # of a display name kb writes: a name, not a message
KEY_CHARS = 320  # MailRecord.sender_key
# Gmail ignores dots in the local part and treats googlemail.com as gmail.com. Other providers
# (and Google Workspace domains, which cannot be told apart) keep dots significant, so kb folds
# dots for these two domains only.
DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_QUOTED_PAIR = re.compile(r"\\(.)")


class Unsendable(KBError):
    """kb cannot write this reply into an email (its address cannot be one); the message says why."""


def ascii_domain(domain: str) -> str | None:
    """The domain in ASCII (lower case, IDNA for non-ASCII labels); None when it has no ASCII form."""
    domain = domain.strip().rstrip(".")
    if domain.isascii():
        return domain.lower()
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


def _unquote(local: str) -> str:
    """A local part without its quotes ("a b" -> a b); others unchanged."""
    if len(local) > 1 and local.startswith('"') and local.endswith('"'):
        return _QUOTED_PAIR.sub(r"\1", local[1:-1])
    return local


def reply_address(display_name: object, address: object) -> Address:
    """The customer's address for a reply's To, display name included; Unsendable if it is not one."""
    addr = readable(address).strip()
    local, at, domain = addr.rpartition("@")
    problem = f"the reply address {addr!r} is not an address kb can write to"
    if not (at and local and domain) or not addr.isprintable() or "\ufffd" in addr:
        raise Unsendable(problem)  # empty, no domain, line breaks, controls or undecodable bytes
    domain = ascii_domain(domain) or domain  # no ASCII form: left for an SMTPUTF8 server
    try:  # the email package checks the syntax; non-ASCII letters stand in as "a" (RFC 6531 allows them)
        checked = Address(addr_spec=_NON_ASCII.sub("a", local) + "@" + _NON_ASCII.sub("a", domain))
    except (ValueError, IndexError, HeaderParseError) as exc:
        raise Unsendable(f"{problem} ({exc})") from None
    username = checked.username if local.isascii() else _unquote(local)
    return Address(display_name=header_text(display_name, MAX_NAME_CHARS), username=username, domain=domain)


def needs_smtputf8(address: str) -> bool:
    """True for an address that only an SMTPUTF8 server can carry (a non-ASCII local part or domain)."""
    return not address.isascii()


def sender_key(address: object) -> str:
    """One key per mailbox for the per-sender cap: case-folded, "+tag" dropped, ASCII domain, Gmail dots.

    victim+1@Example.com, Victim@EXAMPLE.com. and "victim+2"@example.com all give victim@example.com.
    """
    addr = readable(address).strip().casefold()
    local, at, domain = addr.rpartition("@")
    if not (at and local and domain):
        return addr[:KEY_CHARS]
    local = _unquote(local)
    local = local.split("+", 1)[0] or local  # "+tag" sub-addressing (RFC 5233); "+x@" alone stays
    domain = ascii_domain(domain) or domain.rstrip(".")
    if domain in DOTLESS_DOMAINS:
        local, domain = local.replace(".", ""), DOTLESS_DOMAINS[domain]
    return f"{local}@{domain}"[:KEY_CHARS]
