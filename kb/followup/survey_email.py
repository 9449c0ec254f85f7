"""The satisfaction survey email: one link per score and one to the whole form, in the case's language.

Threaded on the customer's email when the case has one, From the support address, marked as
automatic (RFC 3834) so other robots do not answer it. Every sentence is English here and looked up
in the portal's gettext catalogs, like the auto-reply (kb/autoreply/compose.py).
"""

from __future__ import annotations

import html
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Mapping

from kb.autoreply.addresses import MAX_NAME_CHARS, reply_address
from kb.autoreply.compose import new_email, reply_subject, support_sender
from kb.autoreply.outgoing import header_text
from kb.followup.models import Case, Survey
from kb.i18n import Gettext, gettext_for

SCORES = (1, 2, 3, 4, 5)


def score_labels(_: Gettext) -> dict[int, str]:
    """What each score means, in the language of ``_`` (the email and the page share them)."""
    return {1: _("Very dissatisfied"), 2: _("Dissatisfied"), 3: _("Neither satisfied nor dissatisfied"),
            4: _("Satisfied"), 5: _("Very satisfied")}


def survey_urls(base_url: str, lang: str, token: str) -> tuple[str, dict[int, str]]:
    """(the form's address, {score: its address with that score chosen}) on the portal, in ``lang``."""
    page = f"{base_url.rstrip('/')}/{lang}/survey/{token}"
    return page, {score: f"{page}?score={score}" for score in SCORES}


def _sentences(_: Gettext, name: str, page: str, expires: datetime | None) -> dict[str, str]:
    """The email's own sentences in the language of ``_``."""
    until = f"{expires:%Y-%m-%d}" if expires else ""
    return {
        "greeting": _("Hello %(name)s,", name=name) if name else _("Hello,"),
        "intro": _("We recently helped you with your question. How satisfied are you with the help you got?"),
        "ask": _("Choose a score from 1 (very dissatisfied) to 5 (very satisfied):"),
        "comment": _("Or open the survey to add a comment: %(url)s", url=page),
        "comment_link": _("Open the survey to add a comment"),
        "note": _("Opening a link only shows the survey: your answer counts when you send it. "
                  "The links work until %(date)s.", date=until),
        "sign": _("Customer support"),
    }


def _text_body(t: Mapping[str, str], labels: Mapping[int, str], links: Mapping[int, str]) -> str:
    """The plain-text part."""
    lines = [t["greeting"], "", t["intro"], "", t["ask"], ""]
    lines += [f"{score} - {labels[score]}: {links[score]}" for score in SCORES]
    lines += ["", t["comment"], "", t["note"], "", f"-- \n{t['sign']}"]
    return "\n".join(lines) + "\n"


def _html_body(t: Mapping[str, str], labels: Mapping[int, str], page: str, links: Mapping[int, str],
               lang: str) -> str:
    """The HTML part; every piece of text is escaped."""
    e = html.escape
    parts = [f'<!DOCTYPE html><html lang="{e(lang)}"><head><meta charset="utf-8"></head><body>',
             f"<p>{e(t['greeting'])}</p>", f"<p>{e(t['intro'])}</p>", f"<p>{e(t['ask'])}</p>", "<ul>"]
    parts += [f'<li><a href="{e(links[score])}">{score} - {e(labels[score])}</a></li>' for score in SCORES]
    parts += ["</ul>", f'<p><a href="{e(page)}">{e(t["comment_link"])}</a></p>',
              f"<p>{e(t['note'])}</p>", f"<p>{e(t['sign'])}</p></body></html>"]
    return "\n".join(parts) + "\n"


def build_survey_email(case: Case, survey: Survey, settings: Mapping[str, Any], *, address: str, name: str,
                       lang: str, message_id: str, token: str, expires: datetime | None) -> EmailMessage:
    """The survey email to ``address``; Unsendable when the address cannot be written into an email."""
    _ = gettext_for(lang, settings)
    page, links = survey_urls(str(settings.get("BASE_URL") or ""), lang, token)
    labels = score_labels(_)
    t = _sentences(_, header_text(name, MAX_NAME_CHARS), page, expires)
    message = new_email(sender=support_sender(settings, _), to=reply_address(name, address),
                        subject=(reply_subject(case.thread_subject, _) if case.thread_message_id
                                 else _("How did we do?")),
                        message_id=message_id, thread_id=case.thread_message_id)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(_text_body(t, labels, links))
    message.add_alternative(_html_body(t, labels, page, links, lang), subtype="html")
    message["Content-Language"] = lang  # last: add_alternative moves Content-* headers into the first part
    return message
