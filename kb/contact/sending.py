"""The "contact.send" job: a contact-form question to the support mailbox, by SMTP, once.

The email goes To KB_SUPPORT_ADDRESS, From the support address (the customer's own domain would
fail SPF and DMARC) with the customer's name, Reply-To the customer, so a plain "Reply" in the
team's mail client answers them. It carries the signed marker (kb.contact.marker), by which the
mail worker knows the copy is no new question. Sent through kb.jobs like every timed effect: an
SMTP server that is down loses nothing, the runner tries again (JOBS_RETRY_SECONDS, growing).
Written in KB_DEFAULT_LANGUAGE, like the team's alerts.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb import jobs
from kb.autoreply.addresses import reply_address
from kb.autoreply.compose import MAX_SUBJECT_CHARS, article_url, new_email, new_message_id
from kb.autoreply.models import MailRecord
from kb.autoreply.outgoing import body_text, header_text
from kb.contact import marker
from kb.contact.asking import KIND
from kb.errors import ConfigError
from kb.followup.messages import send_once
from kb.i18n import default_language, gettext_for, language_name
from kb.models import Article


def _articles(session: so.Session, record: MailRecord, base_url: str) -> list[str]:
    """"- Title <url>" for each article kb matched that is still published, best first."""
    ids = [int(m["article_id"]) for m in record.matches or [] if str(m.get("article_id", "")).isdigit()][:3]
    found = {a.id: a for a in session.scalars(sa.select(Article).where(
        Article.id.in_(ids), Article.status == "published"))} if ids else {}
    return [f"- {found[i].title} <{article_url(base_url, found[i])}>" for i in ids if i in found]


def _footer(session: so.Session, record: MailRecord, name: str, settings: Mapping[str, Any], _) -> list[str]:
    """What the team needs beside the question: who, which language, what kb suggested."""
    lines = [_("Sent with the help centre's contact form (question #%(id)s).", id=record.id),
             _("Name: %(name)s", name=name or "-"), _("Email: %(address)s", address=record.reply_to),
             _("Language: %(language)s", language=language_name(record.lang) if record.lang else "-")]
    if record.resolution == "still_need_help":
        lines.append(_("kb showed the customer an answer first; they said it did not answer their question."))
    articles = _articles(session, record, str(settings.get("BASE_URL") or ""))
    if articles:
        lines += ["", _("Articles kb suggested:"), *articles]
    return lines + ["", _("Reply to this email to answer the customer.")]


def build_message(session: so.Session, record: MailRecord, name: str, settings: Mapping[str, Any],
                  message_id: str) -> EmailMessage:
    """The question as an email to the support mailbox: text and HTML, marked, Reply-To the customer."""
    _ = gettext_for(default_language(settings), settings)
    support = str(settings.get("SUPPORT_ADDRESS") or "")
    if not support:
        raise ConfigError("Set KB_SUPPORT_ADDRESS: contact-form questions are sent to it.")
    sender = reply_address(_("%(name)s via the contact form", name=name or record.reply_to), support)
    message = new_email(sender=sender, to=reply_address("", support),
                        subject=header_text(record.subject, MAX_SUBJECT_CHARS) or _("Question from the contact form"),
                        message_id=message_id)
    message["Reply-To"] = reply_address(name, record.reply_to)
    message[marker.HEADER] = marker.make(str(settings["SECRET_KEY"]), record.id)
    question = body_text(record.text)
    footer = _footer(session, record, body_text(name), settings, _)
    message.set_content(question + "\n\n-- \n" + "\n".join(footer) + "\n")
    paragraphs = "".join(f"<p>{html.escape(part).replace(chr(10), '<br>')}</p>"
                         for part in question.split("\n\n") if part.strip())
    message.add_alternative(f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>{paragraphs}<hr>'
                            f"<p>{'<br>'.join(html.escape(line) for line in footer)}</p></body></html>\n",
                            subtype="html")
    return message


@jobs.handler(KIND)
def _send(ctx) -> None:
    """Send one contact-form question to the support mailbox (its record may be gone: then nothing)."""
    session, settings = ctx.session, ctx.settings
    record = session.get(MailRecord, ctx.payload.get("record_id"))
    if record is None or record.channel != "web_form":
        return
    name = str(ctx.payload.get("name") or "")
    message_id = ctx.message_id(lambda: record.message_id or new_message_id(str(settings.get("BASE_URL") or "")))
    send_once(ctx, lambda: build_message(session, record, name, settings, message_id),
              f"contact-form question {record.id}")
