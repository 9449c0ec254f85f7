"""Sample insights: 90 believable days of the sample shop, so the first `kb serve` shows full charts.

``load`` runs from the follow-up sample (kb.followup.sample: `kb sample load` and the first
`kb serve`): searches in en, zh and nb that fit the starter articles (some finding nothing, some
clicked at positions 1-5, some followed by the contact form), the portal visits they belong to,
article views per day, votes with "No" reasons and comments (size-guide ends up flagged), review
dates (one overdue), and emails and contact-form questions with their outcomes (about two thirds
resolved), categories and languages, and rolls up its finished days (kb.insights.rollup). ``remove``
runs from `kb sample remove` and drops the roll-up of the days the sample searched (the daily job
counts them again from the real rows).

Every row is marked: a visitor or dedupe key starting with ``sample:`` (search log, votes, mail
records), ``sample=True`` on portal visits and article days. Review dates have no mark: ``remove``
clears those of the sample's articles unless someone has reviewed the article since.
Deterministic (a seeded random.Random) and fast (bulk inserts).
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.addresses import sender_key
from kb.autoreply.models import MailRecord
from kb.followup.models import Signal
from kb.followup.sample_builder import PREFIX
from kb.insights import rollup
from kb.insights.searchlog import group_key
from kb.insights import sample_data as data
from kb.insights.models import ArticleDay, PortalVisit
from kb.models import Article, SearchLog, Vote

DAYS = 90
SEED = 10
KEY = f"{PREFIX}insights:"  # of the sample's mail records and votes
LANG_SHARE = (("en", 0.65), ("nb", 0.2), ("zh", 0.15))
POSITIONS = ((1, 55), (2, 20), (3, 12), (4, 8), (5, 5))  # where visitors click, top first
OUTCOME_SHARE = (("confirmed", 0.34), ("assumed", 0.5), ("reopened", 0.16))  # of answered questions


def present(session: so.Session) -> bool:
    """Whether the figures include sample rows (sample mail records: the insights and follow-up samples')."""
    upper = PREFIX[:-1] + chr(ord(PREFIX[-1]) + 1)  # "sample;": a range the unique index answers at once
    return session.scalar(sa.select(MailRecord.id).where(
        MailRecord.dedupe_key >= PREFIX, MailRecord.dedupe_key < upper).limit(1)) is not None


class _Shop:
    """The sample's rows as they are made, with the random source and the articles they name."""

    def __init__(self, session: so.Session, now: datetime) -> None:
        self.now, self.rng = now, random.Random(SEED)
        rows = session.execute(sa.select(Article.slug, Article.id, Article.category, Article.title)).all()
        self.articles = {row.slug: row for row in rows}
        self.by_lang = {lang: [q for q in data.QUERIES if q[0] == lang] for lang, _ in LANG_SHARE}
        self.groups = {(lang, query): group_key(query, lang) for lang, query, _, _ in data.QUERIES}
        self.searches: list[dict[str, Any]] = []
        self.visits: list[dict[str, Any]] = []
        self.mail: list[dict[str, Any]] = []
        self.views: Counter[tuple[int, date]] = Counter()

    def pick(self, pairs) -> Any:
        """One of (value, weight) pairs."""
        values, weights = zip(*pairs)
        return self.rng.choices(values, weights)[0]

    def moment(self, days_ago: int) -> datetime:
        """A moment of the day ``days_ago`` days before today (UTC), mostly in the day time, never ahead."""
        start = datetime.combine((self.now - timedelta(days=days_ago)).date(), time(), tzinfo=timezone.utc)
        latest = max(1.0, min(22 * 3600.0, (self.now - start).total_seconds() - 600))  # just after midnight: 1 s
        return start + timedelta(seconds=self.rng.uniform(min(6 * 3600.0, latest / 2), latest))

    def day(self, days_ago: int) -> None:
        """One day's visitors: fewer at weekends, slowly growing over the 90 days."""
        day = (self.now - timedelta(days=days_ago)).date()
        factor = (0.65 if day.weekday() >= 5 else 1.0) * (1.15 - 0.3 * days_ago / DAYS)
        for _ in range(max(5, round(36 * factor) + self.rng.randint(-4, 4))):
            self.visitor(self.moment(days_ago))
        for _ in range(self.rng.randint(3, 8)):  # questions that came by email
            lang = self.pick(LANG_SHARE)
            self.question("email", lang, self.pick((q[2], q[3]) for q in self.by_lang[lang]), self.moment(days_ago))

    def visitor(self, at: datetime) -> None:
        """One browser's visit: its searches, clicks, views and perhaps a contact-form question."""
        visitor, lang = f"{PREFIX}v{len(self.visits) + 1}", self.pick(LANG_SHARE)
        asked = [self.pick((q, q[3]) for q in self.by_lang[lang])
                 for _ in range(self.pick(((0, 28), (1, 45), (2, 20), (3, 7))))]
        rows, failed, clicked = [], 0, False
        for n, (_, query, slug, _) in enumerate(asked):
            rows.append(self.search(visitor, lang, query, slug, at + timedelta(minutes=2 * n)))
            self.searches.append(rows[-1])
            failed += rows[-1]["click_position"] is None
            clicked = clicked or rows[-1]["click_position"] is not None
        viewed = clicked or self.rng.random() < 0.3
        if viewed and not clicked:  # straight to an article from elsewhere (a search engine, a link)
            self.view(self.rng.choice(self.by_lang[lang])[2], at)
        chance = 0.03 + 0.15 * failed / max(1, len(rows)) + (0.1 if rows and rows[0]["results"] == 0 else 0)
        contacted = self.rng.random() < chance
        if contacted:
            for row in rows:
                row["contacted"] = True
            slug = asked[0][2] if asked else None
            self.question("web_form", lang, slug, at + timedelta(minutes=2 * len(rows) + 3))
        self.visits.append({"visitor": visitor, "day": at.date(), "lang": lang, "searched": bool(rows),
                            "viewed": viewed, "contacted": contacted, "sample": True})

    def search(self, visitor: str, lang: str, query: str, slug: str | None, at: datetime) -> dict[str, Any]:
        """One search row: results when kb has the article, perhaps a click at positions 1-5."""
        article = self.articles.get(slug or "")
        results = self.rng.randint(2, 9) if article else 0
        position = clicked = None
        if results and self.rng.random() < 0.62:
            position = min(results, self.pick(POSITIONS))
            if position > 1:  # a lower result: another article of the language
                other = self.articles.get(self.rng.choice(self.by_lang[lang])[2] or "")
                article = other or article
            clicked = article.id
            self.view(article.slug, at + timedelta(seconds=20))
        return {"query": query, "lang": lang, "results": results, "created_at": at,
                "updated_at": at + timedelta(seconds=self.rng.randint(1, 8)), "visitor": visitor,
                "group_key": self.groups[(lang, query)], "clicked_article_id": clicked,
                "click_position": position, "contacted": False}

    def view(self, slug: str | None, at: datetime) -> None:
        """A counted view of the article (when the database has it)."""
        if slug in self.articles:
            self.views[(self.articles[slug].id, at.date())] += 1

    def question(self, channel: str, lang: str, slug: str | None, at: datetime) -> None:
        """An email or contact-form question: answered by kb when it has the article, with its outcome."""
        if at >= self.now:
            return
        n = len(self.mail) + 1
        article = self.articles.get(slug or "")
        answered = article is not None and self.rng.random() < 0.94
        outcome, outcome_at = self.outcome(at) if answered else (None, None)
        subject, text = self.rng.choice(data.QUESTIONS[lang])
        address = f"{self.rng.choice(data.SENDERS)}@example.{self.rng.choice(('com', 'net', 'org'))}"
        self.mail.append({
            "dedupe_key": f"{KEY}mail:{n}", "message_id": f"<sample-insights-{n}@example.com>",
            "folder": "INBOX" if channel == "email" else "", "from_addr": address, "reply_to": address,
            "sender_key": sender_key(address), "subject": subject, "lang": lang, "text": text,
            "state": "replied" if answered else "person", "channel": channel, "marked": True,
            "reason": "confident: best score 0.410 >= 0.200, lead 0.190" if answered else "no confident match",
            "matches": [{"article_id": article.id, "slug": article.slug, "title": article.title, "score": 0.41,
                         "terms": []}] if article else [],
            "reply_message_id": f"<sample-insights-reply-{n}@kb.invalid>" if answered else None,
            "handling_attempts": 1, "outcome": outcome, "outcome_at": outcome_at,
            "resolution": "solved" if outcome == "confirmed" else None,
            "resolved_at": outcome_at if outcome == "confirmed" else None,
            "category": article.category if answered else "", "created_at": at, "updated_at": outcome_at or at})

    def outcome(self, at: datetime) -> tuple[str | None, datetime | None]:
        """What became of kb's answer; (None, None) while it is not known yet (a recent answer)."""
        outcome = self.pick(OUTCOME_SHARE)
        wait = {"confirmed": timedelta(hours=self.rng.uniform(0.1, 20)), "assumed": timedelta(hours=72),
                "reopened": timedelta(days=self.rng.uniform(0.5, 6))}[outcome]
        return (outcome, at + wait) if at + wait < self.now else (None, None)

    def votes(self) -> list[dict[str, Any]]:
        """Votes on a few articles, with reasons and comments on the "No" ones."""
        rows = []
        for slug, count, helpful in data.VOTES:
            if slug not in self.articles:
                continue
            for n in range(count):
                reason, comment = data.NO_VOTES[(len(rows) + n) % len(data.NO_VOTES)] if n >= helpful else ("", "")
                rows.append({"article_id": self.articles[slug].id, "visitor": f"{KEY}vote:{len(rows) + 1}",
                             "helpful": n < helpful, "reason": reason, "comment": comment,
                             "created_at": self.now - timedelta(days=self.rng.uniform(0, DAYS))})
        return rows


def load(session: so.Session, now: datetime) -> Counter[str]:
    """Add the sample's searches, visits, views, votes, questions and review dates; the caller commits.

    Does nothing when the sample's visits are there already.
    """
    if session.scalar(sa.select(PortalVisit.id).where(PortalVisit.sample.is_(True)).limit(1)) is not None:
        return Counter()
    shop = _Shop(session, now)
    for days_ago in range(DAYS - 1, -1, -1):
        shop.day(days_ago)
    views = [{"article_id": article_id, "day": day, "views": n, "sample": True}
             for (article_id, day), n in sorted(shop.views.items())]
    votes = shop.votes()
    for model, rows in ((SearchLog, shop.searches), (PortalVisit, shop.visits), (ArticleDay, views),
                        (Vote, votes), (MailRecord, shop.mail)):
        if rows:
            session.execute(sa.insert(model.__table__), rows)  # Core executemany: one statement per table
    reviews = 0
    for slug, days in data.REVIEWS:
        if slug in shop.articles:
            reviews += session.execute(sa.update(Article).where(Article.slug == slug, Article.review_by.is_(None))
                                       .values(review_by=now.date() + timedelta(days=days))).rowcount
    session.flush()
    # The first `kb serve` reads the sample's past days from the roll-up, as it will a real shop's.
    for day in sorted({row["created_at"].date() for row in shop.searches}):
        if rollup.day_start(day) + rollup.DAY + rollup.SETTLE <= now:
            rollup.build_day(session, day)
    return Counter(searches=len(shop.searches), portal_visits=len(shop.visits), article_days=len(views),
                   article_votes=len(votes), questions=len(shop.mail), review_dates=reviews)


def remove(session: so.Session) -> Counter[str]:
    """Delete the sample's rows and its review dates; the caller commits."""
    mail = sa.select(MailRecord.id).where(MailRecord.dedupe_key.startswith(KEY)).scalar_subquery()
    # A real signal that named a sample question keeps its case, without the question (as kb.followup.sample).
    session.execute(sa.update(Signal).where(Signal.mail_record_id.in_(mail)).values(mail_record_id=None)
                    .execution_options(synchronize_session=False))
    # The days the sample searched lose their roll-up: the job counts them again from the real rows left.
    days = {at.date() for at in session.scalars(sa.select(SearchLog.created_at).where(SearchLog.visitor.startswith(PREFIX)))}
    rollup.forget_days(session, days)
    counts: Counter[str] = Counter()
    for name, statement in (
            ("searches", sa.delete(SearchLog).where(SearchLog.visitor.startswith(PREFIX))),
            ("portal_visits", sa.delete(PortalVisit).where(PortalVisit.sample.is_(True))),
            ("article_days", sa.delete(ArticleDay).where(ArticleDay.sample.is_(True))),
            ("article_votes", sa.delete(Vote).where(Vote.visitor.startswith(KEY))),
            ("questions", sa.delete(MailRecord).where(MailRecord.dedupe_key.startswith(KEY))),
            ("review_dates", sa.update(Article).where(
                Article.slug.in_([slug for slug, _ in data.REVIEWS]), Article.review_by.is_not(None),
                Article.reviewed_at.is_(None)).values(review_by=None))):
        counts[name] = session.execute(statement.execution_options(synchronize_session=False)).rowcount
    return counts
