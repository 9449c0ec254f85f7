"""Every text a parsed email holds is proper, storable text: 8-bit header bytes decoded, no NUL.

Raw bytes as senders really send them: an internationalised address without encoding, a raw
UTF-8 display name, a stray latin-1 byte, NUL and other control characters anywhere.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from kb.autoreply import compose
from kb.autoreply.models import MailRecord
from kb.autoreply.parsing import ParsedEmail, parse_message

# Not in any field: C0 controls but tab/newline, DEL, lone surrogates.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
# Not in one-line fields (everything but the bodies): tab, newline, carriage return too.
UNSAFE_IN_LINE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
BODIES = {"body_text", "clean_text"}


def texts(email: ParsedEmail):
    """(field name, text) for every string a ParsedEmail exposes, in lists and the header map too."""
    for item in dataclasses.fields(email):
        value = getattr(email, item.name)
        if isinstance(value, str):
            yield item.name, value
        elif isinstance(value, list):
            yield from ((item.name, text) for text in value if isinstance(text, str))
        elif item.name == "headers":
            yield from ((f"headers[{name}]", text) for name, text in value.items())


def assert_clean(email: ParsedEmail) -> None:
    """No control character, NUL or surrogate in any field."""
    for name, text in texts(email):
        pattern = UNSAFE if name in BODIES else UNSAFE_IN_LINE
        assert not pattern.search(text), f"{name}: {text[:80]!r}"


def test_raw_utf8_display_name_is_read_as_utf8():
    email = parse_message(b"From: J\xc3\xbcrgen M\xc3\xbcller <j@example.com>\r\nSubject: Hei\r\n\r\nHi\r\n")
    assert email.from_name == "Jürgen Müller" and email.from_addr == "j@example.com"
    assert email.reply_to == "j@example.com"
    assert_clean(email)


def test_internationalised_address_sent_raw_is_read():
    address = "用户@例子.广告".encode()
    email = parse_message(b"From: " + address + b"\r\nTo: " + address + b"\r\nSubject: x\r\n\r\nHi\r\n")
    assert email.from_addr == "用户@例子.广告" and email.to_addrs == ["用户@例子.广告"]
    assert email.reply_to == "用户@例子.广告"
    assert_clean(email)


def test_stray_8bit_bytes_fall_back_to_windows_1252():
    email = parse_message(b"From: K\xe4ri <kari@example.no>\r\nSubject: Caf\xe9 \xff \x93ok\x94\r\n"
                          b"X-Loop: a\xffb\r\n\r\nHi\r\n")
    assert email.from_name == "Käri"
    assert email.subject == "Café ÿ “ok”"
    assert email.headers["x-loop"] == "aÿb"
    assert_clean(email)


def test_mixed_utf8_and_stray_byte_in_one_header():
    email = parse_message("Subject: Grüße \xff!\r\nFrom: a@example.com\r\n\r\nHi\r\n".encode("utf-8")
                          .replace(b"\xc3\xbf", b"\xff"))
    assert email.subject == "Grüße ÿ!"


def test_nul_and_control_characters_are_dropped():
    raw = (b"From: Ka\x00ri\x07 <kari@example.no>\r\nSubject: Pass\x00word =?utf-8?q?re=00set=0B?=\r\n"
           b"Message-ID: <a\x00b@example.no>\r\nReferences: <r1@example.no> <r\x002@example.no>\r\n"
           b"Auto-Submitted: no\x00\r\n\r\nLine\x00 one\x0b\r\nLine\ttwo\x1b\r\n")
    email = parse_message(raw)
    assert email.from_name == "Kari" and email.subject == "Password reset"
    assert email.message_id == "<ab@example.no>"
    assert email.references == ["<r1@example.no>", "<r2@example.no>"]
    assert email.body_text == "Line one\nLine\ttwo"
    assert email.headers["auto-submitted"] == "no"
    assert_clean(email)


@pytest.mark.parametrize("raw", [
    b"From: \xff\xfe <\xff@\xfe.example>\r\nSubject: \xed\xa0\x80 surrogate bytes\r\n\r\nbody\r\n",
    b"From: a@example.com\r\nSubject: =?utf-7?q?+2AA-?= =?x-unknown?q?=FF?=\r\n\r\nbody\r\n",
    b"From: a@example.com\r\nContent-Type: text/plain; charset=utf-7\r\n\r\n+2AA- lone surrogate\r\n",
    b"From: a@example.com\r\nContent-Type: text/plain; charset=unicode_escape\r\n\r\n\\ud800 \\x00\r\n",
    b"From: a@example.com\r\nContent-Type: text/html\r\n\r\n<p>a&#0;b&#11;c&#xD800;d\x00</p>\r\n",
    b"From: a@example.com\r\nSubject: \x00\x01\x02\r\nReply-To: \x00\r\nTo: \x00@\x00\r\n\r\n\x00\r\n",
    b"From: a@example.com\r\nDate: Mon, 3 Mar 2025 10:12:00 +0100\x00\r\n\r\nx\r\n",
])
def test_hostile_bytes_never_reach_a_field(raw):
    assert_clean(parse_message(raw))


def test_a_raw_utf8_display_name_gets_a_reply_built():
    email = parse_message(b"From: J\xc3\xbcrgen M\xc3\xbcller <j@example.com>\r\nSubject: Passwort\r\n"
                          b"Message-ID: <m1@example.com>\r\n\r\nWie setze ich mein Passwort zur\xc3\xbcck?\r\n")
    record = MailRecord(message_id=email.message_id, from_addr=email.from_addr, reply_to=email.reply_to,
                        subject=email.subject, lang="", matches=[])
    reply = compose.build_reply(record, email, [], settings={"SUPPORT_ADDRESS": "support@kb.example",
                                                              "BASE_URL": "https://kb.example/"},
                                links=("https://kb.example/s", "https://kb.example/h"), message_id="<r@kb.example>")
    assert "Jürgen Müller" in reply.get_body(("plain",)).get_content()
    assert reply.as_bytes()
