"""The emails kb writes: the auto-reply to a customer and the alert to the team.

Replies are multipart text + HTML, threaded (In-Reply-To, References), marked as automatic
(RFC 3834 Auto-Submitted, and X-Auto-Response-Suppress for Exchange) so other robots do not
answer them, and carry a Message-ID at the host of KB_BASE_URL that kb remembers.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import formatdate
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.cleaning import clean_subject
from kb.autoreply.models import MailRecord
from kb.autoreply.parsing import ParsedEmail
from kb.autoreply.rules import domain_of_base_url
from kb.autoreply.textproc import normalise_lang
from kb.models import Article
from kb.render_cache import article_text

EXCERPT_CHARS = 160  # about two lines of a mail client
MAX_ARTICLES = 3
TEXTS: dict[str, dict[str, str]] = {
    "en": {"hello": "Hello,", "hello_name": "Hello {name},", "subject": "Your question to support",
           "intro": "Thank you for your email. These articles may answer your question:",
           "ask": "Did this solve it? Let us know with one click:",
           "solved": "Solved", "help": "Still need help",
           "note": "This is an automatic reply. If the articles do not help, choose \"Still need help\" "
                   "and a person from our team will answer you.",
           "sign": "Customer support"},
    "zh": {"hello": "您好，", "hello_name": "{name}，您好：", "subject": "您的咨询",
           "intro": "感谢您的来信。以下文章或许能解答您的问题：",
           "ask": "问题解决了吗？请点击告诉我们：",
           "solved": "已解决", "help": "仍需帮助",
           "note": "这是一封自动回复邮件。如果这些文章没有帮助，请点击“仍需帮助”，我们的工作人员会回复您。",
           "sign": "客户支持"},
    "nb": {"hello": "Hei,", "hello_name": "Hei {name},", "subject": "Spørsmålet ditt til kundeservice",
           "intro": "Takk for e-posten din. Disse artiklene kan svare på spørsmålet ditt:",
           "ask": "Ble problemet løst? Gi oss beskjed med ett klikk:",
           "solved": "Løst", "help": "Trenger fortsatt hjelp",
           "note": "Dette er et automatisk svar. Hvis artiklene ikke hjelper, velg «Trenger fortsatt hjelp», "
                   "så svarer en av oss deg.",
           "sign": "Kundeservice"},
}


def template_lang(lang: str | None) -> str:
    """The reply language: the email's when kb has a template for it ("no" is nb), else en."""
    code = normalise_lang(lang) or ""
    return code if code in TEXTS else "en"


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


def suggested_articles(session: so.Session, record: MailRecord) -> list[tuple[Article, str]]:
    """The record's matched articles that are still published, with excerpts, best first."""
    ids = [int(m["article_id"]) for m in record.matches if str(m.get("article_id", "")).isdigit()]
    found = {a.id: a for a in session.scalars(sa.select(Article).where(
        Article.id.in_(ids), Article.status == "published"))}
    return [(found[i], excerpt(found[i])) for i in ids if i in found][:MAX_ARTICLES]


def article_url(base_url: str, article: Article) -> str:
    """The article's public address."""
    return f"{base_url.rstrip('/')}/articles/{article.slug}"


def _text_body(t: Mapping[str, str], greeting: str, items: Sequence[tuple[str, str, str]],
               links: tuple[str, str]) -> str:
    """The plain-text part."""
    lines = [greeting, "", t["intro"], ""]
    for title, snippet, url in items:
        lines += [f"* {title}", *([f"  {snippet}"] if snippet else []), f"  {url}", ""]
    lines += [t["ask"], f"{t['solved']}: {links[0]}", f"{t['help']}: {links[1]}", "", t["note"], "",
              f"-- \n{t['sign']}"]
    return "\n".join(lines) + "\n"


def _html_body(t: Mapping[str, str], greeting: str, items: Sequence[tuple[str, str, str]],
               links: tuple[str, str], lang: str) -> str:
    """The HTML part; every piece of text is escaped."""
    e = html.escape
    parts = [f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"></head><body>',
             f"<p>{e(greeting)}</p>", f"<p>{e(t['intro'])}</p>", "<ul>"]
    for title, snippet, url in items:
        parts.append(f'<li><a href="{e(url)}">{e(title)}</a>' + (f"<br>{e(snippet)}" if snippet else "") + "</li>")
    parts += ["</ul>", f"<p>{e(t['ask'])}</p>",
              f'<p><a href="{e(links[0])}">{e(t["solved"])}</a> &nbsp;|&nbsp; '
              f'<a href="{e(links[1])}">{e(t["help"])}</a></p>',
              f"<p>{e(t['note'])}</p>", f"<p>{e(t['sign'])}</p></body></html>"]
    return "\n".join(parts) + "\n"


def reply_subject(subject: str, lang: str) -> str:
    """"Re: <subject without its Re:/Fwd: prefixes>", or a default when the subject is empty."""
    return "Re: " + (clean_subject(subject) or TEXTS[template_lang(lang)]["subject"])


def build_reply(record: MailRecord, original: ParsedEmail | None, articles: Sequence[tuple[Article, str]],
                *, settings: Mapping[str, Any], links: tuple[str, str], message_id: str) -> EmailMessage:
    """The auto-reply; without ``original`` (a retry) the record's own fields thread it."""
    lang = template_lang(record.lang or (original.lang if original else None))
    t = TEXTS[lang]
    name = (original.from_name if original else "").strip()
    greeting = t["hello_name"].format(name=name) if name else t["hello"]
    base_url = settings.get("BASE_URL") or ""
    items = [(a.title, snippet, article_url(base_url, a)) for a, snippet in articles[:MAX_ARTICLES]]
    message = EmailMessage(policy=default_policy)
    message["From"] = settings.get("SUPPORT_ADDRESS") or ""
    message["To"] = (original.reply_to if original else "") or record.reply_to or record.from_addr
    message["Subject"] = reply_subject(original.subject if original else record.subject, lang)
    parent = (original.message_id if original else "") or record.message_id
    references = list(original.references) if original else []
    if parent:
        message["In-Reply-To"] = parent
        message["References"] = " ".join([r for r in references if r != parent] + [parent])
    message["Message-ID"] = message_id
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"
    message["Content-Language"] = lang
    message.set_content(_text_body(t, greeting, items, links))
    message.add_alternative(_html_body(t, greeting, items, links, lang), subtype="html")
    return message


def build_alert(record: MailRecord, settings: Mapping[str, Any]) -> EmailMessage:
    """The team alert for a "Still need help" click: who wrote, what they asked, what kb suggested."""
    base_url = (settings.get("BASE_URL") or "").rstrip("/")
    suggested = [f"* {m.get('title') or m.get('article_id')} (score {float(m.get('score', 0)):.2f}) "
                 f"{base_url}/articles/{m.get('slug', '')}" for m in record.matches] or ["(none)"]
    body = "\n".join([
        f"{record.from_addr} clicked \"Still need help\" after kb's auto-reply. Please answer them.", "",
        f"From: {record.from_addr}", f"Reply-To: {record.reply_to or record.from_addr}",
        f"Subject: {record.subject}", f"Message-ID: {record.message_id}",
        f"Received: {record.created_at:%Y-%m-%d %H:%M} UTC", "", "What they wrote:", "",
        record.text or "(the text was not kept)", "", "What kb suggested:", *suggested, "",
        f"All of kb's mail decisions: {base_url}/agent/mail",
    ])
    message = EmailMessage(policy=default_policy)
    message["From"] = settings.get("SUPPORT_ADDRESS") or ""
    message["To"] = settings.get("TEAM_ADDRESS") or ""
    message["Reply-To"] = record.reply_to or record.from_addr
    message["Subject"] = f"[kb] Still need help: {record.subject or '(no subject)'}"
    message["Message-ID"] = new_message_id(base_url)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    if record.reply_message_id:  # threads the alert with the reply in the team's mail client
        message["References"] = " ".join(x for x in (record.message_id, record.reply_message_id) if x)
    message.set_content(body + "\n")
    return message
