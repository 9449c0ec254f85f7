"""A person answers an email from kb with one to three articles: recorded at once, sent once as a job.

``answer_email`` records the answer on the MailRecord (state "answered", who, when, which articles,
the answer's Message-ID from the form's nonce, so a double submit is one answer), teaches each
chosen article the email's question as an example (source "answered": a person judged that the
article answers it, whether or not the email then goes out), and schedules the job
"capture.answer", which sends the message by SMTP threaded on the customer's email, without
Auto-Submitted (a person wrote it). The job keeps the agent's Markdown only until it is sent;
after that only its scrubbed form stays (for "Draft an article from this email").
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Mapping, Sequence

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb import jobs
from kb.autoreply.addresses import reply_address
from kb.autoreply.compose import article_url, new_email, new_message_id, reply_sentences, reply_subject, support_sender
from kb.autoreply.models import MailRecord
from kb.autoreply.outgoing import body_text
from kb.capture import examples
from kb.capture.models import MAX_EXAMPLE
from kb.capture.scrub import found_names, scrub
from kb.errors import FieldError, NotFound, ValidationError
from kb.followup.messages import send_once
from kb.i18n import gettext_for, language_for
from kb.jobs.models import Job
from kb.models import Agent, Article, utcnow
from kb.rendering import render_markdown

KIND = "capture.answer"
ANSWERABLE = ("person", "new", "skipped")  # handed to a person, or not yet decided / left alone by kb
MAX_ARTICLES = 3
MAX_MESSAGE = 20_000
NONCE = re.compile(r"[0-9a-f]{16,64}")
# Address local parts that name a mailbox, not a person ("post@", "kundeservice@").
NOT_PERSONAL = {"info", "post", "mail", "kontakt", "contact", "support", "admin", "noreply", "no", "reply",
                "sales", "order", "orders", "service", "kundeservice", "hello", "hei", "team", "office"}


@dataclass
class Suggestion:
    """An article the matcher suggested for an email, with its score and the words behind it."""

    article: Article
    score: float
    terms: list[str] = field(default_factory=list)


def answerable(session: so.Session, record_id: int) -> MailRecord:
    """The email, if there is one; NotFound otherwise."""
    record = session.get(MailRecord, record_id) if record_id else None
    if record is None:
        raise NotFound("No such email.")
    return record


def suggestions(session: so.Session, record: MailRecord) -> list[Suggestion]:
    """The matcher's suggestions stored with the email that are still published, best first."""
    scored = [(int(m["article_id"]), float(m.get("score") or 0), list(m.get("terms") or []))
              for m in record.matches or [] if str(m.get("article_id", "")).isdigit()]
    found = {a.id: a for a in session.scalars(sa.select(Article).where(
        Article.id.in_([i for i, _, _ in scored]), Article.status == "published"))} if scored else {}
    return [Suggestion(found[i], score, terms) for i, score, terms in scored if i in found]


def chosen_articles(session: so.Session, ids: Sequence[Any]) -> list[Article]:
    """The published articles picked (1 to 3, in the order given); FieldError otherwise."""
    wanted = list(dict.fromkeys(int(i) for i in ids if str(i).isdigit() and len(str(i)) < 12))
    if not wanted:
        raise FieldError({"articles": "Choose one to three articles."})
    if len(wanted) > MAX_ARTICLES:
        raise FieldError({"articles": f"Choose at most {MAX_ARTICLES} articles."})
    found = {a.id: a for a in session.scalars(sa.select(Article).where(
        Article.id.in_(wanted), Article.status == "published"))}
    if len(found) != len(wanted):
        raise FieldError({"articles": "An article you chose is no longer published: choose again."})
    return [found[i] for i in wanted]


def chosen_articles_lenient(session: so.Session, ids: Sequence[int]) -> list[Article]:
    """The published articles among ``ids`` (a form being filled in: no errors yet)."""
    return list(session.scalars(sa.select(Article).where(Article.id.in_(list(ids)), Article.status == "published")
                                .order_by(Article.id))) if ids else []


def prefill(record: MailRecord, articles: Sequence[Article], settings: Mapping[str, Any]) -> str:
    """The message's Markdown in the email's language: the auto-reply's greeting, intro and links."""
    _ = gettext_for(language_for(record.lang, settings), settings)
    t = reply_sentences(_, "", ("", ""))
    base = str(settings.get("BASE_URL") or "")
    links = "\n".join(f"- [{_escape_md(a.title)}]({article_url(base, a)})" for a in articles)
    return f"{t['greeting']}\n\n{t['intro']}\n\n{links}\n"


def _escape_md(text: str) -> str:
    """A title as Markdown link text: brackets and backslashes escaped."""
    return re.sub(r"([\\\[\]])", r"\\\1", text)


def sender_names(record: MailRecord) -> list[str]:
    """The parts of the sender's address that are likely a name ("kari.nordmann@" → Kari, Nordmann)."""
    local = (record.from_addr or "").rpartition("@")[0].split("+")[0]
    parts = [p for p in re.split(r"[._-]", local) if p.isalpha() and len(p) > 1]
    return [p for p in parts if p.casefold() not in NOT_PERSONAL] if len(parts) > 1 else []


def record_names(record: MailRecord) -> list[str]:
    """The names to take out of anything copied from the email: the sender's, the greeting's, the signature's."""
    return sender_names(record) + found_names(record.text or "")


def question_text(record: MailRecord) -> str:
    """The email's question: its subject and cleaned text, scrubbed, cut to an example's length."""
    names = record_names(record)  # read from the text alone: its greeting is on its first line
    text = f"{scrub(record.subject or '', names)}\n{scrub(record.text or '', names)}".strip()
    text = " ".join(text.split())
    return text if len(text) <= MAX_EXAMPLE else text[:MAX_EXAMPLE].rsplit(" ", 1)[0]


def _message_id(settings: Mapping[str, Any], record: MailRecord, nonce: str) -> str:
    """The answer's Message-ID: from the form's nonce when there is one, so a double submit is one email."""
    fresh = new_message_id(str(settings.get("BASE_URL") or ""))
    if not NONCE.fullmatch(nonce or ""):
        return fresh
    return f"<answer.{record.id}.{nonce}@{fresh.rsplit('@', 1)[1]}"


def _check_message(markdown: str) -> str:
    """The message as it will be sent; FieldError when empty or too long."""
    text = body_text(markdown or "").strip()
    if not text:
        raise FieldError({"message": "Write the message."})
    if len(text) > MAX_MESSAGE:
        raise FieldError({"message": f"The message is longer than {MAX_MESSAGE:,} characters."})
    return text


def answer_email(session: so.Session, record: MailRecord, agent: Agent, article_ids: Sequence[Any], markdown: str,
                 settings: Mapping[str, Any], *, nonce: str = "") -> tuple[MailRecord, bool]:
    """Record the agent's answer, learn the examples and schedule the sending; (record, False) if done already.

    FieldError for no articles or no message; ValidationError when the email was answered already
    (by another form), is not one for a person, or has no address to answer. The caller commits.
    """
    # Taking the record's row first makes a second submit of the same form wait for the first
    # one's commit, and then see its Message-ID.
    session.execute(sa.update(MailRecord).where(MailRecord.id == record.id).values(updated_at=MailRecord.updated_at)
                    .execution_options(synchronize_session=False))
    session.refresh(record)
    message_id = _message_id(settings, record, nonce)
    if record.answer_message_id == message_id:
        return record, False
    if record.state == "answered":
        raise ValidationError("This email was answered already.")
    if record.state not in ANSWERABLE:
        raise ValidationError(f"This email is {record.state}: kb answered it or is answering it.")
    text = _check_message(markdown)
    articles = chosen_articles(session, article_ids)
    if not (record.reply_to or record.from_addr):
        raise ValidationError("This email has no address to answer.")
    record.state, record.answered_by, record.answered_at = "answered", agent.id, utcnow()
    record.answered_articles, record.answer_message_id = [a.id for a in articles], message_id
    learn_question(session, record, [a.id for a in articles], agent)
    session.flush()
    jobs.schedule(session, KIND, f"mail:{record.id}", payload={
        "record_id": record.id, "markdown": text, "answer": scrub(text, record_names(record))})
    return record, True


def learn_question(session: so.Session, record: MailRecord, article_ids: Sequence[int], agent: Agent | None) -> None:
    """Each article learns the email's question (scrubbed) as an example; an empty question teaches nothing."""
    question = question_text(record)
    if not question:
        return
    for article_id in article_ids:
        examples.learn(session, article_id, question, source="answered", lang=record.lang or "",
                       names=record_names(record), mail_record_id=record.id, agent_id=agent.id if agent else None)


def recorded_answer(session: so.Session, record: MailRecord) -> str:
    """The scrubbed answer an agent sent for the email, or "" when none was sent from kb."""
    job = session.scalar(sa.select(Job).where(Job.kind == KIND, Job.key == f"mail:{record.id}"))
    return str((job.payload or {}).get("answer") or "") if job is not None else ""


def build_answer(session: so.Session, record: MailRecord, markdown: str, settings: Mapping[str, Any],
                 message_id: str) -> EmailMessage:
    """The agent's email: text and sanitised HTML, "Re:" the subject, threaded on the customer's email."""
    lang = language_for(record.lang, settings)
    _ = gettext_for(lang, settings)
    agent = session.get(Agent, record.answered_by) if record.answered_by else None
    sender = support_sender(settings, _)
    message = new_email(sender=sender, to=reply_address("", record.reply_to or record.from_addr),
                        subject=reply_subject(record.subject, _), message_id=message_id, thread_id=record.message_id)
    signature = "\n".join(x for x in (agent.name if agent else "", sender.display_name) if x)
    message.set_content(f"{markdown}\n\n-- \n{signature}\n")
    message.add_alternative(f'<!DOCTYPE html><html lang="{html.escape(lang)}"><head><meta charset="utf-8"></head>'
                            f"<body>{render_markdown(markdown)}<p>{html.escape(signature).replace(chr(10), '<br>')}"
                            "</p></body></html>\n", subtype="html")
    message["Content-Language"] = lang
    return message


@jobs.handler(KIND)
def _send(ctx) -> None:
    """Send one answer by SMTP, then keep only its scrubbed form on the job."""
    session, settings, payload = ctx.session, ctx.settings, ctx.payload
    record = session.get(MailRecord, payload.get("record_id"))
    if record is None or record.state != "answered" or "markdown" not in payload:
        return  # the record is gone (retention, a reset): nothing to send
    message_id = ctx.message_id(lambda: record.answer_message_id or new_message_id(str(settings.get("BASE_URL") or "")))
    send_once(ctx, lambda: build_answer(session, record, payload["markdown"], settings, message_id),
              f"answer to email {record.id}")
    ctx.job.payload = {key: value for key, value in payload.items() if key != "markdown"}
