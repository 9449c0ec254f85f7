"""Review dates, and telling authors when their articles are flagged.

An article may carry a review-by date; "Mark as reviewed" records the review (Article.reviewed_at),
which restarts the flag's vote count (kb.insights.health), and moves a review-by date on by the
interval the team chose last time (from the previous review, or the article's creation, to the old
date), so a yearly review stays yearly.

A daily job (``insights.flag_scan``, one of kb.jobs' recurring kinds) finds the flagged articles
(sample votes alone never flag an article to its author).
Each flag is noted once, as a job of kind ``insights.article_flagged`` keyed by the article and its
last review (kb.jobs' unique (kind, key) is the record: scheduling it again is a no-op), and the
flags new that day are emailed to each author in one ``insights.flag_email`` job, sent once
through ctx.deliver. A new flag after a later review has a new key, so it is emailed again.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask

from kb import jobs
from kb.autoreply.compose import ALERT_TAG, new_email, new_message_id, support_sender
from kb.autoreply.outgoing import body_text, header_text
from kb.errors import ValidationError
from kb.followup.alert_compose import reason_label
from kb.followup.messages import send_once
from kb.i18n import default_language, gettext_for
from kb.insights import health
from kb.insights.periods import Period
from kb.models import Agent, Article, Vote, parse_id, utcnow

SCAN, NOTED, EMAIL = "insights.flag_scan", "insights.article_flagged", "insights.flag_email"
MAX_FLAGS = 1000  # flagged articles one day's scan reads
MIN_INTERVAL = timedelta(days=1)
EPOCH = datetime(1970, 1, 1)


def set_review_by(article: Article, value: str) -> date | None:
    """Set (or, with an empty value, clear) the review-by date from YYYY-MM-DD; ValidationError otherwise."""
    value = (value or "").strip()
    if not value:
        article.review_by = None
        return None
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        raise ValidationError(f"{value[:20]!r} is not a date: write the review-by date as YYYY-MM-DD.") from None
    if not date(2000, 1, 1) <= day <= date(2999, 12, 31):
        raise ValidationError("Choose a review-by date between 2000 and 2999.")
    article.review_by = day
    return day


def mark_reviewed(article: Article, now: datetime | None = None) -> date | None:
    """Record a review now; a review-by date moves on by its last interval. Returns the new review-by date."""
    now = now or utcnow()
    if article.review_by is not None:
        anchor = (article.reviewed_at or article.created_at or now).date()
        interval = max(MIN_INTERVAL, article.review_by - anchor)
        article.review_by = now.date() + interval
    article.reviewed_at = now
    return article.review_by


def flag_key(article: health.ArticleHealth) -> str:
    """One flag of one article: the article and its last review (a flag after a new review is a new one)."""
    stamp = int((article.reviewed_at.replace(tzinfo=None) - EPOCH).total_seconds()) if article.reviewed_at else 0
    return f"article:{article.article_id}:reviewed:{stamp}"


def scan(session: so.Session, settings: Mapping[str, Any], now: datetime | None = None) -> int:
    """Note today's new flags and schedule one email per author with them; how many emails. The caller commits."""
    now = now or utcnow()
    everything = Period(now - timedelta(days=1), now, None)  # the flag ignores the period; this bounds the rest
    new: dict[int, list[str]] = {}
    for article in health.flagged(session, everything, settings, MAX_FLAGS, now=now):
        if article.author_id is None:
            continue
        if health.flag_of(session, session.get(Article, article.article_id), settings, real_only=True) is None:
            continue  # flagged by sample votes only: not a reader's word
        key = flag_key(article)
        if jobs.schedule(session, NOTED, key, run_at=now, payload={"article_id": article.article_id}):
            new.setdefault(article.author_id, []).append(key)
    for agent_id, keys in new.items():
        digest = hashlib.sha256("|".join(sorted(keys)).encode()).hexdigest()[:24]
        ids = [int(key.split(":")[1]) for key in keys]
        jobs.schedule(session, EMAIL, f"agent:{agent_id}:{digest}", run_at=now,
                      payload={"agent_id": agent_id, "article_ids": ids})
    return len(new)


def _top_reasons(session: so.Session, article: Article, _) -> str:
    """The "No" reasons given since the last review, most frequent first, in words."""
    since = [Vote.created_at > article.reviewed_at] if article.reviewed_at is not None else []
    rows = session.execute(sa.select(Vote.reason, sa.func.count()).where(
        Vote.article_id == article.id, Vote.helpful.is_(False), Vote.reason != "", *since)
        .group_by(Vote.reason).order_by(sa.func.count().desc(), Vote.reason))
    return ", ".join(f"{reason_label(reason, _)} ({count})" for reason, count in rows)


def build_email(session: so.Session, agent: Agent, articles: list[Article], settings: Mapping[str, Any],
                message_id: str) -> EmailMessage:
    """The author's email: each flagged article with its votes since review, helpful share, reasons and link."""
    lang = default_language(settings)  # as the alert emails: agents have no language of their own
    _ = gettext_for(lang, settings)
    base = str(settings.get("BASE_URL") or "").rstrip("/")
    subject = _("Articles to look at: %(count)s flagged by readers", count=len(articles))
    message = new_email(sender=support_sender(settings, _), to=agent.email, subject=ALERT_TAG + header_text(subject, 300),
                        message_id=message_id)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    lines = [_("Readers find these articles of yours unhelpful. Fix them, then press \"Mark as reviewed\" "
               "in the editor: the votes are counted again from then."), ""]
    for article in articles:
        found = health.flag_of(session, article, settings, real_only=True)
        if found is None:
            continue
        lines.append(body_text(article.title))
        lines.append("  " + _("%(helpful)s of %(votes)s votes helpful since the last review",
                              helpful=found.flag_helpful, votes=found.flag_votes))
        reasons = _top_reasons(session, article, _)
        if reasons:
            lines.append("  " + _("Reasons given: %(reasons)s", reasons=reasons))
        lines += ["  " + f"{base}/agent/articles/{article.id}/edit", ""]
    message.set_content("\n".join(lines) + "\n")
    message["Content-Language"] = lang  # after set_content, which drops every Content-* header
    return message


@jobs.handler(SCAN)
def _scan(ctx) -> None:
    """The day's scan (the runner commits it with the job's "done")."""
    scan(ctx.session, ctx.settings)


@jobs.handler(NOTED)
def _noted(ctx) -> None:
    """Nothing to do: the job's row is the record that this flag was seen (and emailed)."""


@jobs.handler(EMAIL)
def _email(ctx) -> None:
    """Email one author the articles newly flagged for them, once."""
    session = ctx.session
    agent_id = parse_id(ctx.payload.get("agent_id"))
    agent = session.get(Agent, agent_id) if agent_id is not None else None
    # a payload kb did not write (or an older one) names nobody rather than failing again and again
    ids = [i for i in map(parse_id, ctx.payload.get("article_ids") or []) if i is not None][:MAX_FLAGS]
    if agent is None or not agent.active or not ids:
        return  # the author left: the article list and the insights page still show the flags
    articles = list(session.scalars(sa.select(Article).where(Article.id.in_(ids)).order_by(Article.id)))
    still = [a for a in articles if health.flag_of(session, a, ctx.settings, real_only=True) is not None]
    if not still:
        return  # reviewed (or deleted) before the email went
    base_url = str(ctx.settings.get("BASE_URL") or "")
    message_id = ctx.message_id(lambda: new_message_id(base_url))
    send_once(ctx, lambda: build_email(session, agent, still, ctx.settings, message_id), f"flag email {ctx.job.key}")


def init_app(app: Flask) -> None:
    """Make the flag scan a daily job of every runner."""
    jobs.daily(SCAN)
