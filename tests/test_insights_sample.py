"""Sample insights: 90 believable days that fill every chart, all marked, and removed exactly."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import render_template_string

from kb import content
from kb.autoreply.models import MailRecord
from kb.db import session_scope
from kb.followup import sample
from kb.insights import sample as insights_sample
from kb.insights.models import ArticleDay, PortalVisit
from kb.models import Article, SearchLog, Vote, utcnow

NOTE = '{% import "agent/_insights.html" as ins %}{{ ins.tabs([]) }}'


def count(session, model, *where) -> int:
    """Rows of ``model`` matching ``where``."""
    return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def add_real_rows(app) -> None:
    """One real row of each kind the sample also writes, and a real review date."""
    with session_scope(app) as session:
        article = session.scalar(sa.select(Article).where(Article.slug == "delivery-times"))
        article.review_by = utcnow().date() + timedelta(days=3)
        session.add_all([SearchLog(query="real search", lang="en", results=2, visitor="real-visitor"),
                         PortalVisit(visitor="real-visitor", day=utcnow().date(), lang="en", searched=True),
                         ArticleDay(article_id=article.id, day=utcnow().date(), views=2),
                         MailRecord(dedupe_key="real-mail", channel="web_form", state="person", text="Hello"),
                         Vote(article_id=article.id, visitor="real-visitor", helpful=True)])


def check_believable(session, now) -> None:
    """Searches, visits, views, votes, review dates and questions as the issue asks."""
    sample_search = SearchLog.visitor.startswith(insights_sample.PREFIX)
    searches = session.execute(sa.select(SearchLog).where(sample_search)).scalars().all()
    assert 2000 <= len(searches) <= 6000
    assert len({s.created_at.date() for s in searches}) == insights_sample.DAYS
    assert min(s.created_at for s in searches) >= now - timedelta(days=insights_sample.DAYS)
    assert {s.lang for s in searches} == {"en", "zh", "nb"} and all(s.group_key for s in searches)
    assert {s.click_position for s in searches} == {None, 1, 2, 3, 4, 5}
    assert any(s.results == 0 for s in searches) and any(s.contacted for s in searches)
    assert count(session, PortalVisit, PortalVisit.sample.is_(True)) > 1000
    assert session.scalar(sa.select(sa.func.sum(ArticleDay.views)).where(ArticleDay.sample.is_(True))) > 1000
    votes = session.execute(sa.select(Vote.article_id, sa.func.count(), sa.func.avg(sa.case((Vote.helpful, 1.0),
                            else_=0.0))).group_by(Vote.article_id)).all()
    assert any(n >= 10 and helpful < 0.6 for _, n, helpful in votes)  # flagged
    assert count(session, Vote, Vote.reason != "", Vote.comment != "") >= 5
    today = now.date()
    assert count(session, Article, Article.review_by < today) == 1
    mail = session.execute(sa.select(MailRecord).where(MailRecord.dedupe_key.startswith(insights_sample.KEY))
                           ).scalars().all()
    assert {m.channel for m in mail} == {"email", "web_form"}
    assert {m.outcome for m in mail} == {"confirmed", "assumed", "reopened", None}
    assert 0.6 <= sum(m.outcome in ("confirmed", "assumed") for m in mail) / len(mail) <= 0.7
    assert len({m.category for m in mail} - {""}) >= 4 and {m.lang for m in mail} == {"en", "zh", "nb"}
    assert all(m.outcome_at is None or m.created_at < m.outcome_at <= now for m in mail)


def test_the_sample_fills_the_insights_marks_them_and_goes_exactly(app):
    assert content.bootstrap(app) is not None
    add_real_rows(app)
    now = utcnow()
    with session_scope(app) as session:
        loaded = sample.load_sample(session, app.config, now=now)
    with session_scope(app) as session:
        check_believable(session, now)
        assert insights_sample.load(session, now) == {}  # once
    with app.test_request_context("/agent/insights"):
        assert "kb sample remove" in render_template_string(NOTE)
    with session_scope(app) as session:
        removed = sample.remove_sample(session)
    for name in ("searches", "portal_visits", "article_days", "article_votes", "questions", "review_dates"):
        assert removed[name] == loaded[name] > 0, name
    with session_scope(app) as session:
        assert session.scalars(sa.select(SearchLog.query)).all() == ["real search"]
        assert session.scalars(sa.select(PortalVisit.visitor)).all() == ["real-visitor"]
        assert session.scalars(sa.select(ArticleDay.views)).all() == [2]
        assert session.scalars(sa.select(MailRecord.dedupe_key)).all() == ["real-mail"]
        assert session.scalars(sa.select(Vote.visitor)).all() == ["real-visitor"]
        assert session.scalars(sa.select(Article.slug).where(Article.review_by.is_not(None))).all() == [
            "delivery-times"]
        assert not insights_sample.present(session)
    with app.test_request_context("/agent/insights"):
        assert "kb sample remove" not in render_template_string(NOTE)
    with session_scope(app) as session:  # the same again: seeded, so the same sample
        again = sample.load_sample(session, app.config, now=now)
    assert {k: again[k] for k in removed if k in again} == {k: loaded[k] for k in removed if k in again}
