"""An email's header blocks and MIME parts, read with bounded work whatever the sender wrote.

The standard library's parser reads a whole message tree at once: 20,000 nested multiparts took
58 s (every line is checked against every open boundary), 20,000 sibling parts 30 s (each part's
Content-Type goes through the header parser several times), and a deep tree ends in
RecursionError. Here the stdlib only splits header blocks into fields (a bounded slice each); the
parts are found by a linear search for their boundary lines, at most MAX_PARTS parts and
MAX_DEPTH levels, and only the parts kb reads are decoded. Every cut is written to ``notes``.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from urllib.parse import unquote

from kb.autoreply.charsets import header_str

# The top-level header block: real ones (Received chains, DKIM, ARC) stay well under 64 KB.
MAX_HEAD_BYTES = 128_000
# A body part's header block: a Content-Type, a Content-Disposition, a few more.
MAX_PART_HEAD_BYTES = 16_000
MAX_HEADER_FIELDS = 500
MAX_PARTS = 100
MAX_DEPTH = 8
MAX_BOUNDARY_CHARS = 200  # RFC 2046 allows 70
# Content-Type and Content-Disposition values; RFC 2231 continuations of a long file name fit.
MAX_MIME_HEADER_CHARS = 4_000
# The transfer-encoded bytes of the one text part kb reads: ample for a 1,000,000-character body.
MAX_TEXT_PART_BYTES = 6_000_000

MAX_CONTINUATIONS = 100  # RFC 2231 pieces of one parameter

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_COMMENT = re.compile(r"\([^()]*\)")
_MIME_TYPE = re.compile(r"\s*([^;]*)")
_MIME_PARAM = re.compile(r""";\s*([^\s=;"]+?)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)""")
_EXTENDED_NAME = re.compile(r"([^*]+)\*(?:(\d{1,3})(\*)?)?")


@dataclass
class Head:
    """One header block: its fields as raw text (8-bit bytes as the sender meant them), in order."""

    fields: list[tuple[str, str]] = field(default_factory=list)

    def get_all(self, name: str) -> list[str]:
        """The raw values of every field called ``name`` (any case)."""
        name = name.lower()
        return [value for key, value in self.fields if key.lower() == name]

    def first(self, name: str) -> str:
        """The raw value of the first field called ``name``, or ""."""
        values = self.get_all(name)
        return values[0] if values else ""


@dataclass
class Part:
    """One MIME part: its header block, its (lower-case) type, and where its body lies in the data."""

    head: Head
    content_type: str
    params: dict[str, str]
    start: int
    end: int
    depth: int

    @property
    def is_attachment(self) -> bool:
        """A file: disposition attachment, or a part that carries a file name."""
        disposition, params = mime_value(self.head.first("content-disposition"))
        return disposition == "attachment" or bool(params.get("filename") or self.params.get("name"))


def read_head(data: bytes, start: int, end: int, cap: int, notes: list[str]) -> tuple[Head, int]:
    """The header block that starts at ``start`` (at most ``cap`` bytes read) and where its body begins."""
    if data.startswith((b"\r\n", b"\n"), start, end):  # an empty first line: no header fields
        return Head(), _next_line(data, start, end)
    blank = _BLANK_LINE.search(data, start, end)
    block_end = blank.end() if blank else end
    if block_end - start > cap:
        notes.append(f"a header block is over {cap} bytes: the rest of it was not read")
        # A field cut in the middle keeps its start; a cut line that is no field is ignored.
        message = _split_fields(data[start:start + cap])
        body_start = block_end
    else:
        window = data[start:block_end]
        message = _split_fields(window)
        rest = message.get_payload()  # a line that is no header field starts the body early
        body_start = start + len(window) - len(rest if isinstance(rest, str) else "")
    fields = list(message.raw_items())
    if len(fields) > MAX_HEADER_FIELDS:
        notes.append(f"{len(fields)} header fields: only the first {MAX_HEADER_FIELDS} were read")
        del fields[MAX_HEADER_FIELDS:]
    return Head([(name, header_str(str(value))) for name, value in fields]), body_start


def _split_fields(window: bytes):
    """The stdlib's split of a header block into fields, nothing more."""
    # compat32 only splits the fields: policy.default would run its (slow) structured parser on
    # the whole Content-Type when the parser closes, before kb could bound the value.
    return BytesParser(policy=policy.compat32).parsebytes(window, headersonly=True)


def mime_value(raw: str) -> tuple[str, dict[str, str]]:
    """(lower-case value, parameters) of a Content-Type or Content-Disposition, in one linear pass.

    The stdlib's structured parser costs up to 25 ms per 2,000 characters of a hostile value, and
    a message has up to MAX_PARTS parts; what kb needs (the type, boundary, charset, whether a
    file name is given) is read here: quoted values, comments and RFC 2231 continuations and
    charsets included.
    """
    value = _COMMENT.sub(" ", re.sub(r"[\r\n]", "", raw)[:MAX_MIME_HEADER_CHARS])
    main = _MIME_TYPE.match(value)
    params: dict[str, str] = {}
    pieces: dict[str, list[tuple[int, str, bool]]] = {}
    for found in _MIME_PARAM.finditer(value, main.end()):
        name, text = found.group(1).lower(), found.group(2).strip()
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        extended = _EXTENDED_NAME.fullmatch(name)
        if extended:  # RFC 2231: name*=utf-8''%41, name*0=..., name*1*=...
            pieces.setdefault(extended.group(1), []).append(
                (int(extended.group(2) or 0), text, bool(extended.group(3)) or extended.group(2) is None))
        else:
            params.setdefault(name, text)
    for name, parts in pieces.items():
        params.setdefault(name, _join_rfc2231(sorted(parts)[:MAX_CONTINUATIONS]))
    return "".join(main.group(1).split()).lower(), params


def _join_rfc2231(parts: list[tuple[int, str, bool]]) -> str:
    """The value of RFC 2231 pieces: charset'language' prefix dropped, %XX decoded."""
    charset = "utf-8"
    texts = []
    for index, (_, text, encoded) in enumerate(parts):
        if encoded:
            if index == 0 and text.count("'") >= 2:
                label, _, text = text.split("'", 2)
                charset = label or charset
            try:
                text = unquote(text, encoding=charset, errors="replace")
            except LookupError:  # an unknown charset: the bytes as UTF-8, replaced where invalid
                text = unquote(text, errors="replace")
        texts.append(text)
    return "".join(texts)


def content_type(head: Head, default: str = "text/plain") -> tuple[str, dict[str, str]]:
    """(type, parameters) of a header block: ``default`` when absent, text/plain when unreadable."""
    raw = head.first("content-type")
    if not raw.strip():
        return default, {}
    ctype, params = mime_value(raw)
    return (ctype if re.fullmatch(r"[^\s/]+/[^\s/]+", ctype) else "text/plain"), params


def walk(data: bytes, top: Head, body_start: int, notes: list[str]) -> Iterator[Part]:
    """The message and its parts, depth first; never into attached messages (a bounce's original)."""
    ctype, params = content_type(top)
    stack = [Part(top, ctype, params, body_start, len(data), 0)]
    budget = MAX_PARTS - 1  # parts still to be read, the message itself being the first
    while stack:
        part = stack.pop()
        yield part
        if part.content_type.startswith("multipart/"):
            children = list(_children(data, part, budget + 1, notes))
            if len(children) > budget:
                notes.append(f"more than {MAX_PARTS} MIME parts: only the first {MAX_PARTS} were read")
                del children[budget:]
            budget -= len(children)
            stack.extend(reversed(children))


def _children(data: bytes, parent: Part, most: int, notes: list[str]) -> Iterator[Part]:
    """Up to ``most`` parts of a multipart part, found by a linear search for its boundary lines."""
    boundary = parent.params.get("boundary", "")
    if not boundary or len(boundary) > MAX_BOUNDARY_CHARS or most <= 0:
        return
    if parent.depth >= MAX_DEPTH:
        notes.append(f"MIME parts nested more than {MAX_DEPTH} deep were not read")
        return
    default = "message/rfc822" if parent.content_type == "multipart/digest" else "text/plain"
    delimiter = re.compile(rb"^--" + re.escape(boundary.encode("utf-8", "surrogateescape"))
                           + rb"(--)?[ \t]*\r?$", re.MULTILINE)
    previous = None
    count = 0
    for found in delimiter.finditer(data, parent.start, parent.end):
        if previous is not None:
            yield _part(data, previous, _line_start(data, found.start(), previous), parent, default, notes)
            count += 1
            if count >= most:
                return
        if found.group(1):  # the closing delimiter: what follows is the epilogue
            return
        previous = _next_line(data, found.end(), parent.end)
    if previous is not None and previous < parent.end:  # no closing delimiter: the part runs to the end
        yield _part(data, previous, parent.end, parent, default, notes)


def _part(data: bytes, start: int, end: int, parent: Part, default: str, notes: list[str]) -> Part:
    """One body part between two delimiter lines."""
    head, body_start = read_head(data, start, end, MAX_PART_HEAD_BYTES, notes)
    ctype, params = content_type(head, default)
    return Part(head, ctype, params, min(body_start, end), end, parent.depth + 1)


def _next_line(data: bytes, pos: int, end: int) -> int:
    """Where the line after the one ending at ``pos`` starts."""
    if data.startswith(b"\r\n", pos):
        return min(pos + 2, end)
    return min(pos + 1, end) if data[pos:pos + 1] in (b"\n", b"\r") else pos


def _line_start(data: bytes, pos: int, floor: int) -> int:
    """``pos`` without the line break before it, which belongs to the delimiter (RFC 2046)."""
    if pos - 2 >= floor and data[pos - 2:pos] == b"\r\n":
        return pos - 2
    return pos - 1 if pos - 1 >= floor and data[pos - 1:pos] == b"\n" else pos


def body_bytes(data: bytes, part: Part, notes: list[str]) -> bytes:
    """A part's body with its transfer encoding undone (base64 and quoted-printable, leniently)."""
    raw = data[part.start:min(part.end, part.start + MAX_TEXT_PART_BYTES)]
    if part.end - part.start > MAX_TEXT_PART_BYTES:
        notes.append(f"a text part of {part.end - part.start} bytes: only its first "
                     f"{MAX_TEXT_PART_BYTES} were read")
    cte = "".join(part.head.first("content-transfer-encoding").split()).lower()[:40]
    if cte == "base64":
        return _base64(raw)
    if cte == "quoted-printable":
        return binascii.a2b_qp(raw)
    return raw


def _base64(raw: bytes) -> bytes:
    """Decode base64 that may carry junk, missing padding or a cut-off last group."""
    try:
        return binascii.a2b_base64(raw)  # ignores line breaks and junk, stops at the padding
    except binascii.Error:  # no padding, or a last group cut short (a part cut at the cap ends anywhere)
        letters = re.sub(rb"[^A-Za-z0-9+/]", b"", raw.partition(b"=")[0])
        whole = len(letters) - len(letters) % 4
        tail = letters[whole:]
        padded = tail + b"=" * (4 - len(tail)) if len(tail) >= 2 else b""  # a lone letter holds no byte
        return binascii.a2b_base64(letters[:whole] + padded)
