"""The auto-reply and the team alert as emails: headers, threading, languages, escaping."""

from __future__ import annotations

import dataclasses
from email import message_from_bytes, message_from_string
from email.errors import NonASCIILocalPartDefect
from email.policy import default as default_policy

import pytest

from kb.autoreply import compose, ledger
from kb.autoreply.matcher import Match
from kb.autoreply.parsing import parse_message
from kb.autoreply.rules import skip_decision

SETTINGS = {"BASE_URL": "https://help.example.com/", "SUPPORT_ADDRESS": "support@example.com",
            "TEAM_ADDRESS": "team@example.com"}
LINKS = ("https://help.example.com/mail/feedback/S", "https://help.example.com/mail/feedback/H")


def incoming(subject="Re: Where is my parcel?", body="Hi, my parcel never came.\n", *, headers=""):
    """A customer's email, parsed."""
    raw = (f"From: Ann Smith <ann@example.org>\nReply-To: ann.home@example.org\nTo: support@example.com\n"
           f"Subject: {subject}\nMessage-ID: <q1@example.org>\nReferences: <older@example.org>\n"
           f"In-Reply-To: <older@example.org>\n{headers}Content-Type: text/plain; charset=utf-8\n\n{body}")
    return parse_message(raw.encode("utf-8"))


def stored(text: str) -> str:
    """Text as the ledger stores it: bytes the parser could not decode are not kept as surrogates."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def recorded(session, email, lang="en", articles=()):
    """A record of ``email`` with a reply decided."""
    record = ledger.claim(session, dedupe_key=email.message_id, message_id=email.message_id, folder="INBOX",
                          uidvalidity=1, uid=1, from_addr=stored(email.from_addr), reply_to=stored(email.reply_to),
                          subject=stored(email.subject), text=stored(email.clean_text))
    matches = [Match(str(a.id), 0.5 - i / 10, ["parcel"]) for i, a in enumerate(articles)]
    return ledger.record_decision(session, record, "reply", "confident", matches, lang)


def reparsed(message):
    """The message as a receiving mail client reads it."""
    return message_from_bytes(message.as_bytes(), policy=default_policy)


def parts(message):
    """(text, html) bodies, with the line ends a mail client shows."""
    return tuple(message.get_body((kind,)).get_content().replace("\r\n", "\n") for kind in ("plain", "html"))


def test_the_reply_is_threaded_automatic_and_ours(session, make_article):
    article = make_article("Track your parcel", body_md="Open **Orders** and choose *Track*. " * 10)
    email = incoming()
    record = recorded(session, email, articles=[article])
    mid = compose.new_message_id(SETTINGS["BASE_URL"])
    message = reparsed(compose.build_reply(record, email, compose.suggested_articles(session, record),
                                           settings=SETTINGS, links=LINKS, message_id=mid))
    assert mid.endswith("@help.example.com>") and message["Message-ID"] == mid
    assert message["From"] == "Customer support <support@example.com>"  # KB_SUPPORT_NAME, else this
    assert message["To"] == "ann.home@example.org"  # Reply-To honoured
    assert message["Subject"] == "Re: Where is my parcel?"  # no "Re: Re:"
    assert message["In-Reply-To"] == "<q1@example.org>"
    assert message["References"].split() == ["<older@example.org>", "<q1@example.org>"]
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    assert "Hello Ann Smith," in text and "Track your parcel" in text
    assert "https://help.example.com/articles/track-your-parcel" in text
    assert f"Solved: {LINKS[0]}" in text and f"Still need help: {LINKS[1]}" in text
    assert 'href="https://help.example.com/articles/track-your-parcel"' in html
    assert f'href="{LINKS[1]}"' in html


def test_a_reply_to_our_reply_is_recognised_by_the_rules(session, make_article):
    email = incoming()
    record = recorded(session, email, articles=[make_article("Parcels")])
    mid = compose.new_message_id(SETTINGS["BASE_URL"])
    reply = compose.build_reply(record, email, [], settings=SETTINGS, links=LINKS, message_id=mid)
    answer = parse_message(f"From: ann@example.org\nSubject: Re: {reply['Subject']}\nIn-Reply-To: {mid}\n\n"
                           "Thanks, but no.\n".encode())
    decision = skip_decision(answer, support_address="support@example.com", our_domain="help.example.com",
                             sent_message_ids=set(), allow_list=())
    assert decision is not None  # the domain alone marks it as ours, even with no database record
    # and our own reply, looped back into the mailbox, is never answered
    own = parse_message(reply.as_bytes())
    assert skip_decision(own, support_address="support@example.com", our_domain="help.example.com",
                         sent_message_ids={mid}, allow_list=()) is not None


def test_excerpts_are_about_two_lines_cut_at_a_word(make_article):
    article = make_article("Long", body_md="# Heading\n\n" + "word " * 100)
    snippet = compose.excerpt(article)
    assert snippet.endswith("…") and len(snippet) <= compose.EXCERPT_CHARS + 1
    assert "#" not in snippet and not snippet[:-1].endswith(" ")
    assert compose.excerpt(make_article("Short", body_md="Just *this*.")) == "Just this."


@pytest.mark.parametrize("lang, greeting, solved, help_, subject", [
    ("zh", "您好", "已解决：", "仍需帮助：", "您的咨询"),
    ("no", "Hei", "Løst: ", "Trenger fortsatt hjelp: ", "Spørsmålet ditt til kundeservice"),
    ("nb", "Hei", "Løst: ", "Trenger fortsatt hjelp: ", "Spørsmålet ditt til kundeservice"),
    ("fr", "Hello", "Solved: ", "Still need help: ", "Your question to support"),  # kb has no French: the default
])
def test_the_reply_speaks_the_emails_language(session, make_article, lang, greeting, solved, help_, subject):
    email = incoming(subject="", body="包裹在哪里？\n")
    record = recorded(session, email, lang=lang, articles=[make_article("包裹追踪", lang="zh")])
    message = reparsed(compose.build_reply(record, email, compose.suggested_articles(session, record),
                                           settings=SETTINGS, links=LINKS, message_id="<m@help.example.com>"))
    text, html = parts(message)
    assert greeting in text and f"{solved}{LINKS[0]}" in text and f"{help_}{LINKS[1]}" in text
    assert "包裹追踪" in text and "包裹追踪" in html
    assert message["Subject"] == f"Re: {subject}"  # empty subject: a default in that language


def test_html_is_escaped(session, make_article):
    article = make_article("Use <script> & friends", body_md="Text with `<b>` in it.")
    email = incoming(subject="<img src=x>")
    record = recorded(session, email, articles=[article])
    message = reparsed(compose.build_reply(record, email, compose.suggested_articles(session, record),
                                           settings=SETTINGS, links=(LINKS[0] + '"><x', LINKS[1]),
                                           message_id="<m@help.example.com>"))
    _, html = parts(message)
    assert "<script>" not in html and "Use &lt;script&gt; &amp; friends" in html
    assert '"><x' not in html and "&quot;&gt;&lt;x" in html


def test_a_retry_without_the_original_email_is_still_threaded(session, make_article):
    email = incoming(subject="Fwd: SV: Where is my parcel?")
    record = recorded(session, email, articles=[make_article("Parcels")])
    message = compose.build_reply(record, None, compose.suggested_articles(session, record), settings=SETTINGS,
                                  links=LINKS, message_id="<m2@help.example.com>")
    assert message["To"] == "ann.home@example.org"
    assert message["Subject"] == "Re: Where is my parcel?"
    assert message["In-Reply-To"] == "<q1@example.org>" and message["References"] == "<q1@example.org>"


def test_suggested_articles_keep_the_order_and_drop_unpublished(session, make_article):
    first, gone, second = make_article("First"), make_article("Gone"), make_article("Second")
    record = recorded(session, incoming(), articles=[first, gone, second])
    gone.status = "archived"
    session.commit()
    assert [a.title for a, _ in compose.suggested_articles(session, record)] == ["First", "Second"]


def raw_incoming(sender: bytes, subject: bytes = b"Passwort vergessen", extra: bytes = b"") -> bytes:
    """A customer's email with headers sent as raw 8-bit UTF-8, as many mail programs do."""
    return (b"From: " + sender + b"\r\nTo: support@example.com\r\nSubject: " + subject
            + b"\r\nMessage-ID: <" + str(hash(sender)).encode() + b"@example.org>\r\n" + extra
            + b"Content-Type: text/plain; charset=utf-8\r\n\r\nMy parcel never came.\r\n")


def build(session, email, make_article, settings=SETTINGS, lang="en"):
    """The reply to ``email`` (a ParsedEmail) as a receiving client reads it."""
    record = recorded(session, email, lang=lang, articles=[make_article("Track your parcel")])
    return reparsed(compose.build_reply(record, email, compose.suggested_articles(session, record),
                                        settings=settings, links=LINKS, message_id="<m@help.example.com>"))


@pytest.mark.parametrize("sender, name, address", [
    ("Jürgen Müller <j@example.com>".encode(), "Jürgen Müller", "j@example.com"),
    ('"Müller, Jürgen" <j@example.com>'.encode(), "Müller, Jürgen", "j@example.com"),
    ("Jürgen <j@exämple.com>".encode(), "Jürgen", "j@xn--exmple-cua.com"),
    ("用户 <kunde@例子.广告>".encode(), "用户", "kunde@xn--fsqu00a.xn--4rr70v"),
    (b"J\xfcrgen M\xfcller <j@example.com>", "Jürgen Müller", "j@example.com"),  # Latin-1, not UTF-8
])
def test_raw_8bit_display_names_and_idn_domains_get_a_reply(session, make_article, sender, name, address):
    email = parse_message(raw_incoming(sender))
    message = build(session, email, make_article)
    [to] = message["To"].addresses
    assert (to.display_name, to.addr_spec) == (name, address)
    text, html = parts(message)
    assert f"Hello {name}," in text and f"Hello {name}," in html.replace("&quot;", '"')


def test_a_non_ascii_local_part_is_kept_for_an_smtputf8_server(session, make_article):
    email = parse_message(raw_incoming("Jürgen <jürgen@example.com>".encode()))
    message = compose.build_reply(recorded(session, email, articles=[make_article("Parcels")]), email, [],
                                  settings=SETTINGS, links=LINKS, message_id="<m@help.example.com>")
    assert message["To"].addresses[0].addr_spec == "jürgen@example.com"
    assert compose.needs_smtputf8(message)
    assert "jürgen@example.com".encode() in compose.message_bytes(message)


HOSTILE = ["", " ", "\r\n", "\n.\n", "Bcc: eve@evil.example", "a\r\nBcc: eve@evil.example", "\x00", "\x7f\x85\u2028",
           "=?utf-8?q?=0D=0ABcc:_x?=", "<=?utf-8?q?=0D=0ABcc:_x?=@evil.example>",
           "=?utf-8?b?PT91dGYtOD9xPz0wRD0wQT89?=",
           "\udcff\udcfe", "\ud800", "ü", "你好", "<", ">", "<>", "<<a@b>>", '"', "\\",
           "x" * 2000, "y " * 600, "@", "a@b", "<a b@c>", "\t", "😀", "\u202e"]


def hostile_strings(count: int, seed: int):
    """Strings built from pieces that have broken mail headers: controls, surrogates, huge words."""
    import random

    rng = random.Random(seed)
    for _ in range(count):
        yield "".join(rng.choice(HOSTILE) if rng.random() < 0.8 else chr(rng.randrange(0x110000))
                      for _ in range(rng.randint(1, 5)))


def test_every_header_kb_writes_from_customer_input_survives_any_string(session, make_article):
    article = make_article("Parcels")
    email = incoming()
    record = recorded(session, email, articles=[article])
    articles = compose.suggested_articles(session, record)
    session.expunge(record)  # its fields are set to odd values below, never written
    values = list(hostile_strings(200, seed=6))
    for n, value in enumerate(values):
        email_fields = dict(subject=value, from_name=value, message_id=value, references=[value, "<ok@x>", value],
                            clean_text=value)
        odd = dataclasses.replace(email, **email_fields)
        record.subject, record.message_id, record.text = value, value, value
        for original in (odd, None):  # the first attempt, and a retry from the record alone
            message = compose.build_reply(record, original, articles, settings=SETTINGS, links=LINKS,
                                          message_id="<m@help.example.com>")
            data = compose.message_bytes(message)
            assert all(len(line) <= 998 for line in data.split(b"\r\n")), (n, value)
            back = message_from_bytes(data, policy=default_policy)
            assert [a.addr_spec for a in back["To"].addresses] == ["ann.home@example.org"], (n, value)
            assert back["Bcc"] is None and back["Cc"] is None and not back.defects, (n, value)
            # (the stdlib's folding may leave a space where it unfolds a line: clients strip it)
            assert back["Subject"].strip().startswith("Re: ") and "\n" not in back["Subject"], (n, value)
            for name in ("In-Reply-To", "References"):
                assert back[name] is None or all(part.startswith("<") and part.endswith(">") and part.isascii()
                                                 for part in str(back[name]).split()), (n, name, back[name])
            parts(back)


@pytest.mark.parametrize("reply_to", ["a b@example.org", "eve@evil.example\r\nBcc: x@y", "nobody", "@example.org",
                                      "a@", "a@@b", "\ud800@example.org", "ann\u202e@example.org"])
def test_an_address_kb_cannot_write_is_refused_with_a_reason(session, make_article, reply_to):
    email = dataclasses.replace(incoming(), reply_to=reply_to)
    record = recorded(session, email, articles=[make_article("Parcels")])
    with pytest.raises(compose.Unsendable, match="reply address"):
        compose.build_reply(record, email, [], settings=SETTINGS, links=LINKS, message_id="<m@help.example.com>")


@pytest.mark.parametrize("lang", ["en", "nb", "zh"])
def test_content_language_is_kept_on_the_reply(session, make_article, lang):
    message = build(session, incoming(), make_article, lang=lang)
    assert message["Content-Language"] == lang


def test_the_reply_quotes_the_question_briefly_and_escaped(session, make_article):
    body = "<b>My parcel</b> & never came.\n\nOrder 123.\n" + "It was a blue jacket. " * 100
    message = build(session, incoming(body=body), make_article)
    text, html = parts(message)
    label = "You wrote:"
    quoted = text.split(label, 1)[1].split("\n\n", 1)[0]
    assert "> <b>My parcel</b> & never came." in quoted and "> Order 123." in quoted
    assert len(quoted) < compose.QUOTE_CHARS + 40 and quoted.rstrip().endswith("…")
    assert "&lt;b&gt;My parcel&lt;/b&gt; &amp; never came." in html and "<b>My parcel" not in html
    assert "<blockquote" in html and html.count("blue jacket") < 20


def test_the_quote_comes_from_the_record_on_a_retry(session, make_article):
    record = recorded(session, incoming(body="Where is my parcel?\n"), articles=[make_article("Parcels")])
    message = compose.build_reply(record, None, [], settings=SETTINGS, links=LINKS, message_id="<m@help.example.com>")
    assert "> Where is my parcel?" in message.get_body(("plain",)).get_content()


@pytest.mark.parametrize("settings, lang, name", [
    (SETTINGS, "en", "Customer support"),
    (SETTINGS, "nb", "Kundeservice"),
    ({**SETTINGS, "SUPPORT_NAME": "Fjellstad Support"}, "en", "Fjellstad Support"),
    ({**SETTINGS, "SUPPORT_NAME": "Fjellstad Kundeservice på nett"}, "zh", "Fjellstad Kundeservice på nett"),
])
def test_the_reply_comes_from_a_named_sender(session, make_article, settings, lang, name):
    message = build(session, incoming(), make_article, settings=settings, lang=lang)
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (name, "support@example.com")


def test_articles_far_below_the_best_are_not_suggested(session, make_article):
    best, close, far = make_article("Track your parcel"), make_article("Parcel lost"), make_article("Opening hours")
    record = recorded(session, incoming(), articles=[best, close, far])
    record.matches = [dict(m, score=s) for m, s in zip(record.matches, (0.60, 0.50, 0.10))]
    shown = compose.suggested_articles(session, record)
    assert [a.title for a, _ in shown] == ["Track your parcel", "Parcel lost"]
    everything = compose.suggested_articles(session, record, {"AUTOREPLY_RELATIVE_CUT": 0})
    assert len(everything) == 3


@pytest.mark.parametrize("smtputf8", [True, False])
def test_8bit_addresses_reach_a_real_smtp_server_or_a_clear_refusal(session, make_article, smtp_sink_factory,
                                                                     smtputf8):
    from kb.autoreply import smtp

    sink = smtp_sink_factory(smtputf8=smtputf8)
    settings = {**SETTINGS, **sink.settings(SUPPORT_ADDRESS="support@example.com")}
    for sender, rcpt in [("Jürgen <j@bücher.example>", "j@xn--bcher-kva.example"),
                         ("Jürgen <jürgen@bücher.example>", "jürgen@xn--bcher-kva.example")]:
        email = parse_message(raw_incoming(sender.encode()))
        record = recorded(session, email, articles=[make_article("Parcels")])
        message = compose.build_reply(record, email, compose.suggested_articles(session, record),
                                      settings=settings, links=LINKS, message_id=compose.new_message_id(""))
        if rcpt.isascii() or smtputf8:
            smtp.send(message, settings)
            assert sink.wait_for(1)[-1].rcpt_tos == [rcpt]
            received = message_from_bytes(sink.messages[-1].data, policy=default_policy)
            assert "Hello Jürgen," in received.get_body(("plain",)).get_content()
            sink.messages.clear()
        else:
            with pytest.raises(smtp.SendRefused, match="SMTPUTF8"):
                smtp.send(message, settings)


def test_any_reply_address_makes_one_clean_recipient_or_a_clear_refusal(session, make_article):
    email = incoming()
    record = recorded(session, email, articles=[make_article("Parcels")])
    session.expunge(record)
    written = 0
    for value in hostile_strings(300, seed=7):
        for address in (value, f"{value}@example.org", f"ann{value}@{value}.example", f"ann@{value}"):
            odd = dataclasses.replace(email, reply_to=address, from_addr=address, from_name=value)
            try:
                message = compose.build_reply(record, odd, [], settings=SETTINGS, links=LINKS,
                                              message_id="<m@help.example.com>")
            except compose.Unsendable as exc:
                assert "reply address" in str(exc)
                continue
            wide = compose.needs_smtputf8(message)  # headers in raw UTF-8 (RFC 6532), read as text
            data = compose.message_bytes(message)
            back = message_from_string(data.decode("utf-8"), policy=default_policy) if wide \
                else message_from_bytes(data, policy=default_policy)
            assert len(back["To"].addresses) == 1 and back["Bcc"] is None and back["Cc"] is None, (value, address)
            defects = [d for d in back["To"].defects if not (wide and isinstance(d, NonASCIILocalPartDefect))]
            assert not defects and not back.defects, (value, address, back["To"])
            written += 1
    assert written > 30  # some odd values still make an address: otherwise the test would prove nothing


def test_huge_customer_text_costs_no_more_than_a_line_of_it(session, make_article):
    from kb.autoreply import outgoing

    huge = "=?utf-8?q?=0D=0ABcc:_x?= " * 200_000 + "\n" * 500_000 + "end"
    assert outgoing.header_text(huge, 200).startswith("Bcc: x Bcc: x")
    assert len(outgoing.header_text(huge, 200)) <= 200
    assert outgoing.quote_lines(huge, 4, 300)[-1].endswith("…")
    assert outgoing.message_ids(["<" + "x" * 10_000 + "@y>", "<ok@y>"]) == ["<ok@y>"]
