"""Customer input made safe for the emails kb writes: any str in, text a message can carry out.

The parser hands header text that arrived as raw 8-bit bytes back as surrogate escapes
("J\\udcc3\\udcbcrgen"), which no encoder accepts; customers and robots also send control
characters, line breaks and words longer than a header line. Everything kb copies from an email
into a reply (display name, subject, Message-IDs, the quoted question) passes through here first.
"""

from __future__ import annotations

import re
from email.policy import default as default_policy

# Header lines may hold 998 characters (RFC 5322 2.1.1); kb's Message-ID columns hold 500.
MAX_ID_CHARS = 250
MAX_REFERENCES = 10  # RFC 5322 3.6.4 lets a long References chain be trimmed; keep the first and the latest
# Of a long text only this many times the characters kept are read: enough for any encoding or
# blank lines, and a megabyte of text costs no more than a line of it.
READ_FACTOR = 20
MESSAGE_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+>")  # no <, > or space inside
_ESCAPED_BYTES = re.compile("[\udc80-\udcff]+")  # what surrogateescape makes of undecodable bytes
_LONE_SURROGATES = re.compile("[\ud800-\udc7f\udd00-\udfff]")  # from nowhere valid: replaced
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")  # keeps \t and \n
_HEADER_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def _decode_escaped(found: re.Match) -> str:
    """The bytes behind a run of surrogate escapes: UTF-8 if they are, else Windows-1252."""
    data = found.group().encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # Latin-1 mail programs; cp1252 is its superset, as browsers read it
        return data.decode("windows-1252", "replace")


def readable(value: object) -> str:
    """``value`` as text any encoder accepts: escaped bytes decoded, lone surrogates replaced."""
    text = "" if value is None else str(value)
    if text.isascii():
        return text
    text = _ESCAPED_BYTES.sub(_decode_escaped, text)
    return _LONE_SURROGATES.sub("\ufffd", text)


def body_text(value: object) -> str:
    """Readable text for a message body: line breaks kept, other control characters dropped."""
    text = readable(value).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", text)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a word when there is one, with "…"."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + "…"


def _decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words in ``text``, as the email package does when it writes a header."""
    try:
        return readable(str(default_policy.header_factory("x-kb", text)))
    except Exception:  # the package's parser on odd input: keep the text, "=?" is broken up below
        return text


def header_text(value: object, limit: int) -> str:
    """One line of readable text for a header: no line breaks or controls, at most ``limit`` characters.

    Python's email package decodes "=?charset?q?...?=" words in any header text it writes, so an
    encoded line break would become a real one (a header injection). Such words are decoded here,
    cleaned like the rest, and any "=?" left is broken up so nothing is decoded again.
    """
    text = _HEADER_BREAKS.sub(" ", readable(value)[:limit * READ_FACTOR])
    if "=?" in text:
        text = _HEADER_BREAKS.sub(" ", _decode_words(text)).replace("=?", "= ?")
    return shorten(" ".join(text.split()), limit)


def message_ids(values: object) -> list[str]:
    """The well-formed ``<id@host>`` Message-IDs in ``values`` (a string or strings), each once, in order."""
    if isinstance(values, str) or values is None:
        values = [values or ""]
    found: list[str] = []
    for value in values:
        for candidate in MESSAGE_ID.findall(readable(value)):
            # "=?" would be decoded as an RFC 2047 word when the header is written: never a real id
            if len(candidate) <= MAX_ID_CHARS and "=?" not in candidate and candidate not in found:
                found.append(candidate)
    return found


def thread_headers(parent: object, references: object) -> tuple[str, str]:
    """(In-Reply-To, References) for a reply to ``parent``; empty strings when it has no usable id."""
    parents = message_ids(parent)
    if not parents:
        return "", ""
    chain = [ref for ref in message_ids(references) if ref != parents[0]]
    if len(chain) >= MAX_REFERENCES:
        chain = chain[:1] + chain[-(MAX_REFERENCES - 2):]
    return parents[0], " ".join(chain + parents[:1])


def quote_lines(text: object, max_lines: int, max_chars: int) -> list[str]:
    """The first non-empty lines of ``text``: at most ``max_lines`` and ``max_chars``, "…" where cut."""
    text = body_text(readable(text)[:max_chars * READ_FACTOR])
    lines = [line for line in (" ".join(raw.split()) for raw in text.split("\n")) if line]
    kept: list[str] = []
    room = max_chars
    for line in lines[:max_lines]:
        if room < 2:
            break
        kept.append(shorten(line, room))
        room -= len(kept[-1])
    if kept and sum(map(len, kept)) < sum(map(len, lines)) and not kept[-1].endswith("…"):
        kept[-1] += " …"
    return kept
