"""The "Solved" source of example questions: an auto-reply the customer marked "Solved".

The customer's question (subject and cleaned text) becomes an example of the **top** article the
reply suggested, not of every article it listed: "Solved" speaks for the reply as a whole, and the
top article is the one kb was confident about (the reply was sent because of its score and its lead
over the next). Teaching the second or third article a question it may not answer would make the
matcher's nearest-neighbour channel and portal search worse, not better.
"""

from __future__ import annotations

import logging
import re

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.models import MailRecord
from kb.capture import examples
from kb.capture.models import MAX_EXAMPLE, ExampleQuestion
from kb.errors import FieldError, NotFound

log = logging.getLogger(__name__)
NAME_PART = re.compile(r"[^\W\d_]{2,}")


def sent_top_article(record: MailRecord) -> int | None:
    """The id of the best article the record's auto-reply suggested, or None if no reply was sent."""
    if not record.reply_message_id:
        return None
    for match in record.matches or []:
        article_id = str(match.get("article_id", "")) if isinstance(match, dict) else ""
        if article_id.isdigit():
            return int(article_id)  # matches are kept best first, and the reply shows the best first
    return None


def sender_names(record: MailRecord) -> list[str]:
    """Name parts to scrub: a "first.last" mailbox's local part, split at dots, dashes and underscores.

    The record keeps the sender's address, not the display name; "kari.nordmann@…" is how most
    customers' addresses carry their names. A one-word local part ("support@", "kari88@") is left
    alone: it is as likely a word of the question as a name.
    """
    local = (record.from_addr or "").partition("@")[0]
    parts = re.split(r"[._-]+", local)
    return [part for part in parts if NAME_PART.fullmatch(part)] if len(parts) >= 2 else []


def question_of(record: MailRecord) -> str:
    """The customer's question as one line: subject and cleaned text, cut to fit an example."""
    text = " ".join(" ".join(part.split()) for part in (record.subject or "", record.text or "") if part.strip())
    limit = MAX_EXAMPLE // 2  # a long email is mostly context; its start holds the question
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0]


def learn_from_solved(session: so.Session, record: MailRecord) -> ExampleQuestion | None:
    """Keep the question of a "Solved" auto-reply as an example of its top article; None if there is
    nothing to learn. The same record gives the same example once however often it is called; the
    caller commits."""
    if record.resolution != "solved":
        return None
    article_id = sent_top_article(record)
    if article_id is None:
        return None
    try:
        return examples.learn(session, article_id, question_of(record), source="solved", lang=record.lang or "",
                              names=sender_names(record), mail_record_id=record.id)
    except (FieldError, NotFound):  # an empty question, or the article was deleted since
        log.info("mail record %s: marked solved, nothing to learn", record.id)
        return None


def forget_unsolved(session: so.Session, record: MailRecord) -> int:
    """After "Still need help" overrode "Solved": remove the examples that click taught; how many."""
    if record.resolution != "still_need_help":
        return 0
    ids = list(session.scalars(sa.select(ExampleQuestion.id).where(
        ExampleQuestion.mail_record_id == record.id, ExampleQuestion.source == "solved")))
    for example_id in ids:
        examples.forget(session, example_id)
    return len(ids)
