"""The auto-reply and the team alert as emails: headers, threading, languages, escaping."""

from __future__ import annotations

from email import message_from_bytes
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


def recorded(session, email, lang="en", articles=()):
    """A record of ``email`` with a reply decided."""
    record = ledger.claim(session, dedupe_key=email.message_id, message_id=email.message_id, folder="INBOX",
                          uidvalidity=1, uid=1, from_addr=email.from_addr, reply_to=email.reply_to,
                          subject=email.subject, text=email.clean_text)
    matches = [Match(str(a.id), 0.5 - i / 10, ["parcel"]) for i, a in enumerate(articles)]
    return ledger.record_decision(session, record, "reply", "confident", matches, lang)


def reparsed(message):
    """The message as a receiving mail client reads it."""
    return message_from_bytes(message.as_bytes(), policy=default_policy)


def parts(message):
    """(text, html) bodies."""
    return (message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content())


def test_the_reply_is_threaded_automatic_and_ours(session, make_article):
    article = make_article("Track your parcel", body_md="Open **Orders** and choose *Track*. " * 10)
    email = incoming()
    record = recorded(session, email, articles=[article])
    mid = compose.new_message_id(SETTINGS["BASE_URL"])
    message = reparsed(compose.build_reply(record, email, compose.suggested_articles(session, record),
                                           settings=SETTINGS, links=LINKS, message_id=mid))
    assert mid.endswith("@help.example.com>") and message["Message-ID"] == mid
    assert message["From"] == "support@example.com"
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


@pytest.mark.parametrize("lang, greeting, solved, help_", [
    ("zh", "您好", "已解决", "仍需帮助"),
    ("no", "Hei", "Løst", "Trenger fortsatt hjelp"),
    ("nb", "Hei", "Løst", "Trenger fortsatt hjelp"),
    ("fr", "Hello", "Solved", "Still need help"),  # no French template: English
])
def test_the_reply_speaks_the_emails_language(session, make_article, lang, greeting, solved, help_):
    email = incoming(subject="", body="包裹在哪里？\n")
    record = recorded(session, email, lang=lang, articles=[make_article("包裹追踪", lang="zh")])
    message = reparsed(compose.build_reply(record, email, compose.suggested_articles(session, record),
                                           settings=SETTINGS, links=LINKS, message_id="<m@help.example.com>"))
    text, html = parts(message)
    assert greeting in text and f"{solved}: {LINKS[0]}" in text and f"{help_}: {LINKS[1]}" in text
    assert "包裹追踪" in text and "包裹追踪" in html
    expected_subject = compose.TEXTS[compose.template_lang(lang)]["subject"]
    assert message["Subject"] == f"Re: {expected_subject}"  # empty subject: a default in that language


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


def test_the_alert_tells_the_team_who_asked_what_and_what_kb_suggested(session, make_article):
    article = make_article("Track your parcel")
    email = incoming()
    record = recorded(session, email, articles=[article])
    ledger.begin_sending(session, record, "<r@help.example.com>")
    ledger.finish_sent(session, record)
    ledger.resolve(session, record.id, "help")
    alert = reparsed(compose.build_alert(record, SETTINGS))
    assert alert["To"] == "team@example.com" and alert["From"] == "support@example.com"
    assert alert["Reply-To"] == "ann.home@example.org"
    assert alert["Auto-Submitted"] == "auto-generated"
    assert alert["Subject"] == "[kb] Still need help: Re: Where is my parcel?"
    body = alert.get_content()
    assert "ann@example.org" in body and "my parcel never came" in body
    assert "Track your parcel (score 0.50) https://help.example.com/articles/track-your-parcel" in body
