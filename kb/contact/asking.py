"""Asking through the contact form: suggestions while typing, the decision, the ledger, the answer.

The decision is the auto-responder's own (kb.autoreply.decision.decide_parts with its thresholds,
on the matcher the web app shares with the gaps page): the question takes the path an email with
the same subject and words takes. Every question asked is a MailRecord with the channel
"web_form": state "replied" when kb showed an answer first, "person" when it went to the team.
The customer's "Yes, this answers it" / "No, send my question" is recorded like an auto-reply's
"Solved" / "Still need help" (kb.autoreply.ledger.resolve), and the outcome seam hears of each step.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb import jobs, render_cache
from kb.autoreply.compose import excerpt, new_message_id
from kb.autoreply.decision import Decision, decide_parts, relative_cut, shown_count
from kb.autoreply.ledger import match_dicts
from kb.autoreply.matcher import Matcher
from kb.autoreply.models import MailRecord
from kb.contact.form import ContactForm, question_text
from kb.insights import outcomes, searchlog
from kb.models import Article, utcnow

KIND = "contact.send"  # the job that sends a question to the support mailbox (kb.contact.sending)
KEY_PREFIX = "web:"  # MailRecord.dedupe_key of a contact-form question: "web:<uuid>"
MAX_SUGGESTIONS = 3
STILL_NEED_HELP = ("still-need-help: the customer said the answer shown on the contact form did not "
                   "answer their question, and sent it")


@dataclass(frozen=True)
class Suggestion:
    """An article kb would suggest: the article, about two lines of it, and its rendered body."""

    article: Article
    excerpt: str
    html: str


def decide(subject: str, question: str, matcher: Matcher, settings: Mapping[str, Any]) -> Decision:
    """The auto-responder's decision for this subject and question (a whole email's path)."""
    return decide_parts(subject, question_text(question), matcher, settings)


def suggestions(session: so.Session, decision: Decision, settings: Mapping[str, Any],
                limit: int = MAX_SUGGESTIONS) -> list[Suggestion]:
    """The decision's articles worth showing (as a reply would show them) that are still published.

    Renders a body that has no current cache (kb.render_cache): the caller commits.
    """
    matches = [m for m in decision.matches if str(m.article_id).isdigit()]
    shown = shown_count([m.score for m in matches], relative_cut(settings))
    ids = [int(m.article_id) for m in matches[:shown]][:limit]
    found = {a.id: a for a in session.scalars(sa.select(Article).where(
        Article.id.in_(ids), Article.status == "published"))} if ids else {}
    return [Suggestion(found[i], excerpt(found[i]), render_cache.article_html(session, found[i]))
            for i in ids if i in found]


def ask(session: so.Session, form: ContactForm, decision: Decision, settings: Mapping[str, Any], *,
        lang: str, shown: bool, name: str = "", visitor: str | None = None,
        now: datetime | None = None) -> MailRecord:
    """Record a question in the mail ledger; send it on at once unless kb ``shown`` an answer first.

    ``decision`` is :func:`decide`'s for the form; ``shown`` is whether the page shows its answer
    (it was confident and an article is still published). The caller commits.
    """
    parsed = decision.email
    record = MailRecord(
        dedupe_key=f"{KEY_PREFIX}{uuid.uuid4().hex}", message_id=new_message_id(str(settings.get("BASE_URL") or "")),
        folder="", from_addr=form.email, reply_to=form.email, subject=form.mail_subject,
        lang=(parsed.lang if parsed is not None and parsed.lang else lang)[:16],
        text=parsed.clean_text if parsed is not None and parsed.clean_text.strip() else form.question,
        state="replied" if shown else "person", reason=decision.reason,
        matches=match_dicts(session, decision.matches), channel="web_form",
        marked=True,  # nothing of it is in a mailbox to mark (the copy sent on is marked by the worker)
        handling_attempts=0, created_at=now or utcnow(), updated_at=now or utcnow())
    session.add(record)
    session.flush()
    outcomes.question_received(session, record, settings)
    if shown:
        outcomes.answered(session, record, settings)
    else:
        send_on(session, record, name)
    searchlog.mark_contacted(session, visitor)
    return record


def send_on(session: so.Session, record: MailRecord, name: str = "") -> bool:
    """Schedule the question's email to the support mailbox (once per record); the caller commits."""
    return jobs.schedule(session, KIND, f"record:{record.id}", payload={"record_id": record.id, "name": name})


def web_record(session: so.Session, record_id: int) -> MailRecord | None:
    """A contact-form question by id (None for an email's record or a missing one)."""
    record = session.get(MailRecord, record_id)
    return record if record is not None and record.channel == "web_form" else None


def answer(session: so.Session, record: MailRecord, solved: bool, name: str = "") -> bool:
    """The customer's answer to "Does this answer your question?"; False when it changes nothing.

    Yes: resolution "solved". No: resolution "still_need_help", the question goes to a person and
    is sent on (a "No" after a "Yes" wins, as with "Still need help" after "Solved"). The caller commits.
    """
    now = utcnow()
    where = [MailRecord.id == record.id, MailRecord.channel == "web_form"]
    if solved:
        values = {"resolution": "solved", "resolved_at": now}
        where.append(MailRecord.resolution.is_(None))
    else:
        values = {"resolution": "still_need_help", "resolved_at": now, "state": "person", "reason": STILL_NEED_HELP}
        where.append(sa.or_(MailRecord.resolution.is_(None), MailRecord.resolution == "solved"))
    changed = session.execute(sa.update(MailRecord).where(*where).values(updated_at=now, **values)
                              .execution_options(synchronize_session=False)).rowcount == 1
    session.refresh(record)
    if changed:
        if not solved:
            send_on(session, record, name)
        outcomes.resolved(session, record)
    return changed
