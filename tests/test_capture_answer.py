"""Answering an email from /agent/mail with articles, and drafting an article from an email.

Real parts: the Flask test client (CSRF on), the job runner driven by ``jobs.run_due``, and an
aiosmtpd sink that receives what kb sends.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy

import pytest
import sqlalchemy as sa

from kb import jobs
from kb.autoreply import ledger
from kb.autoreply.matcher import Match
from kb.autoreply.models import MailRecord
from kb.capture import answering
from kb.capture.models import ExampleQuestion
from kb.db import session_scope
from kb.jobs.models import Job
from kb.models import Agent, Article, utcnow
from tests.agent_helpers import EDITOR, login, make_agent, token

SUPPORT = "sam@example.com"
QUESTION = ("Hi Kari,\nWhere is my parcel? Order 20261234 was paid with card 4111 1111 1111 1111.\n"
            "Call me on +47 912 34 567 or mail ola.nordmann@example.org.\nThanks,\nOla Nordmann")
PERSONAL = ["20261234", "4111", "912 34", "@example.org", "Ola", "Nordmann", "Kari"]


def make_record(app, n: int, *, state: str = "person", lang: str = "en", text: str = QUESTION,
                subject: str = "Where is my parcel 20261234?", matches=()) -> int:
    """An email kb handed to a person (or left in ``state``), with the matcher's suggestions; its id."""
    with session_scope(app) as session:
        rec = ledger.claim(session, dedupe_key=f"<{n}@x>", message_id=f"<orig-{n}@customer.example>",
                           folder="INBOX", uidvalidity=1, uid=n, from_addr="ola.nordmann@example.org",
                           reply_to="ola.nordmann@example.org", subject=subject, text=text)
        if state != "new":
            ledger.record_decision(session, rec, "skip" if state == "skipped" else "person",
                                   "low-score: best score 0.150", list(matches), lang)
        session.commit()
        return rec.id


@pytest.fixture
def mail_app(app_factory, smtp_sink):
    """An app sending through the SMTP sink, two published articles, a support agent logged in."""
    app = app_factory(**smtp_sink.settings(SUPPORT_NAME="Fjellstad Support", BASE_URL="https://help.example.com"))
    with session_scope(app) as session:
        from kb.articles import ArticleDraft, create_article
        for title, body in (("Track your parcel", "Open **Orders** and choose *Track*."),
                            ("Returns and refunds", "Send the parcel back within 30 days for a refund.")):
            create_article(session, ArticleDraft(title=title, body_md=body), status="published")
        session.commit()
        app.article_ids = list(session.scalars(sa.select(Article.id).order_by(Article.id)))
    from kb import search
    search.process_outbox(app)
    make_agent(app, SUPPORT, name="Sam Support", role="support")
    app.client = app.test_client()
    login(app.client, SUPPORT)
    return app


def form_of(client, url: str) -> dict:
    """The answer form's CSRF token and nonce."""
    html = client.get(url).text
    return {"csrf_token": token(client, url), "nonce": re.search(r'name="nonce" value="([0-9a-f]+)"', html).group(1)}


def test_answering_sends_one_threaded_reply_and_teaches_the_articles(mail_app, smtp_sink):
    app, client = mail_app, mail_app.client
    track, refunds = app.article_ids
    record_id = make_record(app, 1, matches=[Match(str(track), 0.42, ["parcel"])])
    url = f"/agent/mail/{record_id}/answer"
    page = client.get(url).text
    assert 'id="pick-%d"' % track in page and "0.42" in page and "why: parcel" in page
    assert 'id="pick-%d"' % refunds not in page
    assert 'id="pick-%d"' % refunds in client.get(f"{url}?q=refund").text  # the search box finds others
    form = form_of(client, url)
    prepared = client.post(url, data={**form, "article": [str(track), str(refunds)], "action": "prepare"})
    assert prepared.status_code == 200
    message = re.search(r'id="answer-message"[^>]*>([^<]*)</textarea>', prepared.text).group(1)
    assert message.startswith("Hello,") and "https://help.example.com/articles/track-your-parcel" in message
    data = {**form, "article": [str(track), str(refunds)], "action": "send",
            "message": "Hello,\n\nYour parcel is on its way: see **[Track your parcel]"
                       "(https://help.example.com/articles/track-your-parcel)**.<script>x()</script>"}
    assert client.post(url, data=data).status_code == 303
    assert client.post(url, data=data).status_code == 303  # a double submit: one answer
    jobs.run_due(app)
    jobs.run_due(app)
    mail = smtp_sink.wait_for(1)
    assert len(mail) == 1 and mail[0].rcpt_tos == ["ola.nordmann@example.org"]
    sent = message_from_bytes(mail[0].data, policy=policy.default)
    assert sent["In-Reply-To"] == "<orig-1@customer.example>" == sent["References"]
    assert sent["Subject"] == "Re: Where is my parcel 20261234?" and sent["Auto-Submitted"] is None
    assert sent["From"] == "Fjellstad Support <support@kb.example>"
    assert "Sam Support" in sent.get_body(("plain",)).get_content()
    html = sent.get_body(("html",)).get_content()
    assert "<strong>" in html and "<script" not in html
    with session_scope(app) as session:
        record = session.get(MailRecord, record_id)
        agent = session.scalar(sa.select(Agent).where(Agent.email == SUPPORT))
        assert (record.state, record.answered_by, record.answered_articles) == ("answered", agent.id, [track, refunds])
        assert sent["Message-ID"] == record.answer_message_id and record.answered_at is not None
        learnt = session.scalars(sa.select(ExampleQuestion).order_by(ExampleQuestion.article_id)).all()
        assert [e.article_id for e in learnt] == [track, refunds]
        assert all(e.source == "answered" and e.mail_record_id == record_id and e.agent_id == agent.id for e in learnt)
        assert "Where is my parcel" in learnt[0].text
        assert not [p for p in PERSONAL if p in learnt[0].text], learnt[0].text
        job = session.scalar(sa.select(Job).where(Job.kind == answering.KIND))
        assert "markdown" not in job.payload and "Your parcel is on its way" in job.payload["answer"]
    assert "Answered by a person" in client.get(url).text
    assert "Sam Support" in client.get(url).text


def test_a_refused_send_is_retried_and_goes_out_once(mail_app, smtp_sink):
    app, client = mail_app, mail_app.client
    record_id = make_record(app, 2, lang="nb")
    url = f"/agent/mail/{record_id}/answer"
    data = {**form_of(client, url), "article": str(app.article_ids[0]), "action": "send", "message": "Hei!"}
    assert client.post(url, data=data).status_code == 303
    smtp_sink.refuse = "451 4.3.0 try later"
    jobs.run_due(app)
    assert smtp_sink.messages == []
    smtp_sink.refuse = None
    with session_scope(app) as session:
        session.execute(sa.update(Job).where(Job.kind == answering.KIND).values(run_at=utcnow()))
        session.commit()
    jobs.run_due(app)
    jobs.run_due(app)
    assert len(smtp_sink.wait_for(1)) == 1
    assert message_from_bytes(smtp_sink.messages[0].data, policy=policy.default)["Content-Language"] == "nb"


def test_a_second_answer_to_an_answered_email_is_refused(mail_app):
    app, client = mail_app, mail_app.client
    record_id = make_record(app, 3)
    url = f"/agent/mail/{record_id}/answer"
    first = {**form_of(client, url), "article": str(app.article_ids[0]), "action": "send", "message": "One"}
    client.post(url, data=first)
    other = {**first, "nonce": "ab" * 16, "csrf_token": token(client, "/agent/mail")}
    assert client.post(url, data=other, follow_redirects=True).status_code == 200
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.kind == answering.KIND)) == 1


def test_the_form_says_what_is_missing_without_javascript(mail_app):
    app, client = mail_app, mail_app.client
    record_id = make_record(app, 4)
    url = f"/agent/mail/{record_id}/answer"
    for data, error in (({"action": "prepare"}, "Choose one to three articles."),
                        ({"action": "send", "article": [str(i) for i in app.article_ids] + ["7", "8"],
                          "message": "x"}, "Choose at most 3 articles."),
                        ({"action": "send", "article": str(app.article_ids[0]), "message": "  "}, "Write the message.")):
        response = client.post(url, data={**form_of(client, url), **data})
        assert response.status_code == 422 and error in response.text, response.text[-2000:]
    with session_scope(app) as session:
        assert session.get(MailRecord, record_id).state == "person"


def test_the_message_is_prefilled_in_the_emails_language(mail_app):
    with session_scope(mail_app) as session:
        articles = session.scalars(sa.select(Article)).all()
        for lang, greeting in (("nb", "Hei,"), ("zh", "您好，"), ("en", "Hello,")):
            record = session.get(MailRecord, make_record(mail_app, 10 + len(lang) + ord(lang[0]), lang=lang))
            text = answering.prefill(record, articles, mail_app.config)
            assert text.startswith(greeting) and text.count("https://help.example.com/articles/") == 2


def test_editors_may_neither_answer_nor_draft(mail_app):
    record_id = make_record(mail_app, 5)
    make_agent(mail_app, EDITOR, role="editor")
    client = mail_app.test_client()
    login(client, EDITOR)
    csrf = token(client, "/agent/")
    for method, url in (("get", "answer"), ("post", "answer"), ("get", "draft"), ("post", "draft")):
        response = getattr(client, method)(f"/agent/mail/{record_id}/{url}", data={"csrf_token": csrf})
        assert response.status_code == 403, (method, url)
    assert "Answer with articles" not in client.get("/agent/mail").text
    assert "Answer with articles" in mail_app.client.get("/agent/mail").text


def test_similar_articles_are_offered_before_a_draft_without_personal_data_is_made(mail_app):
    app, client = mail_app, mail_app.client
    track = app.article_ids[0]
    record_id = make_record(app, 6, matches=[Match(str(track), 0.31, ["parcel"])])
    url = f"/agent/mail/{record_id}/draft"
    page = client.get(url).text
    assert f'href="/agent/articles/{track}/edit" class="improve"' in page and "0.31" in page
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Article)) == 2  # nothing made by looking
    csrf = token(client, url)
    created = client.post(url, data={"csrf_token": csrf})
    again = client.post(url, data={"csrf_token": csrf})
    assert created.status_code == again.status_code == 303 and created.location == again.location
    with session_scope(app) as session:
        draft = session.scalar(sa.select(Article).where(Article.status == "draft"))
        text = f"{draft.title}\n{draft.body_md}"
        assert "Where is my parcel" in draft.title and "Where is my parcel?" in draft.body_md
        assert not [p for p in PERSONAL if p in text], text
        assert "[number]" in text and "[phone]" in text and "[email]" in text
        example = session.scalar(sa.select(ExampleQuestion).where(ExampleQuestion.article_id == draft.id))
        assert example.mail_record_id == record_id and example.source == "answered"
    assert created.location.endswith(f"/agent/articles/{draft.id}/edit")


def test_a_draft_after_an_answer_carries_the_answer_scrubbed(mail_app):
    app, client = mail_app, mail_app.client
    record_id = make_record(app, 7, lang="nb", subject="Pakken min", text="Hei Ola!\nHvor er pakken? Ordre 55512345.\nMvh\nKari Hansen")
    url = f"/agent/mail/{record_id}/answer"
    client.post(url, data={**form_of(client, url), "article": str(app.article_ids[0]), "action": "send",
                           "message": "Hei Kari,\n\nPakken kommer i morgen. Ring 22 33 44 55 om den ikke gjør det."})
    client.post(f"/agent/mail/{record_id}/draft", data={"csrf_token": token(client, url)})
    with session_scope(app) as session:
        draft = session.scalar(sa.select(Article).where(Article.status == "draft"))
        assert draft.lang == "nb" and "Pakken kommer i morgen" in draft.body_md
        assert not [p for p in ("Kari", "Hansen", "Ola", "55512345", "22 33 44 55") if p in draft.body_md], draft.body_md


def test_any_text_in_the_answer_and_draft_pages_gets_an_answer(mail_app, smtp_sink):
    from tests.test_followup_hostile import VALUES, query, send

    app, client = mail_app, mail_app.client
    record_id = make_record(app, 8, text="Hei " + "\u202e" * 3 + "\x00 Kari,\nNUL\x00 and \ud800?", lang="\u202e")
    url = f"/agent/mail/{record_id}/answer"
    csrf = token(client, url)
    good = {"article": str(app.article_ids[0]), "action": "prepare", "message": "Hello", "nonce": "cd" * 16}
    for name in ("article", "message", "nonce", "action"):
        for value in VALUES[::3]:  # every third: each kind of piece, at a third of the cost
            response = send(client, url, {**good, name: value}, csrf)
            assert response.status_code < 500, (name, repr(value[:80]), response.status_code)
    for value in VALUES[::3]:
        for name in ("q", "article"):
            assert client.get(f"{url}?{query({name: value})}").status_code < 500, (name, repr(value[:80]))
    assert send(client, f"/agent/mail/{record_id}/draft", {"csrf_token": csrf}).status_code == 303
    assert client.get(f"/agent/mail/{record_id}/draft").status_code == 200
    sent = send(client, url, {**good, "action": "send", "message": "\u202e<b>x</b>\x00"}, csrf)
    assert sent.status_code == 303
    with session_scope(app) as session:
        assert session.get(MailRecord, record_id).state == "answered"
    jobs.run_due(app)
    assert len(smtp_sink.wait_for(1)) == 1  # hostile words still make one sendable email
