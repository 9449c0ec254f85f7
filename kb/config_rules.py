"""What each setting accepts, as data: a rule checks a value and says in words what is allowed.

A ``Rule`` is three things: ``allowed`` (the words the README table and error messages use),
``accepts(value, values)`` (the check, given the setting's cast value and every other setting for
rules that depend on another one) and ``bad`` (raw values, as typed in an environment variable,
that the rule refuses: tests walk every setting with them). Add a setting with one of the rule
makers below, or ``Rule(...)`` for a new kind of check.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

# The languages the portal speaks (analysis, names and translations exist for each).
KNOWN_LANGUAGES = ("en", "zh", "nb")
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_ADDRESS = r"\s<>()\[\],;:\"\\@"
ADDRESS = re.compile(rf"[^{_NOT_ADDRESS}]+@[^{_NOT_ADDRESS}.]+(?:\.[^{_NOT_ADDRESS}.]+)*")
DOMAIN = re.compile(rf"@[^{_NOT_ADDRESS}.]+(?:\.[^{_NOT_ADDRESS}.]+)*")
HOST = re.compile(r"[\w.-]+|\[?[0-9A-Fa-f:.]+\]?")
# RFC 3501 atom: no specials, spaces or controls; a leading backslash would make it a system flag.
IMAP_ATOM = re.compile(r"[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+")


@dataclass(frozen=True)
class Rule:
    """The values a setting accepts: ``accepts`` checks one, ``allowed`` says which in words."""

    allowed: str
    accepts: Callable[[Any, Mapping[str, Any]], bool]
    bad: tuple[str, ...]


def number(low: float, high: float, *, whole: bool = True, unit: str = "") -> Rule:
    """A number from ``low`` to ``high`` (both included)."""
    kind = "a whole number" if whole else "a number"
    unit = f" {unit}" if unit else ""
    bad = (str(low - 1), str(high + 1), "abc") + (("1.5",) if whole else ("nan",))
    return Rule(f"{kind} from {_num(low)} to {_num(high)}{unit}",
                lambda v, _all: isinstance(v, (int, float)) and not math.isnan(v) and low <= v <= high, bad)


def optional(rule: Rule) -> Rule:
    """Empty (unset), or what ``rule`` accepts."""
    return Rule(f"empty, or {rule.allowed}", lambda v, all_: v is None or rule.accepts(v, all_), rule.bad)


def port() -> Rule:
    """A TCP port number."""
    return number(1, 65535)


def seconds(low: float, high: float) -> Rule:
    """A positive duration in seconds."""
    return number(low, high, whole=False, unit="seconds")


def flag() -> Rule:
    """A boolean (the cast has already refused anything else)."""
    return Rule("true or false", lambda v, _all: isinstance(v, bool), ("maybe",))


def choice(*options: str) -> Rule:
    """One of a few words."""
    return Rule("one of " + ", ".join(options), lambda v, _all: v in options, ("bogus",))


def text(*, required: bool = False) -> Rule:
    """Free text on one line (no control characters); ``required`` refuses empty."""
    allowed = "any text on one line" + ("" if required else ", or empty")
    return Rule(allowed, lambda v, _all: not CONTROL.search(v or "") and (bool(v) or not required),
                ("two\nlines",) + (("",) if required else ()))


def folder() -> Rule:
    """A file or folder path (relative to the working directory or absolute)."""
    return Rule("a path", lambda v, _all: bool(v) and not CONTROL.search(v), ("",))


def optional_path() -> Rule:
    """A file path, or empty for none."""
    return Rule("a path, or empty", lambda v, _all: not CONTROL.search(v or ""), ("two\nlines",))


def secret(min_length: int) -> Rule:
    """A secret of at least ``min_length`` characters, or unset."""
    return Rule(f"a key of at least {min_length} characters (or leave it unset to have one generated)",
                lambda v, _all: v is None or (len(v) >= min_length and not CONTROL.search(v)), ("too-short",))


def http_url() -> Rule:
    """An absolute http or https address with a host."""
    return Rule("an http:// or https:// address such as https://help.example.com", _is_http_url,
                ("notaurl", "ftp://help.example.com", "https://", "https://help example.com"))


def database_url() -> Rule:
    """A URL SQLAlchemy can parse (whether its driver is installed is checked when connecting)."""
    return Rule("an SQLAlchemy URL such as sqlite:///path or postgresql+psycopg://user:pw@host/db",
                _is_database_url, ("notaurl",))


def languages() -> Rule:
    """A comma-separated list of language codes, each once; kb.i18n then refuses one with no catalog."""
    def accepts(value, _all) -> bool:
        """Well-formed codes only, each once."""
        codes = [c.strip() for c in str(value).split(",")]
        return bool(value) and all(LANGUAGE_CODE.fullmatch(c) for c in codes) and len(set(codes)) == len(codes)
    return Rule("a comma-separated list of language codes with a translation catalog (kb ships "
                + ", ".join(KNOWN_LANGUAGES) + ")", accepts, ("", "en,,zh", "en,en", "en,EN_us!"))


def language_in(setting: str) -> Rule:
    """One of the language codes listed in another setting."""
    def accepts(value, values) -> bool:
        """Listed in the other setting."""
        return value in [c.strip() for c in str(values.get(setting, "")).split(",")]
    return Rule(f"one of the codes in KB_{setting}", accepts, ("fr",))


def address(*, required: bool = True) -> Rule:
    """An email address (name@domain), or empty when not ``required``."""
    allowed = "an email address such as support@example.com" + ("" if required else ", or empty")
    return Rule(allowed, lambda v, _all: ADDRESS.fullmatch(v or "") is not None or (not v and not required),
                ("not-an-address", "a@b@c", "Support <help@example.com>") + (("",) if required else ()))


def addresses(*, domains: bool = False) -> Rule:
    """Comma-separated email addresses (or @domains when ``domains``), or empty."""
    what = "email addresses or @domains" if domains else "email addresses"
    def accepts(value, _all) -> bool:
        """Every comma-separated item is an address (or a domain)."""
        items = [i.strip() for i in (value or "").split(",") if i.strip()]
        return all(ADDRESS.fullmatch(i) or (domains and DOMAIN.fullmatch(i)) for i in items)
    return Rule(f"{what} separated by commas, or empty", accepts, ("not an address", "a@b, nobody"))


def optional_http_url() -> Rule:
    """An http(s) URL, or empty."""
    return Rule("an http:// or https:// URL, or empty", lambda v, _all: not v or _is_http_url(v, _all),
                ("notaurl", "ftp://x.example"))


def word_list() -> Rule:
    """Comma-separated words of letters, digits, - and _ (at least one)."""
    pattern = re.compile(r"[a-z0-9_-]{1,64}")
    return Rule("comma-separated words of a-z, 0-9, - and _",
                lambda v, _all: bool(v.strip()) and all(pattern.fullmatch(w.strip()) for w in v.split(",")),
                ("", "a b,c", "x,,y"))


def business_hours() -> Rule:
    """Ranges of days and times such as "mon-fri 09:00-17:00, sat 10:00-14:00", or empty (always)."""
    def accepts(value, _all) -> bool:
        """kb.followup.hours can read it."""
        from kb.followup.hours import parse  # the one parser; imported late to keep this module light

        parse(value)  # ValueError: refused
        return not CONTROL.search(value or "")
    return Rule("comma-separated ranges of days and times such as mon-fri 09:00-17:00, sat 10:00-14:00 "
                "(days mon ... sun, times 00:00 to 24:00), or empty for always", accepts,
                ("weekdays", "mon-fri 9-17", "mon-fri 17:00-09:00", "mon-xyz 09:00-17:00", "mon 09:00-25:00",
                 "mon 09:00-17:00,,sat 10:00-12:00"))


def time_zone() -> Rule:
    """An IANA time zone name such as Europe/Oslo."""
    def accepts(value, _all) -> bool:
        """zoneinfo knows it."""
        from kb.followup.hours import valid_zone

        return valid_zone(value)
    return Rule("an IANA time zone name such as UTC, Europe/Oslo or America/New_York", accepts,
                ("", "Mars/Olympus_Mons", "+02:00", "../etc/passwd"))


def host() -> Rule:
    """A host name or IP address without scheme or port, or empty."""
    return Rule("a host name such as mail.example.com, or empty",
                lambda v, _all: not v or HOST.fullmatch(v) is not None, ("imap://mail.example.com", "mail example"))


def imap_keyword() -> Rule:
    """An IMAP keyword (an atom: letters, digits, - and the like, no spaces), or empty."""
    return Rule("an IMAP keyword (no spaces, brackets, quotes, % or *), or empty",
                lambda v, _all: not v or IMAP_ATOM.fullmatch(v) is not None, ("needs person", "\\Seen"))


def _is_http_url(value, _all) -> bool:
    """Whether ``value`` is http(s)://host[:port][/path] with nothing odd in it."""
    value = str(value or "")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query
            and not parts.fragment and not re.search(r"\s", value) and HOST.fullmatch(parts.hostname) is not None)


def _is_database_url(value, _all) -> bool:
    """Whether SQLAlchemy can parse ``value`` as a database URL."""
    import sqlalchemy as sa

    try:
        sa.make_url(str(value))
    except (sa.exc.ArgumentError, ValueError):
        return False
    return not CONTROL.search(str(value))


def _num(value: float) -> str:
    """A number as people write it: 1, 0.5, 65535, 1,000,000."""
    if isinstance(value, float):
        return f"{value:g}"
    return f"{value:,}" if value >= 100_000 else str(value)
