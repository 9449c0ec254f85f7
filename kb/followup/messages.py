"""An agent's message to the customer of a case: recorded at once, sent by SMTP as a job.

The message is a CaseEvent of kind "message" (its Markdown and its Message-ID); the job
"followup.message" (key "event:<id>") sends it, so a failing SMTP server is retried by the job
runner and the case page shows where it stands. It is threaded on the customer's email (In-Reply-To
and References) when the case came from one, and carries no Auto-Submitted header: a person wrote it.
"""

from __future__ import annotations

import html
import logging
import re
from email.message import EmailMessage
from typing import Any, Callable, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb import jobs
from kb.autoreply import smtp
from kb.autoreply.addresses import Unsendable, reply_address
from kb.autoreply.compose import MAX_SUBJECT_CHARS, new_email, new_message_id, reply_subject, support_sender
from kb.autoreply.outgoing import body_text, header_text
from kb.errors import FieldError, ValidationError
from kb.followup import cases
from kb.followup.customers import email_of
from kb.followup.models import Case, CaseEvent, Customer
from kb.i18n import gettext_for, language_for
from kb.models import Agent
from kb.rendering import render_markdown

log = logging.getLogger(__name__)
KIND = "followup.message"
MAX_MESSAGE = 20_000
NONCE = re.compile(r"[0-9a-f]{16,64}")
LINK = re.compile(r"https?://[^\s<>]+")


def customer_email(session: so.Session, case: Case) -> str:
    """The address a message to the case's customer goes to, or empty when kb has none."""
    return email_of(session, session.get(Customer, case.customer_id)) if case.customer_id else ""


def _message_id(settings: Mapping[str, Any], case: Case, nonce: str) -> str:
    """The message's Message-ID: from the form's nonce when there is one, so a double submit is one message."""
    fresh = new_message_id(str(settings.get("BASE_URL") or ""))
    if not NONCE.fullmatch(nonce or ""):
        return fresh
    return f"<followup.{case.id}.{nonce}@{fresh.rsplit('@', 1)[1]}"  # the domain part keeps its ">"


def with_links(markdown: str, links: str) -> str:
    """The message with the article addresses an agent pasted (one per line) added as a list of links."""
    found = [line.strip() for line in (links or "").splitlines() if LINK.fullmatch(line.strip())]
    if not found:
        return markdown
    return markdown.rstrip() + "\n\n" + "\n".join(f"- <{url}>" for url in found) + "\n"


def send_message(session: so.Session, case: Case, agent: Agent, markdown: str, settings: Mapping[str, Any],
                 *, nonce: str = "") -> tuple[CaseEvent, bool]:
    """Record the agent's message and schedule its sending; (event, False) if this form was sent already.

    FieldError when the text is empty or too long; ValidationError when the customer has no email
    address or the case is sample data. The caller commits.
    """
    text = body_text(markdown).strip()
    if not text:
        raise FieldError({"body": "Write the message."})
    if len(text) > MAX_MESSAGE:
        raise FieldError({"body": f"The message is longer than {MAX_MESSAGE:,} characters."})
    if not customer_email(session, case):
        raise ValidationError("This customer has no email address: log a phone call as a note.")
    if case.sample:
        raise ValidationError("This is a sample case: kb emails no sample customer. Log a note instead, "
                              "or remove the sample data with `kb sample remove`.")
    # Taking the case's row first makes a second submit of the same form wait for the first one's
    # commit, and then see its message (the Message-ID comes from the form's nonce).
    session.execute(sa.update(Case).where(Case.id == case.id).values(updated_at=Case.updated_at)
                    .execution_options(synchronize_session=False))
    message_id = _message_id(settings, case, nonce)
    earlier = session.scalar(sa.select(CaseEvent).where(
        CaseEvent.case_id == case.id, CaseEvent.kind == "message", CaseEvent.message_id == message_id))
    if earlier is not None:
        return earlier, False
    event = cases.record(session, case, "message", agent_id=agent.id, note=text, message_id=message_id,
                         channel="email")
    session.flush()
    jobs.schedule(session, KIND, f"event:{event.id}", payload={"event_id": event.id})
    return event, True


def subject_for(case: Case, _) -> str:
    """"Re: <the customer's subject>", or a subject of kb's own when the case did not come by email."""
    if header_text(case.thread_subject, MAX_SUBJECT_CHARS):
        return reply_subject(case.thread_subject, _)
    return _("Following up on your feedback")


def build_message(session: so.Session, case: Case, event: CaseEvent, settings: Mapping[str, Any],
                  message_id: str) -> EmailMessage:
    """The email of a message event: text and sanitised HTML, threaded on the customer's email."""
    agent = session.get(Agent, event.agent_id) if event.agent_id else None
    return compose(session, case, event.note, agent, settings, message_id)


def compose(session: so.Session, case: Case, markdown: str, agent: Agent | None, settings: Mapping[str, Any],
            message_id: str) -> EmailMessage:
    """An agent's email to the case's customer: text and sanitised HTML, threaded on the customer's email.

    In the case's language, signed with the agent's name, with no Auto-Submitted header (a person
    wrote it). Shared by messages and by service recovery's gestures, so both thread the same way.
    """
    lang = language_for(case.lang, settings)
    _ = gettext_for(lang, settings)
    customer = session.get(Customer, case.customer_id) if case.customer_id else None
    sender = support_sender(settings, _)
    message = new_email(sender=sender, to=reply_address(customer.name if customer else "", customer_email(session, case)),
                        subject=subject_for(case, _), message_id=message_id, thread_id=case.thread_message_id)
    signature = "\n".join(x for x in (agent.name if agent else "", sender.display_name) if x)
    message.set_content(f"{markdown}\n\n-- \n{signature}\n")
    body = render_markdown(markdown)
    message.add_alternative(f'<!DOCTYPE html><html lang="{html.escape(lang)}"><head><meta charset="utf-8"></head>'
                            f"<body>{body}<p>{html.escape(signature).replace(chr(10), '<br>')}</p></body></html>\n",
                            subtype="html")
    message["Content-Language"] = lang
    return message


def send_once(ctx, build: Callable[[], EmailMessage], what: str) -> None:
    """Build a customer's email and send it as the job's one outside effect, never twice.

    An address that cannot be written into an email fails the job for good (SendRefused); an
    uncertain send (the server may have taken it) is not repeated, as that could make two.
    """
    try:
        message = build()
    except Unsendable as exc:
        raise smtp.SendRefused(f"The customer's address cannot be written into an email: {exc}") from None

    def deliver() -> None:
        try:
            smtp.send(message, ctx.settings)
        except smtp.SendUncertain:
            log.warning("%s may not have arrived; not sending it again", what)

    ctx.deliver(deliver)


@jobs.handler(KIND)
def _send(ctx) -> None:
    """Send one message event by SMTP, then mark its case contacted."""
    session, settings = ctx.session, ctx.settings
    event = session.get(CaseEvent, ctx.payload.get("event_id"))
    case = session.get(Case, event.case_id) if event is not None and event.case_id else None
    if case is None:
        return  # the case was deleted: nothing to send
    message_id = ctx.message_id(lambda: event.message_id or new_message_id(str(settings.get("BASE_URL") or "")))
    send_once(ctx, lambda: build_message(session, case, event, settings, message_id), f"follow-up message {event.id}")
    if case.state != "contacted":
        cases.change_state(session, case, "contact", agent_id=event.agent_id, note="Message sent by email.")
