"""Builds marked sample rows directly (see kb.followup.sample): no jobs, no email, times in order."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from itertools import count
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.ledger import STILL_NEED_HELP
from kb.autoreply.models import MailRecord
from kb.followup.customers import normalize
from kb.followup.models import Case, CaseEvent, Customer, CustomerIdentity, Signal, Survey
from kb.models import Article, Vote

PREFIX = "sample:"  # of the dedupe_key of sample mail records, the visitor of sample votes, signal keys
MARKER = " (sample)"  # after every sample customer's name, so agents see what is not real
ALERT_DELAY = timedelta(seconds=25)  # what the job runner takes to alert the team, about
REPLY_DELAY = timedelta(seconds=40)  # what the auto-responder takes to answer an email, about


class Builder:
    """Adds sample rows to a session and counts them; ``now`` anchors every time."""

    def __init__(self, session: so.Session, settings: Mapping[str, Any], now: datetime) -> None:
        self.session, self.now = session, now
        self.ack = timedelta(minutes=float(settings["FOLLOWUP_ACK_MINUTES"]))
        self.counts: Counter[str] = Counter()
        self._serial = count(1)
        self._waiting: dict[int, datetime] = {}  # case id -> when its acknowledgement clock started

    def ago(self, days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
        """A moment before now."""
        return self.now - timedelta(days=days, hours=hours, minutes=minutes)

    def _add(self, row: Any, kind: str) -> Any:
        """Add, flush (for the id) and count one row."""
        self.session.add(row)
        self.session.flush()
        self.counts[kind] += 1
        return row

    def article(self, slug: str) -> Article | None:
        """The starter article with this slug, if the database has it."""
        return self.session.scalar(sa.select(Article).where(Article.slug == slug))

    def customer(self, name: str, email: str, lang: str, since: datetime, phone: str = "") -> Customer:
        """A sample customer with an email address and perhaps a phone number."""
        customer = self._add(Customer(name=name + MARKER, lang=lang, sample=True, created_at=since), "customers")
        for kind, value in (("email", email), ("phone", phone)):
            if value:
                self._add(CustomerIdentity(customer_id=customer.id, kind=kind, value=normalize(kind, value),
                                           display=value, created_at=since), "identities")
        return customer

    def email(self, address: str, subject: str, text: str, at: datetime, *, lang: str = "en", answer: str = "",
              reason: str = "", click: str = "", click_at: datetime | None = None) -> MailRecord:
        """An email kb received and what it decided: answered with ``answer`` (a slug), or left for a person."""
        n = next(self._serial)
        article = self.article(answer) if answer else None
        matches = [{"article_id": article.id, "slug": article.slug, "title": article.title, "score": 0.41,
                    "terms": []}] if article else []
        record = MailRecord(dedupe_key=f"{PREFIX}mail:{n}", message_id=f"<sample-{n}@{address.split('@')[1]}>",
                            folder="INBOX", from_addr=address, reply_to=address, subject=subject, lang=lang,
                            text=text, state="replied" if answer else "person", matches=matches, marked=True,
                            reason=reason or "confident: best score 0.410 >= 0.300, lead 0.190",
                            handling_attempts=1, created_at=at, updated_at=at)
        if answer:
            record.reply_message_id, record.sending_since = f"<sample-reply-{n}@kb.invalid>", at + REPLY_DELAY
        if click:
            record.resolution, record.resolved_at, record.updated_at = click, click_at, click_at
        if click == "still_need_help":  # as kb.autoreply.ledger.resolve records it, the team told
            record.state, record.reason, record.alert_state = "person", STILL_NEED_HELP, "sent"
        return self._add(record, "mail_records")

    def vote(self, article: Article | None, at: datetime, reason: str, comment: str) -> None:
        """A "No" vote on the article (when the database has it)."""
        if article is not None:
            self._add(Vote(article_id=article.id, visitor=f"{PREFIX}{next(self._serial)}", helpful=False,
                           reason=reason, comment=comment, created_at=at), "votes")

    def case(self, source: str, opened: datetime, *, customer: Customer | None = None,
             article: Article | None = None, thread: MailRecord | None = None) -> Case:
        """A new case, alerted about at once as the job runner would."""
        open_key = f"customer:{customer.id}" if customer else f"article:{article.id}"
        case = self._add(Case(open_key=open_key, customer_id=customer.id if customer else None,
                              article_id=article.id if article else None, source=source,
                              lang=customer.lang if customer else (article.lang if article else ""),
                              thread_message_id=thread.message_id if thread else "",
                              thread_subject=thread.subject if thread else "", opened_at=opened,
                              alerted_at=opened + ALERT_DELAY, sample=True, updated_at=opened), "cases")
        self._waiting[case.id] = opened
        self.event(case, "alert", opened + ALERT_DELAY, "The team was alerted.", channel="email")
        return case

    def signal(self, case: Case, source: str, at: datetime, *, words: str = "", reason: str = "",
               score: int | None = None, channel: str = "web", mail: MailRecord | None = None) -> Signal:
        """A signal on the case; the first score becomes the case's score before."""
        if score is not None and case.score_before is None:
            case.score_before = score
        return self._add(Signal(key=f"{PREFIX}{source}:{next(self._serial)}", case_id=case.id,
                                customer_id=case.customer_id, source=source, channel=channel,
                                article_id=case.article_id, mail_record_id=mail.id if mail else None,
                                reason=reason, words=words, score=score, sample=True, created_at=at), "signals")

    def event(self, case: Case | None, kind: str, at: datetime, note: str = "", *, customer: Customer | None = None,
              **values: Any) -> CaseEvent:
        """One entry of a case's history (or, with ``customer``, of a customer's timeline)."""
        return self._add(CaseEvent(case_id=case.id if case else None,
                                   customer_id=case.customer_id if case else customer.id, kind=kind,
                                   note=note, sample=True, created_at=at, **values), "events")

    def _escalate_if_late(self, case: Case, until: datetime) -> None:
        """Escalate, as the job would have, a case left unacknowledged past the deadline."""
        deadline = self._waiting.pop(case.id, until) + self.ack
        if until > deadline:
            case.escalated_at = deadline
            self.event(case, "escalation", deadline, "Not acknowledged in time: the admins were told.",
                       channel="email")

    def move(self, case: Case, to_state: str, at: datetime, note: str = "", root_cause: str = "") -> None:
        """A state change with its history entry, setting the times as kb.followup.cases does."""
        if case.state in ("new", "reopened") and to_state != "reopened":
            self._escalate_if_late(case, at)
        self.event(case, "state", at, note, from_state=case.state, to_state=to_state)
        case.state, case.updated_at = to_state, at
        if to_state in ("acknowledged", "contacted", "resolved"):
            case.acknowledged_at = case.acknowledged_at or at
        if to_state == "contacted":
            case.first_contact_at = case.first_contact_at or at
        if to_state == "resolved":
            case.resolved_at, case.root_cause, case.open_key = at, root_cause, None
        if to_state == "reopened":  # as a signal reopens it (kb.followup.signals)
            case.resolved_at, case.acknowledged_at = None, None
            case.open_key = f"customer:{case.customer_id}"
            self._waiting[case.id] = at

    def message(self, case: Case, at: datetime, text: str) -> CaseEvent:
        """A message an agent sent the customer from the case (recorded only: nothing is sent)."""
        event = self.event(case, "message", at, text, channel="email",
                           message_id=f"<sample-{next(self._serial)}@kb.invalid>")
        if case.state != "contacted":
            self.move(case, "contacted", at, "Message sent to the customer.")
        return event

    def survey(self, case: Case, address: str, sent: datetime, *, answered: datetime | None = None,
               score: int | None = None, comment: str = "") -> None:
        """The case's re-survey: sent, and perhaps answered (then the case's score after)."""
        self._add(Survey(case_id=case.id, address=address, state="answered" if answered else "sent", score=score,
                         comment=comment, sent_at=sent, answered_at=answered, sample=True,
                         created_at=case.resolved_at or sent), "surveys")
        self.event(case, "survey", sent, "Satisfaction survey sent.", channel="email")
        if answered:
            case.score_after = score

    def finish(self) -> None:
        """Escalate the cases still waiting past the deadline now."""
        for case_id in list(self._waiting):
            self._escalate_if_late(self.session.get(Case, case_id), self.now)
