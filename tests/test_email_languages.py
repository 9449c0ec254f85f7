"""The reply and the alert speak kb's languages through the portal's gettext catalogs.

The reply speaks the email's language when KB_LANGUAGES offers it, else KB_DEFAULT_LANGUAGE; the
alert speaks KB_DEFAULT_LANGUAGE. A language with a catalog needs no code, for the emails too.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from itsdangerous import Signer

from kb import articles as kb_articles
from kb.autoreply import compose, ledger, links
from kb.autoreply.decision import decide_parts
from kb.autoreply.matcher import MatchArticle, Matcher
from kb.autoreply.models import MailRecord
from kb.autoreply.textproc import STOP_WORDS
from kb.db import session_scope
from kb.followup.models import Case
from kb.i18n import translations
from tests.conftest import TEST_SECRET, csrf_token_from
from tests.test_autoreply_compose import LINKS, SETTINGS, incoming, parts, recorded, reparsed
from tests.test_autoreply_links import path_of, replied_record
from tests.test_autoreply_worker import articles_db, make_email, make_worker, parsed, records, seeded_app  # noqa: F401
from tests.test_languages import VisibleText, english_words
from tests.test_translations import code_messages, copy_catalogs

LATIN_WORD = re.compile(r"[A-Za-z][A-Za-zæøåÆØÅ]+")
# What kb copies into an email rather than writes: links, addresses, Message-IDs.
NOT_KBS_WORDS = re.compile(r"https?://\S+|<[^<>\s]*>|[^\s<>()]+@[^\s<>()]+")


def said(code: str, message: str, **values: str) -> str:
    """``message`` as the catalog of ``code`` says it, with its placeholders filled in."""
    text = translations(code).gettext(message)
    return text % values if values else text


def reply_in(session, make_article, lang: str, settings=SETTINGS, name: str = "Ann Smith"):
    """The reply to a Chinese question (so that only kb's own sentences can be in Latin letters)."""
    email = dataclasses.replace(incoming(subject="", body="包裹在哪里？\n"), from_name=name,
                                message_id=f"<{uuid.uuid4().hex}@example.org>")
    article = make_article("包裹追踪", lang="zh", body_md="在订单页面查看包裹的位置。")
    record = recorded(session, email, lang=lang, articles=[article])
    return reparsed(compose.build_reply(record, email, compose.suggested_articles(session, record),
                                        settings=settings, links=LINKS, message_id="<m@help.example.com>"))


def visible(html: str) -> str:
    """The text a reader sees in an HTML part."""
    parser = VisibleText()
    parser.feed(html)
    return " ".join(parser.parts)


def words_kb_wrote(message, *drop: str) -> set[str]:
    """Latin-script words (lower case) of the subject, sender name and text and HTML bodies, less
    what kb copies in (links, addresses, ``drop``) and the "Re: " that stays in every language."""
    text, html = parts(message)
    shown = [message["Subject"].removeprefix("Re: "), message["From"].addresses[0].display_name, text, visible(html)]
    found = NOT_KBS_WORDS.sub(" ", " ".join(shown))
    for value in drop:
        found = found.replace(value, " ")
    return {word.lower() for word in LATIN_WORD.findall(found)}


def test_the_chinese_reply_has_no_english_left(session, make_article):
    assert words_kb_wrote(reply_in(session, make_article, "zh"), "Ann Smith") == set()


def test_the_norwegian_reply_has_no_english_left(session, make_article):
    english = words_kb_wrote(reply_in(session, make_article, "en"), "Ann Smith") - STOP_WORDS["nb"]
    norwegian = words_kb_wrote(reply_in(session, make_article, "nb"), "Ann Smith")
    assert {"hello", "thank", "solved", "automatic"} <= english
    assert norwegian and norwegian & english == set()


@pytest.mark.parametrize("code", ["en", "zh", "nb"])
def test_each_reply_says_the_catalogs_sentences(session, make_article, code):
    message = reply_in(session, make_article, code)
    text, html = parts(message)
    for sentence in ("Thank you for your email. These articles may answer your question:",
                     "Did this solve it? Let us know with one click:"):
        assert said(code, sentence) in text and said(code, sentence) in visible(html)
    assert said(code, "Hello %(name)s,", name="Ann Smith") in text
    assert said(code, "Solved: %(url)s", url=LINKS[0]) in text
    assert said(code, "Still need help: %(url)s", url=LINKS[1]) in text
    assert message["Subject"] == "Re: " + said(code, "Your question to support")
    assert message["From"].addresses[0].display_name == said(code, "Customer support")
    assert message["Content-Language"] == code and f'<html lang="{code}">' in html


def circled(text: str) -> str:
    """Every Latin letter of ``text`` in its circled form (Ⓐ ⓑ), placeholders kept."""
    def swap(match: re.Match) -> str:
        letter = match.group()
        if len(letter) > 1:  # a %(name)s placeholder
            return letter
        return chr((0x24B6 if letter.isupper() else 0x24D0) + ord(letter.lower()) - ord("a"))
    return re.sub(r"%\(\w+\)[sd]|[A-Za-z]", swap, text)


def pseudo_language(tmp_path: Path, code: str = "qps") -> Path:
    """A folder of catalogs with one language, ``code``, in which every message of the code is circled."""
    catalog = Catalog(domain="messages")
    for message in code_messages():
        catalog.add(message, tuple(map(circled, message)) if isinstance(message, tuple) else circled(message))
    mo = tmp_path / "pseudo" / code / "LC_MESSAGES" / "messages.mo"
    mo.parent.mkdir(parents=True)
    with open(mo, "wb") as fh:
        write_mo(fh, catalog)
    return tmp_path / "pseudo"


def test_every_word_kb_writes_in_its_emails_comes_from_the_catalogs(session, make_article, tmp_path):
    # A language whose catalog circles every letter: a Latin word left in an email was never looked up.
    settings = {**SETTINGS, "LANGUAGES": "en,qps", "DEFAULT_LANGUAGE": "qps",
                "BABEL_TRANSLATION_DIRECTORIES": str(pseudo_language(tmp_path))}
    reply = reply_in(session, make_article, "qps", settings, name="王芳")
    assert reply["Content-Language"] == "qps"
    assert words_kb_wrote(reply) == set()
    alert = build_alert(session, settings, reason="out_of_date")
    text = NOT_KBS_WORDS.sub(" ", alert["Subject"].removeprefix("[kb] ") + "\n" + alert.get_content())
    for customers in ("Ann Smith", "Hi, my parcel never came."):
        text = text.replace(customers, " ")
    assert set(LATIN_WORD.findall(text)) <= {"UTC"}, text


def build_alert(session, settings, lang="zh", reason=""):
    """The team's alert about a follow-up signal, as the team's mail client reads it."""
    from kb.followup import alert_compose, signals

    config = {**ALERT_DEFAULTS, **settings}
    result = signals.record_signal(session, key=f"vote:{uuid.uuid4().hex}", source="vote", settings=config,
                                   address="ann@example.org", name="Ann Smith", reason=reason, lang=lang,
                                   words="Hi, my parcel never came.")
    session.commit()
    facts = alert_compose.facts(session, result.case, result.signal, config)
    return reparsed(alert_compose.build_email(facts, event="alert", to=["team@example.com"], settings=config,
                                              message_id="<a@help.example.com>"))


ALERT_DEFAULTS = {"FOLLOWUP_ACK_MINUTES": 15, "BUSINESS_HOURS": "", "TIME_ZONE": "UTC", "LANGUAGES": "en,zh,nb",
                  "DEFAULT_LANGUAGE": "en"}


@pytest.mark.parametrize("default, email_lang", [("en", "zh"), ("zh", "nb"), ("nb", "zh")])
def test_the_alert_speaks_the_default_language_whatever_the_customer(session, default, email_lang):
    alert = build_alert(session, {**SETTINGS, "DEFAULT_LANGUAGE": default}, lang=email_lang)
    assert alert["Content-Language"] == default
    body = alert.get_content()
    for sentence in ("Their words:", "What happened: %(what)s"):
        assert said(default, sentence).split("%")[0] in body
    assert said(default, "A \"No\" vote on an article") in body
    assert "Hi, my parcel never came." in body and "ann@example.org" in body


def test_the_chinese_alert_has_no_english_but_names_and_addresses(session):
    alert = build_alert(session, {**SETTINGS, "DEFAULT_LANGUAGE": "zh"}, reason="hard_to_follow")
    text = NOT_KBS_WORDS.sub(" ", alert["Subject"].removeprefix("[kb] ") + "\n" + alert.get_content())
    for customers in ("Ann Smith", "Hi, my parcel never came."):
        text = text.replace(customers, " ")
    assert set(LATIN_WORD.findall(text)) <= {"UTC"}, text


@pytest.mark.parametrize("email_lang, languages, default, expected", [
    ("fr", "en,zh,nb", "nb", "nb"),  # kb has no French: the default language, as on the portal
    ("nb", "en,zh", "zh", "zh"),  # Norwegian has a catalog but is not offered
    ("no", "en,zh,nb", "zh", "nb"),
    ("", "en,zh,nb", "zh", "zh"),
    ("de", "zh,nb", "en", "zh"),  # a default that is not offered: the first offered language
])
def test_the_reply_speaks_the_emails_language_if_offered_else_the_default(session, make_article, email_lang,
                                                                         languages, default, expected):
    settings = {**SETTINGS, "LANGUAGES": languages, "DEFAULT_LANGUAGE": default}
    message = reply_in(session, make_article, email_lang, settings)
    assert message["Content-Language"] == expected
    assert said(expected, "Hello %(name)s,", name="Ann Smith") in parts(message)[0]


@pytest.mark.parametrize("subject, body, written, answered", [
    ("忘记密码", "我忘记密码了，怎么重置密码？", "zh", "zh"),
    ("パスワード", "パスワードを忘れました。どうすればリセットできますか？", "ja", "nb"),
    ("비밀번호", "비밀번호를 잊어버렸어요. 어떻게 재설정하나요?", "ko", "nb"),
    ("Passord", "Hei! Jeg har glemt passordet mitt, hva gjør jeg nå?", "nb", "nb"),
])
def test_an_email_is_answered_in_the_language_it_is_written_in(session, subject, body, written, answered):
    # Japanese and Korean share Chinese's characters for the matcher, not for a reply.
    settings = {**SETTINGS, "DEFAULT_LANGUAGE": "nb"}
    matcher = Matcher.from_articles([MatchArticle("1", "密码 パスワード 비밀번호 passord", "x")])
    decision = decide_parts(subject, body, matcher, settings)
    assert decision.email.lang == written
    record = recorded(session, decision.email, lang=decision.email.lang)
    assert compose.reply_language(record, decision.email, settings) == answered


def test_the_feedback_page_speaks_the_language_the_reply_spoke(app_factory):
    app = app_factory(DEFAULT_LANGUAGE="nb")
    solved, _ = links.make_feedback_urls("http://h", TEST_SECRET, replied_record(app, lang="fr"))
    html = app.test_client().get(path_of(solved), headers={"Accept-Language": "zh"}).text
    assert '<html lang="nb"' in html


@pytest.mark.parametrize("code", ["zh", "nb"])
def test_a_forged_or_malformed_feedback_link_is_refused_in_the_visitors_language(app, client, code):
    record_id = replied_record(app)
    forged = path_of(links.make_feedback_urls("http://h", "some-other-secret-key", record_id)[0])
    malformed = "/mail/feedback/" + Signer(TEST_SECRET, salt=links.SALT).sign(b"e30").decode()  # "{}", signed
    csrf = csrf_token_from(client.get(path_of(links.make_feedback_urls("http://h", TEST_SECRET, record_id)[0])).text)
    client.set_cookie("kb_lang", code)
    for response in (client.get(forged), client.get(malformed), client.post(forged, data={"csrf_token": csrf})):
        assert response.status_code == 400 and f'<html lang="{code}"' in response.text
        assert "not valid" not in response.text and said(code, "Bad request") in response.text
        assert said(code, "This link is not valid: it may have been cut short or altered. "
                          "Please copy the whole link from the email.") in response.text
        if code == "zh":
            assert english_words(response.text) == set()


# The emails through the real worker (pymap and aiosmtpd), as a customer gets them.

@pytest.mark.parametrize("subject, body, code", [
    ("忘记密码", "我忘记密码了，无法登录。怎么重置密码？", "zh"),
    ("Glemt passord", "Jeg har glemt passordet mitt og kan ikke logge inn. Hvordan lager jeg et nytt passord?", "nb"),
    ("Forgot my password", "I forgot my password and cannot sign in. How can I reset the password?", "en"),
])
def test_the_worker_answers_in_the_language_the_customer_wrote(app_factory, tmp_path, articles_db, pymap_server,
                                                               smtp_sink, subject, body, code):
    app = seeded_app(app_factory, tmp_path, articles_db, **pymap_server.settings(), **smtp_sink.settings())
    pymap_server.append(make_email(subject=subject, body=body, sender="Kari <kari@customer.example>"))
    assert make_worker(app).run_once()["replied"] == 1
    reply = parsed(smtp_sink.wait_for(1)[0])
    assert reply["Content-Language"] == code and records(app)[0].lang == code
    assert said(code, "Hello %(name)s,", name="Kari") in reply.get_body(("plain",)).get_content()


GERMAN = r'''msgid ""
msgstr ""
"Content-Type: text/plain; charset=utf-8\n"
"Language: de\n"

msgid "Hello %(name)s,"
msgstr "Hallo %(name)s,"

msgid "Thank you for your email. These articles may answer your question:"
msgstr "Danke für Ihre E-Mail. Diese Artikel beantworten vielleicht Ihre Frage:"

msgid "Solved: %(url)s"
msgstr "Gelöst: %(url)s"

msgid "Still need help: %(url)s"
msgstr "Ich brauche weiter Hilfe: %(url)s"

msgid "Customer support"
msgstr "Kundendienst"

msgid "Still need help: %(subject)s"
msgstr "Braucht weiter Hilfe: %(subject)s"

msgid "What they wrote:"
msgstr "Das hat die Kundin oder der Kunde geschrieben:"
'''


def test_a_fourth_language_is_a_file_for_the_emails_too(app_factory, tmp_path, articles_db, pymap_server, smtp_sink):
    folder = copy_catalogs(tmp_path)
    german = folder / "de" / "LC_MESSAGES" / "messages.po"
    german.parent.mkdir(parents=True)
    german.write_text(GERMAN, encoding="utf-8")
    app = seeded_app(app_factory, tmp_path, articles_db, LANGUAGES="en,zh,nb,de", DEFAULT_LANGUAGE="de",
                     BABEL_TRANSLATION_DIRECTORIES=str(folder), TEAM_ADDRESS="team@kb.example",
                     **pymap_server.settings(), **smtp_sink.settings())
    with session_scope(app) as session:
        kb_articles.create_article(session, kb_articles.ArticleDraft(
            "Passwort vergessen? So setzen Sie Ihr Passwort zurück", lang="de", slug="de-passwort",
            body_md="Klicken Sie auf der Anmeldeseite auf **Passwort vergessen** und folgen Sie dem Link in der "
                    "E-Mail, um ein neues Passwort zu wählen."), status="published")
    pymap_server.append(make_email(subject="Passwort vergessen", sender="Jana <jana@customer.example>",
                                   body="Ich habe mein Passwort vergessen. Wie kann ich das Passwort zurücksetzen?"))
    assert make_worker(app).run_once()["replied"] == 1
    reply = parsed(smtp_sink.wait_for(1)[0])
    text = reply.get_body(("plain",)).get_content()
    assert reply["Content-Language"] == "de" and '<html lang="de">' in reply.get_body(("html",)).get_content()
    assert "Hallo Jana," in text and "Danke für Ihre E-Mail." in text
    assert reply["From"].addresses[0].display_name == "Kundendienst"
    help_url = re.search(r"Ich brauche weiter Hilfe: (\S+)", text).group(1)
    client = app.test_client()
    page = client.get(path_of(help_url))
    assert page.status_code == 200 and '<html lang="de"' in page.text  # the page speaks the email's language
    assert client.post(path_of(help_url), data={"csrf_token": csrf_token_from(page.text)}).status_code == 200
    with session_scope(app) as session:  # the team hears of it through the follow-up case, in its language
        assert [case.lang for case in session.scalars(sa.select(Case))] == ["de"]
