"""Where a reply may go: one clean address from the standard library's header parser, or a person.

A Reply-To (or, without one, a From) that hides a second address, a group, an encoded word or a
control character never gets kb's answer: the email is handed to a person with the reason.
"""

from __future__ import annotations

import pytest

from kb.autoreply import address_headers, rules
from kb.autoreply.decision import PERSON, REPLY, decide
from kb.autoreply.matcher import MatchArticle, Matcher
from kb.autoreply.parsing import parse_message

SETTINGS = {"SUPPORT_ADDRESS": "support@kb.example", "BASE_URL": "https://kb.example/"}


def message(address_lines: bytes) -> bytes:
    """A customer's question with these From/Reply-To lines (a default From when none is given)."""
    sender = b"" if address_lines.startswith(b"From:") else b"From: Kari <kari@customer.example>\r\n"
    return (sender + address_lines + b"\r\nTo: support@kb.example\r\nSubject: Reset your password\r\n"
            b"Message-ID: <a1@customer.example>\r\n\r\nHow do I reset my password?\r\n")


@pytest.fixture(scope="module")
def matcher():
    """A matcher that is confident about password questions."""
    return Matcher.from_articles([
        MatchArticle("pw", "Reset your password", "Click Forgot password to reset your password.", "en"),
        MatchArticle("refund", "Refunds", "Refunds reach your card within five days.", "en"),
    ])


HOSTILE = {
    "a line break inside the quotes, unfolded": b'Reply-To: "a@x.example\r\nBcc: y" <eve@evil.example>',
    "two addresses": b"Reply-To: kari@customer.example, eve@evil.example",
    "a quoted comma, then a second address": b'Reply-To: "kari@customer.example, x" <kari@customer.example>,'
                                             b" eve@evil.example",
    "an encoded word hiding an address": b"Reply-To: =?utf-8?q?eve@evil.example?=",
    "a base64 encoded word hiding an address": b"Reply-To: =?utf-8?b?ZXZlQGV2aWwuZXhhbXBsZQ==?=",
    "a group": b"Reply-To: friends: kari@customer.example;",
    "an empty group": b"Reply-To: undisclosed-recipients:;",
    "nested angle brackets": b"Reply-To: <<eve@evil.example>>",
    "two angle addresses": b"Reply-To: Kari <kari@customer.example> <eve@evil.example>",
    "an unclosed angle bracket": b"Reply-To: <eve@evil.example",
    "an address as display name": b"Reply-To: kari@customer.example <eve@evil.example>",
    "no @": b"Reply-To: eve",
    "a source route": b"Reply-To: <@relay.example:eve@evil.example>",
    "two @": b"Reply-To: kari@customer.example@evil.example",
    "a NUL": b"Reply-To: eve@evil.example\x00.other",
    "an escape character": b"Reply-To: eve@evil.example\x1b[2J",
    "a quoted local part with a space": b'Reply-To: "eve smith"@evil.example',
    "a domain literal": b"Reply-To: eve@[10.0.0.1]",
    "a host without a dot": b"Reply-To: eve@localhost",
    "two Reply-To fields": b"Reply-To: kari@customer.example\r\nReply-To: eve@evil.example",
    "5,000 nested comments": b"Reply-To: " + b"(" * 5000 + b"kari@customer.example",
    "a 2,000-character address": b"Reply-To: " + b"a" * 2000 + b"@customer.example",
    "two From addresses and no Reply-To": b"From: kari@customer.example, eve@evil.example",
    "a From without @ and no Reply-To": b"From: Kari Nordmann",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_reply_address_goes_to_a_person(name, matcher):
    email = parse_message(message(HOSTILE[name]))
    decision = decide(email, matcher, SETTINGS)
    assert decision.outcome == PERSON
    assert decision.reason.startswith("bad-address: no clean address to reply to: ")
    assert email.reply_to == "" and email.reply_problem


CLEAN = {
    b'Reply-To: "a@x.example\r\n Bcc: y" <eve@evil.example>': "eve@evil.example",
    b'Reply-To: "Nordmann, Kari" <kari@customer.example>': "kari@customer.example",
    b"Reply-To: kari@customer.example (Kari, at home)": "kari@customer.example",
    b"Reply-To: =?utf-8?q?Kari_=40home?= <kari@customer.example>": "kari@customer.example",
    b"Reply-To: <KARI@Customer.Example>": "kari@customer.example",
    b"Reply-To: Kari\r\n <kari.home@customer.example>": "kari.home@customer.example",
    b"From: =?utf-8?q?eve=40evil.example?= <kari@customer.example>": "kari@customer.example",
}


@pytest.mark.parametrize("lines", sorted(CLEAN))
def test_a_clean_reply_address_is_answered(lines, matcher):
    email = parse_message(message(lines))
    assert decide(email, matcher, SETTINGS).outcome == REPLY
    assert email.reply_to == CLEAN[lines] and email.reply_problem == ""


def test_a_bad_reply_address_is_never_bypassed_by_the_allow_list():
    email = parse_message(message(HOSTILE["two addresses"]))
    decision = rules.skip_decision(email, support_address="support@kb.example", our_domain="kb.example",
                                   allow_list=["@customer.example"])
    assert decision.code == rules.BAD_ADDRESS and decision.needs_person


def test_a_bounce_with_a_bad_address_is_still_skipped():
    email = parse_message(b"From: MAILER-DAEMON\r\nSubject: failure notice\r\n\r\nHi\r\n")
    assert rules.skip_decision(email, support_address="s@kb.example", our_domain="kb.example").code == rules.BOUNCE


@pytest.mark.parametrize("address", ["kari@customer.example", "用户@例子.广告", "o'neil+x@mail.customer.example"])
def test_plain_addresses_have_no_problem(address):
    assert address_headers.address_problem(address) == ""


@pytest.mark.parametrize("address, key", [
    ("Support+Tag@KB.Example", "support@kb.example"),
    ('"support"@kb.example', "support@kb.example"),
    ("<support@kb.example.>", "support@kb.example"),
    ('"Support Team" <Support+x@kb.example>', "support@kb.example"),
])
def test_mailbox_key_ignores_case_quotes_and_tags(address, key):
    assert address_headers.mailbox_key(address) == key


# Plain mailboxes skip the stdlib's parser; everything else must still reach it.
FAST = ["pat@x.example", "<pat@x.example>", "Pat Smith <pat@x.example>", "a.b+c@d-e.f.g", "PAT@X.EXAMPLE",
        "a_b@c.d", "-@c.d", "a@-c.d", "a@c-.d", "  Kari   <kari@customer.example>  "[2:-2].replace("   ", " ")]
SLOW = ["pat@x.example>", "<pat@x.example", "Pat <pat@x.example", "Pat pat@x.example", "a..b@x.y", ".a@x.y",
        "a@x", "Pat  Smith <a@b.c>", "Pat Smith<a@b.c>", "a@b.c, d@e.f", "Pat Smith <a@b.c> x", "Ünï <a@b.c>",
        "a@b.c (comment)", '"Pat" <a@b.c>', "Pat.Smith <a@b.c>", "=?utf-8?q?eve@evil.example?= <a@b.c>"]


@pytest.mark.parametrize("value", FAST + SLOW)
def test_plain_mailboxes_read_as_the_stdlib_reads_them(value):
    """The shortcut for a plain mailbox gives exactly what the stdlib's parser gives, and only then."""
    assert bool(address_headers._SIMPLE_MAILBOX.fullmatch(value)) == (value in FAST)
    pairs, problem = address_headers.stdlib_addresses("From", value)
    expected = [(display, addr.lower()) for display, addr in pairs if addr]
    header = address_headers.parse_addresses("From", [value], [])
    assert (header.pairs, header.problem) == (expected, problem)
