"""Bytes to text under a declared charset that may be missing, unknown or wrong, and text made safe to keep."""

from __future__ import annotations

import codecs
import re

# Labels mail software writes for one charset while meaning its superset, as browsers do
# (WHATWG Encoding): "iso-8859-1" mail routinely carries Windows curly quotes, "gb2312" mail
# carries GBK characters. The declared label itself is the second try.
SUPERSETS = {
    "iso-8859-1": "windows-1252", "iso8859-1": "windows-1252", "latin1": "windows-1252",
    "latin-1": "windows-1252", "l1": "windows-1252",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "euc-cn": "gb18030",
    "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "big5": "big5hkscs",
    "shift_jis": "cp932", "x-sjis": "cp932",
}
LAST_RESORT = "windows-1252"


def decode_bytes(data: bytes, declared: str | None, errors: list[str]) -> str:
    """Decode with the declared charset, then utf-8, then windows-1252 with replacement.

    Anything that went wrong is appended to errors as a sentence a person can read.
    """
    label = (declared or "").strip().strip('"').lower()
    tries = [SUPERSETS[label], label] if label in SUPERSETS else [label] if label else []
    problem = ""
    for name in tries:
        try:
            return data.decode(_mail_codec(name))
        except UnicodeDecodeError:
            problem = f"body is not valid {label[:40]}"
        except (LookupError, ValueError, TypeError):  # unknown, not a text codec (charset=base64), a NUL
            problem = f"unknown charset {label[:40]}"
    try:
        text = data.decode("utf-8")
        used = "utf-8"
    except UnicodeDecodeError:
        text = data.decode(LAST_RESORT, errors="replace")
        used = LAST_RESORT
    if problem:
        errors.append(f"{problem}: decoded as {used}")
    elif used != "utf-8":
        errors.append(f"no charset declared and not utf-8: decoded as {used}")
    return text


def _mail_codec(label: str) -> str:
    """The codec for a charset label; LookupError for none, or for Python's escape codecs.

    "unicode_escape" and friends are text codecs to Python but no charset a mailer writes; they
    turn "\\ud800" in a body into a lone surrogate.
    """
    name = codecs.lookup(label).name
    if "escape" in name:
        raise LookupError(label)
    return name


# --- header bytes and control characters ---------------------------------------------------------

def _legacy_byte(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: a byte that is not UTF-8 is read as windows-1252, else latin-1."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    chunk = exc.object[exc.start:exc.end]
    return "".join(_one_legacy_byte(byte) for byte in chunk), exc.end


def _one_legacy_byte(byte: int) -> str:
    """One byte as windows-1252, or as latin-1 where windows-1252 leaves it undefined (0x81...)."""
    try:
        return bytes([byte]).decode(LAST_RESORT)
    except UnicodeDecodeError:
        return chr(byte)


codecs.register_error("kb-legacy-8bit", _legacy_byte)

# NUL and the other C0 controls (and DEL) have no place in text a person reads, and PostgreSQL
# refuses NUL; a lone surrogate cannot be stored as UTF-8 at all.
_CONTROLS_IN_LINE = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_CONTROLS_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATES = re.compile("[\ud800-\udfff]")
_LINE_BREAKS = re.compile("[\t\n\r]+")


def header_str(raw: str) -> str:
    """A raw header value as text: 8-bit bytes (surrogate escapes) read as UTF-8, else windows-1252.

    The stdlib parser keeps a header's 8-bit bytes as surrogate escapes; an internationalised
    address or a raw UTF-8 display name comes back as what the sender meant, a stray byte as a
    windows-1252 (or latin-1) character, and never as a surrogate.
    """
    if not _SURROGATES.search(raw):
        return raw
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "kb-legacy-8bit")


def clean_line(text: str) -> str:
    """One line of header text: tabs and line breaks become spaces, other controls go, no surrogates."""
    text = _LINE_BREAKS.sub(" ", text)
    return _SURROGATES.sub("\ufffd", _CONTROLS_IN_LINE.sub("", text))


def clean_text(text: str) -> str:
    """Body text: keeps tabs and newlines (a lone CR is a newline), drops other controls and surrogates."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _SURROGATES.sub("\ufffd", _CONTROLS_IN_TEXT.sub("", text))
