"""What an alert or an escalation says: who, what happened, the customer's words, and the case's link.

One set of facts (``AlertFacts``) is read from the database and written two ways: an email to the
team (plain text, in KB_DEFAULT_LANGUAGE through the gettext catalogs, marked as automatic) and a
JSON body for KB_ALERT_WEBHOOK_URL (a Slack-compatible ``text`` plus structured fields).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.addresses import Unsendable, reply_address
from kb.autoreply.compose import ALERT_TAG, new_email, support_sender
from kb.autoreply.outgoing import body_text, header_text
from kb.followup.models import Case, Customer, CustomerIdentity, Signal
from kb.i18n import Gettext, default_language, gettext_for
from kb.models import Article

SLACK_WORDS = 500  # of the customer's words in the webhook's one-line text; the full words are in "words"


@dataclass(frozen=True)
class AlertFacts:
    """What the team must know about one signal (or, for an escalation, the case's latest one)."""

    case_id: int
    source: str
    reason: str
    score: int | None
    words: str
    when: datetime
    customer_name: str
    customer_address: str
    article_id: int | None
    article_title: str
    article_url: str
    author_name: str
    author_address: str
    case_url: str


def _customer_address(session: so.Session, customer_id: int | None) -> str:
    """The customer's first email address, as they wrote it."""
    if customer_id is None:
        return ""
    identity = session.scalar(sa.select(CustomerIdentity).where(
        CustomerIdentity.customer_id == customer_id, CustomerIdentity.kind == "email"
    ).order_by(CustomerIdentity.id).limit(1))
    return (identity.display or identity.value) if identity else ""


def facts(session: so.Session, case: Case, signal: Signal | None, settings: Mapping[str, Any]) -> AlertFacts:
    """The facts of ``signal`` on ``case`` (without a signal: the case's own)."""
    base_url = str(settings.get("BASE_URL") or "").rstrip("/")
    customer_id = (signal.customer_id if signal else None) or case.customer_id
    customer = session.get(Customer, customer_id) if customer_id else None
    article_id = (signal.article_id if signal else None) or case.article_id
    article = session.get(Article, article_id) if article_id else None
    author = article.author if article is not None else None
    return AlertFacts(
        case_id=case.id, source=signal.source if signal else case.source, reason=signal.reason if signal else "",
        score=signal.score if signal else case.score_before, words=signal.words if signal else "",
        when=signal.created_at if signal else case.opened_at,
        customer_name=customer.name if customer else "", customer_address=_customer_address(session, customer_id),
        article_id=article.id if article else None, article_title=article.title if article else "",
        article_url=f"{base_url}/articles/{article.slug}" if article else "",
        author_name=author.name if author else "",
        author_address=author.email if author is not None and author.active else "",
        case_url=f"{base_url}/agent/followups/{case.id}")


def source_label(source: str, _: Gettext) -> str:
    """What happened, in words."""
    labels = {
        "vote": _('A "No" vote on an article'),
        "still_need_help": _('"Still need help" after an automatic reply'),
        "writeback": _("The customer wrote back after an automatic reply"),
        "survey": _("A low satisfaction score"),
        "manual": _("Opened by an agent"),
    }
    return labels.get(source, source)


def reason_label(reason: str, _: Gettext) -> str:
    """The reason a voter chose, in words."""
    labels = {"not_answered": _("didn't answer my question"), "hard_to_follow": _("hard to follow"),
              "out_of_date": _("out of date"), "other": _("other")}
    return labels.get(reason, reason)


def who(f: AlertFacts, _: Gettext) -> str:
    """"Ann Lee <ann@example.com>", or "an anonymous visitor"."""
    if f.customer_address:
        return f"{f.customer_name} <{f.customer_address}>" if f.customer_name else f.customer_address
    return f.customer_name or _("an anonymous visitor")


def _lines(f: AlertFacts, _: Gettext) -> list[str]:
    """The facts, one per line, followed by the customer's words and the link."""
    lines = [_("Who: %(who)s", who=body_text(who(f, _))),
             _("What happened: %(what)s", what=source_label(f.source, _))]
    if f.reason:
        lines.append(_("Reason: %(reason)s", reason=reason_label(f.reason, _)))
    if f.score is not None:
        lines.append(_("Score: %(score)s of 5", score=f.score))
    if f.article_title:
        lines.append(_("Article: %(title)s %(url)s", title=body_text(f.article_title), url=f.article_url))
        lines.append(_("Author of the article: %(name)s", name=body_text(f.author_name) or _("(unknown)")))
    lines += [_("When: %(time)s UTC", time=f"{f.when:%Y-%m-%d %H:%M}"), "", _("Their words:"), "",
              body_text(f.words) or _("(no words)"), "", _("Open the case: %(url)s", url=f.case_url)]
    return lines


def _intro(f: AlertFacts, event: str, settings: Mapping[str, Any], _: Gettext) -> tuple[str, str]:
    """The subject (without the tag) and the first paragraph, for an alert or an escalation."""
    if event == "escalation":
        minutes = f"{float(settings['FOLLOWUP_ACK_MINUTES']):g}"
        return (_("Not acknowledged: follow-up case %(id)s", id=f.case_id),
                _("Nobody has acknowledged follow-up case %(id)s within %(minutes)s minutes (of business "
                  "hours). Please make sure someone takes it now.", id=f.case_id, minutes=minutes))
    subject = _("Follow-up case %(id)s: %(what)s, %(who)s", id=f.case_id, what=source_label(f.source, _),
                who=who(f, _))
    return subject, _("A customer had a bad experience. Acknowledge the case and follow up within "
                      "%(minutes)s minutes.", minutes=f"{float(settings['FOLLOWUP_ACK_MINUTES']):g}")


def recipients(value: str) -> list[str]:
    """The addresses of a comma-separated setting, each once."""
    found = [addr for _name, addr in getaddresses([value or ""]) if "@" in addr]
    return list(dict.fromkeys(found))


def build_email(f: AlertFacts, *, event: str, to: list[str], settings: Mapping[str, Any],
                message_id: str) -> EmailMessage:
    """The team's email for an alert or an escalation, in KB_DEFAULT_LANGUAGE."""
    lang = default_language(settings)
    _ = gettext_for(lang, settings)
    subject, intro = _intro(f, event, settings, _)
    message = new_email(sender=support_sender(settings, _), to=", ".join(to),
                        subject=ALERT_TAG + header_text(subject, 300), message_id=message_id)
    if f.customer_address:
        try:  # the team answers the customer with one click
            message["Reply-To"] = reply_address(f.customer_name, f.customer_address)
        except Unsendable:
            pass  # the body still names the address
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content("\n".join([intro, "", *_lines(f, _)]) + "\n")
    message["Content-Language"] = lang  # after set_content, which drops every Content-* header
    return message


def _slack_escape(text: str) -> str:
    """Slack's three control characters, so customer text cannot make links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_payload(f: AlertFacts, *, event: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body: ``text`` for Slack (and look-alikes), and the same facts as fields."""
    _ = gettext_for(default_language(settings), settings)
    subject, _intro_text = _intro(f, event, settings, _)
    words = body_text(f.words)
    quoted = words if len(words) <= SLACK_WORDS else words[:SLACK_WORDS].rstrip() + "…"
    text = f"{ALERT_TAG}{_slack_escape(subject)}"
    if f.article_title:
        text += "\n" + _slack_escape(_("Article: %(title)s %(url)s", title=f.article_title, url=f.article_url))
    if quoted:
        text += "\n> " + _slack_escape(quoted).replace("\n", "\n> ")
    text += f"\n<{f.case_url}|{_slack_escape(_('Open the case'))}>"
    return {
        "text": text, "event": event, "case_id": f.case_id, "source": f.source, "reason": f.reason,
        "score": f.score, "words": words, "url": f.case_url, "time": f.when.isoformat(),
        "customer": {"name": f.customer_name, "address": f.customer_address} if f.customer_address else None,
        "article": {"id": f.article_id, "title": f.article_title, "url": f.article_url,
                    "author": f.author_name} if f.article_id else None,
    }
