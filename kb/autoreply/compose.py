"""The emails kb writes: the auto-reply to a customer and the alert to the team.

Replies are multipart text + HTML, threaded (In-Reply-To, References), marked as automatic
(RFC 3834 Auto-Submitted, and X-Auto-Response-Suppress for Exchange) so other robots do not
answer them, and carry a Message-ID at the host of KB_BASE_URL that kb remembers. Headers are
written with the email package's address objects under policy.SMTP: display names and subjects
in RFC 2047 words, domains in IDNA. Whatever kb copies from the customer's email passes through
kb.autoreply.outgoing first, so any string makes a valid message. Every sentence is written in
English here and looked up in the portal's gettext catalogs (kb.i18n.gettext_for): the reply in
the email's language (kb.i18n.language_for), the alert in KB_DEFAULT_LANGUAGE.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Mapping, Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.addresses import MAX_NAME_CHARS, Unsendable, needs_smtputf8 as _non_ascii, reply_address
from kb.autoreply.cleaning import clean_subject
from kb.autoreply.decision import relative_cut, shown_count
from kb.autoreply.models import MailRecord
from kb.autoreply.outgoing import body_text, header_text, quote_lines, readable, thread_headers
from kb.autoreply.parsing import ParsedEmail
from kb.autoreply.rules import domain_of_base_url
from kb.errors import ConfigError
from kb.i18n import Gettext, default_language, gettext_for, language_for
from kb.models import Article
from kb.render_cache import article_text

__all__ = ["Unsendable", "build_reply", "message_bytes", "needs_smtputf8", "reply_language",
           "suggested_articles"]

EXCERPT_CHARS = 160  # about two lines of a mail client
MAX_ARTICLES = 3
QUOTE_LINES = 4  # of the customer's question, quoted at the top of the reply
QUOTE_CHARS = 300
MAX_SUBJECT_CHARS = 200
POLICY = SMTP  # CRLF line ends; non-ASCII header text as RFC 2047 encoded words
REPLY_PREFIX = "Re: "  # the same in every language, as RFC 5322 3.6.5 asks
ALERT_TAG = "[kb] "  # the team's mail filters find alerts by it, whatever the language


def new_message_id(base_url: str) -> str:
    """A fresh Message-ID at the host of KB_BASE_URL, so replies to it are recognised as ours."""
    return f"<{uuid.uuid4().hex}@{domain_of_base_url(base_url) or 'kb.invalid'}>"


def excerpt(article: Article, chars: int = EXCERPT_CHARS) -> str:
    """About two lines of the article's text, cut at a word."""
    text = article_text(article)
    if len(text) <= chars:
        return text
    cut = text[:chars].rsplit(" ", 1)[0] if " " in text[:chars] else text[:chars]
    return cut.rstrip(" ,.;:") + "…"


def suggested_articles(session: so.Session, record: MailRecord,
                       settings: Mapping[str, Any] | None = None) -> list[tuple[Article, str]]:
    """The record's matched articles worth showing that are still published, with excerpts, best first.

    An article far below the best one (under AUTOREPLY_RELATIVE_CUT of its score) is not shown.
    """
    matches = [m for m in record.matches if str(m.get("article_id", "")).isdigit()]
    shown = shown_count([float(m.get("score") or 0) for m in matches], relative_cut(settings or {}))
    ids = [int(m["article_id"]) for m in matches[:shown]]
    found = {a.id: a for a in session.scalars(sa.select(Article).where(
        Article.id.in_(ids), Article.status == "published"))}
    return [(found[i], excerpt(found[i])) for i in ids if i in found][:MAX_ARTICLES]


def article_url(base_url: str, article: Article) -> str:
    """The article's public address."""
    return f"{base_url.rstrip('/')}/articles/{article.slug}"


def support_sender(settings: Mapping[str, Any], _: Gettext) -> Address:
    """KB_SUPPORT_NAME <KB_SUPPORT_ADDRESS>; without a name, "Customer support" in the email's language."""
    address = str(settings.get("SUPPORT_ADDRESS") or "")
    try:
        return reply_address(settings.get("SUPPORT_NAME") or _("Customer support"), address)
    except Unsendable:
        raise ConfigError(f"KB_SUPPORT_ADDRESS {address!r} is not an email address: set it to the "
                          "support mailbox's address.") from None


def reply_sentences(_: Gettext, name: str, links: tuple[str, str]) -> dict[str, str]:
    """The reply's own sentences in the language of ``_``, for both its parts."""
    return {
        "greeting": _("Hello %(name)s,", name=name) if name else _("Hello,"),
        "quote_label": _("You wrote:"),
        "intro": _("Thank you for your email. These articles may answer your question:"),
        "ask": _("Did this solve it? Let us know with one click:"),
        "solved": _("Solved"),
        "help": _("Still need help"),
        "solved_line": _("Solved: %(url)s", url=links[0]),
        "help_line": _("Still need help: %(url)s", url=links[1]),
        "note": _('This is an automatic reply. If the articles do not help, choose "Still need help" '
                  "and a person from our team will answer you."),
        "sign": _("Customer support"),
    }


def _text_body(t: Mapping[str, str], quote: Sequence[str], items: Sequence[tuple[str, str, str]]) -> str:
    """The plain-text part."""
    lines = [t["greeting"], ""]
    if quote:
        lines += [t["quote_label"], *(f"> {line}" for line in quote), ""]
    lines += [t["intro"], ""]
    for title, snippet, url in items:
        lines += [f"* {title}", *([f"  {snippet}"] if snippet else []), f"  {url}", ""]
    lines += [t["ask"], t["solved_line"], t["help_line"], "", t["note"], "", f"-- \n{t['sign']}"]
    return "\n".join(lines) + "\n"


def _html_body(t: Mapping[str, str], quote: Sequence[str], items: Sequence[tuple[str, str, str]],
               links: tuple[str, str], lang: str) -> str:
    """The HTML part; every piece of text is escaped."""
    e = html.escape
    parts = [f'<!DOCTYPE html><html lang="{e(lang)}"><head><meta charset="utf-8"></head><body>',
             f"<p>{e(t['greeting'])}</p>"]
    if quote:
        parts += [f"<p>{e(t['quote_label'])}</p>",
                  '<blockquote style="margin:0 0 1em;padding-left:1em;border-left:3px solid #ccc;color:#555">'
                  + "<br>".join(e(line) for line in quote) + "</blockquote>"]
    parts += [f"<p>{e(t['intro'])}</p>", "<ul>"]
    for title, snippet, url in items:
        parts.append(f'<li><a href="{e(url)}">{e(title)}</a>' + (f"<br>{e(snippet)}" if snippet else "") + "</li>")
    parts += ["</ul>", f"<p>{e(t['ask'])}</p>",
              f'<p><a href="{e(links[0])}">{e(t["solved"])}</a> &nbsp;|&nbsp; '
              f'<a href="{e(links[1])}">{e(t["help"])}</a></p>',
              f"<p>{e(t['note'])}</p>", f"<p>{e(t['sign'])}</p></body></html>"]
    return "\n".join(parts) + "\n"


def reply_subject(subject: str, _: Gettext) -> str:
    """"Re: <subject without its Re:/Fwd: prefixes>", or a default when the subject is empty."""
    return REPLY_PREFIX + (header_text(clean_subject(readable(subject)), MAX_SUBJECT_CHARS)
                           or _("Your question to support"))


def reply_language(record: MailRecord, original: ParsedEmail | None, settings: Mapping[str, Any]) -> str:
    """The email's language if KB_LANGUAGES offers it, else KB_DEFAULT_LANGUAGE (kb.i18n.language_for)."""
    return language_for(record.lang or (original.lang if original else None), settings)


def _recipient(record: MailRecord, original: ParsedEmail | None) -> Address:
    """Where the reply goes (Reply-To, else From), with the sender's name when it goes to the sender."""
    address = (original.reply_to if original else "") or record.reply_to or record.from_addr
    sender = original.from_addr if original else record.from_addr
    same = readable(address).strip().lower() == readable(sender).strip().lower()
    return reply_address(original.from_name if original and same else "", address)


def new_email(*, sender: Address, to: Address | str, subject: str, message_id: str, thread_id: str = "",
              references: Sequence[str] = ()) -> EmailMessage:
    """An email with the headers every email kb sends shares: addresses, subject, threading, id, date.

    ``thread_id`` is the Message-ID of the email it answers (empty: it starts a thread).
    """
    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    in_reply_to, refs = thread_headers(thread_id, list(references))
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = refs
    message["Message-ID"] = message_id
    message["Date"] = formatdate(localtime=False, usegmt=True)
    return message


def build_reply(record: MailRecord, original: ParsedEmail | None, articles: Sequence[tuple[Article, str]],
                *, settings: Mapping[str, Any], links: tuple[str, str], message_id: str) -> EmailMessage:
    """The auto-reply; without ``original`` (a retry) the record's own fields thread it.

    Unsendable when the customer's address cannot be written into an email.
    """
    lang = reply_language(record, original, settings)
    _ = gettext_for(lang, settings)
    name = header_text(original.from_name, MAX_NAME_CHARS) if original else ""
    t = reply_sentences(_, name, links)
    base_url = settings.get("BASE_URL") or ""
    items = [(a.title, snippet, article_url(base_url, a)) for a, snippet in articles[:MAX_ARTICLES]]
    quote = quote_lines(original.clean_text if original else record.text, QUOTE_LINES, QUOTE_CHARS)
    message = new_email(sender=support_sender(settings, _), to=_recipient(record, original),
                        subject=reply_subject(original.subject if original else record.subject, _),
                        message_id=message_id,
                        thread_id=(original.message_id if original else "") or record.message_id,
                        references=original.references if original else ())
    message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(_text_body(t, quote, items))
    message.add_alternative(_html_body(t, quote, items, links, lang), subtype="html")
    # Set last: add_alternative moves every Content-* header of the message into its first part.
    message["Content-Language"] = lang
    return message


def needs_smtputf8(message: EmailMessage) -> bool:
    """True when an address of the message can only go through an SMTPUTF8 server."""
    return any(_non_ascii(address.addr_spec) for name in ("From", "To", "Cc", "Reply-To")
               for header in message.get_all(name, []) for address in getattr(header, "addresses", ()))


def message_bytes(message: EmailMessage) -> bytes:
    """The message as it is sent (for the Sent folder): raw UTF-8 headers only where an address needs them."""
    return message.as_bytes(policy=POLICY.clone(utf8=True) if needs_smtputf8(message) else POLICY)
