"""A seeded generator of hostile emails for benchmarks/fuzz_mail.py: one seed, always the same email.

generate(seed, questions) starts from a plausible customer email (plain, HTML, multipart, or a
delivery report; sometimes pure random bytes) about one of the starter articles, then applies up
to three mutations: random bytes and NULs, truncation, header floods and folds, tens of
thousands of encoded words or addresses, hostile Reply-To forms, deep nesting, many or huge
parts, long base64 lines, HTML bombs, wrong and unknown charsets, giant Content-Type parameters,
lines made to slow a quote cleaner, surrogate bytes, odd line endings. The labels it returns say
what was done, so the slowest seeds can be read back.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable

Mutation = Callable[[random.Random, bytes], bytes]

NAMES = ["Kari Nordmann", "J\u00fcrgen M\u00fcller", "\u5f20\u4e09", "O'Neil, Pat", "\u00c5se \u00d8deg\u00e5rd",
         "=?utf-8?q?Ola_Nordmann?=", "\"Quoted, Name\"", ""]
ADDRESSES = ["kari@customer.example", "pat+shop@mail.example", "\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a",
             "o.neil@sub.customer.example", "MAILER-DAEMON@mx.example", "noreply@shop.example",
             "support@kb.example", "Support+x@KB.example", "bounce.fitness@gym.example"]
HOSTILE_REPLY_TO = [b'"a@x\r\nBcc: y" <eve@evil.example>', b"a@x.example, eve@evil.example",
                    b"=?utf-8?q?eve@evil.example?=", b"friends: a@x.example;", b"<<eve@evil.example>>",
                    b"eve@evil.example\x00x", b"(" * 3000 + b"a@x.example", b"\xff\xfe@\xff.example",
                    b"undisclosed-recipients:;", b"a@b@c.example", b'"a b"@[1.2.3.4]']
SUBJECTS = ["Re: {q}", "{q}", "Fwd: {q}", "Delivery failure: {q}", "Automatic reply: {q}",
            "Undelivered Mail Returned to Sender", "failure notice", "Kan ikke leveres hjem?",
            "Automatisch antwoord: {q}", "=?utf-8?b?5Zue5aSN77ya?= {q}", "SV: AW: Re[3]: {q}"]
CHARSETS = ["utf-8", "iso-8859-1", "windows-1252", "gb2312", "shift_jis", "utf-7", "utf-16", "x-unknown",
            "unicode_escape", "base64", "", "utf-8\x00", "a" * 500, "\"utf-8\"", "us-ascii"]
HTML_BOMBS = [b"<a ", b"<!--", b"<blockquote>x", b"<div><p>", b"&amp;&#0;&#xD800;", b"<a href=\"x>",
              b"<script>", b"</", b"<!DOCTYPE", b"<table><tr><td>"]
CLEANER_BOMBS = [b"---" + b" " * 590 + b"abc\n", b"On 1 " + b"a " * 97 + b":\n", b"On 3 " + b"wrote " * 95 + b"\n",
                 b"Thanks" + b" " * 500 + b"x y z\n", b"> " * 300 + b"\n", b"From: a\nSent: b\n", b"-- \n", b"\n"]
AUTO_HEADERS = [b"Precedence: auto_reply", b"Auto-Submitted: auto-replied", b"List-Help: <mailto:h@l.example>",
                b"Return-Path: < >", b"X-Loop: support@kb.example", b"X-Auto-Response-Suppress: All",
                b"Mailing-List: list x@l.example", b"Auto-Submitted: no"]


def _question(rng: random.Random, questions: list[str]) -> str:
    """A customer's question, from an article title or random words."""
    if questions and rng.random() < 0.85:
        return rng.choice(questions)
    return " ".join(rng.choice(["refund", "parcel", "password", "invoice", "\u9000\u6b3e", "bestilling"])
                    for _ in range(rng.randint(1, 12)))


def _head(rng: random.Random, question: str) -> list[bytes]:
    """Header lines of a customer email, sometimes with raw 8-bit display names and addresses."""
    name, address = rng.choice(NAMES), rng.choice(ADDRESSES)
    sender = f"{name} <{address}>" if name else address
    subject = rng.choice(SUBJECTS).format(q=question)
    lines = [b"From: " + sender.encode(), b"To: support@kb.example", b"Subject: " + subject.encode(),
             b"Message-ID: <%d.fuzz@customer.example>" % rng.randrange(10**9), b"MIME-Version: 1.0"]
    if rng.random() < 0.3:
        lines.append(b"Reply-To: " + rng.choice(ADDRESSES).encode())
    if rng.random() < 0.3:
        lines.append(b"Date: " + rng.choice([b"Mon, 3 Mar 2025 10:12:00 +0100", b"yesterday", b"Mon, 99 Foo 99999"]))
    if rng.random() < 0.2:
        lines.append(b"In-Reply-To: <%d@kb.example>" % rng.randrange(100))
    return lines


def _text_part(rng: random.Random, text: str, html: bool = False) -> tuple[list[bytes], bytes]:
    """(header lines, body) of a text part in a random charset and transfer encoding."""
    charset = rng.choice(CHARSETS)
    try:
        data = text.encode(charset if charset in ("utf-8", "utf-16", "gb2312", "shift_jis") else "utf-8", "replace")
    except LookupError:
        data = text.encode()
    encoding = rng.choice([b"8bit", b"base64", b"quoted-printable", b"7bit"])
    if encoding == b"base64":
        data = base64.encodebytes(data) if rng.random() < 0.8 else base64.b64encode(data)
    elif encoding == b"quoted-printable":
        import quopri
        data = quopri.encodestring(data)
    subtype = b"html" if html else b"plain"
    return [b"Content-Type: text/" + subtype + b"; charset=\"" + charset.encode("utf-8", "replace") + b"\"",
            b"Content-Transfer-Encoding: " + encoding], data


def _customer(rng: random.Random, question: str) -> bytes:
    """A plain, HTML or multipart customer email."""
    head = _head(rng, question)
    body = f"Hello,\n\n{question}\n\nOn Mon, 3 Mar 2025 at 10:12, Support <support@kb.example> wrote:\n> Hi\n\nThanks, Kari"
    shape = rng.choice(["plain", "html", "alternative", "mixed"])
    if shape in ("plain", "html"):
        part_head, data = _text_part(rng, body if shape == "plain" else f"<p>{body}</p>", shape == "html")
        return b"\r\n".join(head + part_head) + b"\r\n\r\n" + data
    plain_head, plain = _text_part(rng, body)
    html_head, html = _text_part(rng, f"<div>{body}</div>", True)
    kind = b"alternative" if shape == "alternative" else b"mixed"
    parts = [b"\r\n".join(plain_head) + b"\r\n\r\n" + plain, b"\r\n".join(html_head) + b"\r\n\r\n" + html]
    if shape == "mixed":
        parts.append(b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n"
                     b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(rng.randbytes(2000)))
    return _multipart(head, kind, b"b1", parts)


def _multipart(head: list[bytes], kind: bytes, boundary: bytes, parts: list[bytes]) -> bytes:
    """A multipart message of the given parts."""
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts) + b"--" + boundary + b"--\r\n"
    return (b"\r\n".join(head + [b"Content-Type: multipart/" + kind + b"; boundary=\"" + boundary + b"\""])
            + b"\r\n\r\n" + body)


def _report(rng: random.Random, question: str) -> bytes:
    """A delivery report in one of its structural forms."""
    head = [b"From: Mail Delivery System <MAILER-DAEMON@mx.example>", b"To: support@kb.example",
            b"Subject: " + rng.choice([b"Undelivered Mail Returned to Sender", question.encode()]),
            b"Return-Path: <>"][: rng.randint(2, 4)]
    parts = [b"Content-Type: text/plain\r\n\r\nThis is the mail system.",
             b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n"
             b"X-Postfix-Queue-ID: %X" % rng.randrange(16**12),
             b"Content-Type: message/rfc822\r\n\r\nFrom: support@kb.example\r\nSubject: x\r\n\r\nhi"]
    return _multipart(head, rng.choice([b"report; report-type=delivery-status", b"mixed"]), b"r", parts)


def _random_bytes(rng: random.Random, question: str) -> bytes:
    """Noise, sometimes after a header line."""
    noise = rng.randbytes(rng.randint(1, 5000))
    return (_writer(rng) + b"\r\n" + noise) if rng.random() < 0.5 else noise


def _cut_short(rng: random.Random, question: str) -> bytes:
    """A customer email cut inside its first 400 bytes."""
    return _customer(rng, question)[: rng.randint(1, 400)]


def _odd_line_endings(rng: random.Random, question: str) -> bytes:
    """A customer email with LF, CR or LF CR line endings."""
    return _customer(rng, question).replace(b"\r\n", rng.choice([b"\n", b"\r", b"\n\r"]))


BASES = [(_customer, 70), (_report, 10), (_random_bytes, 5), (_cut_short, 5), (_odd_line_endings, 10)]


def _writer(rng: random.Random) -> bytes:
    """A From line of its own, for emails built from scratch (without one, an email with no
    Message-ID made by another seed the same way would be the same email to the worker)."""
    return b"From: a%d@x.example" % rng.randrange(10**12)


def _insert_header(raw: bytes, line: bytes) -> bytes:
    """Put a header line first."""
    return line + b"\r\n" + raw


def _flip(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 50)):
        if data:
            data[rng.randrange(len(data))] = rng.choice([0, 0xFF, 13, 10, 0x1B, rng.randrange(256)])
    return bytes(data)


def _nul_and_surrogates(rng: random.Random, raw: bytes) -> bytes:
    cut = rng.randrange(len(raw) + 1)
    return raw[:cut] + rng.choice([b"\x00", b"\xed\xa0\x80", b"\x00" * 100, b"\xc3", b"\x7f\x1b"]) + raw[cut:]


def _truncate(rng: random.Random, raw: bytes) -> bytes:
    return raw[: rng.randrange(len(raw) + 1)]


def _header_flood(rng: random.Random, raw: bytes) -> bytes:
    return b"X-Flood: v\r\n" * rng.choice([1000, 50_000, 300_000]) + raw


def _fold_flood(rng: random.Random, raw: bytes) -> bytes:
    name = rng.choice([b"Subject", b"X-Long", b"References", b"To", b"Content-Type"])
    return name + b": a" + b"\r\n b" * rng.choice([1000, 100_000, 250_000]) + b"\r\n" + raw


def _encoded_words(rng: random.Random, raw: bytes) -> bytes:
    word = rng.choice([b"=?utf-8?q?ab?=", b"=?utf-8?b?7aCA?=", b"=?x-bogus?q?=FF?=", b"=?utf-8?q?=00=0A?=",
                       b"=?utf-7?q?+2AA-?="])
    return b"Subject: " + b" ".join([word] * rng.choice([10, 5000, 60_000])) + b"\r\n" + raw


def _address_flood(rng: random.Random, raw: bytes) -> bytes:
    count = rng.choice([100, 20_000, 60_000])
    return rng.choice([b"To: ", b"Cc: ", b"From: "]) + b", ".join(b"u%d@x.example" % i for i in range(count)) + b"\r\n" + raw


def _hostile_reply_to(rng: random.Random, raw: bytes) -> bytes:
    return _insert_header(raw, b"Reply-To: " + rng.choice(HOSTILE_REPLY_TO))


def _nest(rng: random.Random, raw: bytes) -> bytes:
    depth = rng.choice([10, 1000, 30_000])
    same = rng.random() < 0.5
    nest = b"".join(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n"
                    % ((0, 0) if same else (i, i + 1)) for i in range(depth))
    return (_writer(rng) + b"\r\nSubject: nest\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
            + nest + b"Content-Type: text/plain\r\n\r\n" + raw[-2000:])


def _many_parts(rng: random.Random, raw: bytes) -> bytes:
    count = rng.choice([150, 20_000, 100_000])
    parts = [b"Content-Type: text/plain\r\nContent-Disposition: attachment; filename=f.txt\r\n\r\nx"] * count
    return _multipart([_writer(rng), b"Subject: parts"], b"mixed", b"p", [raw[-1000:]] + parts)


def _huge_part(rng: random.Random, raw: bytes) -> bytes:
    size = rng.choice([1_000_000, 4_000_000, 9_000_000, 12_000_000])
    blob = base64.b64encode(rng.randbytes(size // 4 * 3)) if rng.random() < 0.5 else b"word " * (size // 5)
    encoding = b"base64" if blob[:1] != b"w" else b"8bit"
    part = (b"Content-Type: text/" + rng.choice([b"plain", b"html"]) + b"\r\nContent-Transfer-Encoding: "
            + encoding + b"\r\n\r\n" + blob)
    return _multipart([_writer(rng), b"Subject: big"], b"mixed", b"h", [part, raw[-1000:]])


def _html_bomb(rng: random.Random, raw: bytes) -> bytes:
    bomb = rng.choice(HTML_BOMBS) * rng.choice([100, 30_000, 150_000])
    return _writer(rng) + b"\r\nSubject: html\r\nContent-Type: text/html\r\n\r\n<p>help</p>" + bomb


def _charset_chaos(rng: random.Random, raw: bytes) -> bytes:
    return raw.replace(b"charset=", b"charset=" + rng.choice(CHARSETS).encode("utf-8", "replace") + b";x=", 1)


def _params(rng: random.Random, raw: bytes) -> bytes:
    count = rng.choice([100, 10_000, 200_000])
    params = b"".join(b"; %s*%d*=utf-8''%%41" % (rng.choice([b"name", b"filename", b"x"]), i) for i in range(count))
    return b"Content-Type: text/plain" + params + b"\r\n" + raw


def _cleaner_bomb(rng: random.Random, raw: bytes) -> bytes:
    lines = rng.choice(CLEANER_BOMBS) * rng.choice([10, 1000, 50_000])
    return _writer(rng) + b"\r\nSubject: clean\r\n\r\nMy question is about refunds.\n" + lines


def _auto_forms(rng: random.Random, raw: bytes) -> bytes:
    return _insert_header(raw, rng.choice(AUTO_HEADERS))


MUTATIONS: list[tuple[Mutation, int]] = [
    (_flip, 10), (_nul_and_surrogates, 10), (_truncate, 6), (_header_flood, 3), (_fold_flood, 3),
    (_encoded_words, 4), (_address_flood, 3), (_hostile_reply_to, 8), (_nest, 3), (_many_parts, 3),
    (_huge_part, 2), (_html_bomb, 4), (_charset_chaos, 6), (_params, 3), (_cleaner_bomb, 4), (_auto_forms, 6),
]


def generate(seed: int, questions: list[str]) -> tuple[bytes, list[str]]:
    """The hostile email for ``seed`` and the labels of what made it."""
    rng = random.Random(seed)
    question = _question(rng, questions)
    base = rng.choices([b for b, _ in BASES], [w for _, w in BASES])[0]
    raw = base(rng, question)
    labels = [getattr(base, "__name__", "base").lstrip("_")]
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        mutation = rng.choices([m for m, _ in MUTATIONS], [w for _, w in MUTATIONS])[0]
        raw = mutation(rng, raw)
        labels.append(mutation.__name__.lstrip("_"))
    return raw, labels
