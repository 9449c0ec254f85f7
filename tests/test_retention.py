"""Customers' words are blanked once older than KB_CUSTOMER_TEXT_DAYS; the records and figures stay."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from kb import jobs, retention
from kb.autoreply.models import MailRecord
from kb.db import session_scope
from kb.followup import cases, signals
from kb.followup.models import Case, CaseEvent, Signal, Survey
from kb.jobs.models import Job
from kb.jobs.runner import Runner
from kb.models import Agent, Vote, utcnow
from kb.recovery import offers
from kb.recovery.models import GestureType, RecoveryEntry

WORDS = "My name is Kari Nordmann and my card ends 4242."


def seed(app, article_id: int, age_days: float, n: int) -> None:
    """One of each kind of customer text, written ``age_days`` ago."""
    when = utcnow() - timedelta(days=age_days)
    with session_scope(app) as session:
        session.add(MailRecord(dedupe_key=f"k{n}", from_addr=f"kari{n}@example.org", text=WORDS, state="person",
                               created_at=when))
        session.add(Vote(article_id=article_id, visitor=f"v{n}", helpful=False, comment=WORDS, created_at=when))
        result = signals.record_signal(session, key=f"vote:{n}", source="vote", settings=app.config,
                                       address=f"kari{n}@example.org", words=WORDS)
        result.signal.created_at = when
        cases.add_note(session, agent_id=None, text=WORDS, channel="phone", case=result.case).created_at = when
        session.add(Survey(case_id=result.case.id, address=f"kari{n}@example.org", state="answered", score=2,
                           comment=WORDS, created_at=when))
        agent = Agent(email=f"agent{n}@example.org", name="Agent", role="support", password_hash="x")
        gift = GestureType(name=f"Gift {n}", kind="gift", currency="EUR", template="Sorry!")
        session.add_all([agent, gift])
        session.flush()
        offers.offer(session, case=result.case, agent=agent, gesture_type=gift, amount="5", reason="delivery",
                     message=WORDS, settings=app.config, now=when)


def texts(app) -> list[str]:
    """Every customer text kb holds, in a stable order."""
    with session_scope(app) as session:
        return (list(session.scalars(sa.select(MailRecord.text).order_by(MailRecord.id)))
                + list(session.scalars(sa.select(Vote.comment).order_by(Vote.id)))
                + list(session.scalars(sa.select(Signal.words).order_by(Signal.id)))
                + list(session.scalars(sa.select(Survey.comment).order_by(Survey.id)))
                + list(session.scalars(sa.select(CaseEvent.note).where(CaseEvent.kind == "note").order_by(CaseEvent.id)))
                + list(session.scalars(sa.select(RecoveryEntry.message).order_by(RecoveryEntry.id))))


def test_words_past_the_retention_period_are_blanked_and_the_records_stay(app, make_article):
    article = make_article()
    seed(app, article.id, 400, 1)
    seed(app, article.id, 300, 2)
    with session_scope(app) as session:
        counts = retention.scrub(session, retention.cutoff(app.config))  # 365 days by default
    assert dict(counts) == {"mail_records": 1, "votes": 1, "signals": 1, "surveys": 1, "notes": 1, "offer_messages": 1}
    assert texts(app) == ["", WORDS] * 6
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 2
        assert sorted(session.scalars(sa.select(Survey.score))) == [2, 2]  # the figures stay
        assert [str(a) for a in session.scalars(sa.select(RecoveryEntry.amount))] == ["5.00", "5.00"]


def test_the_scrub_is_a_daily_job_that_two_runners_schedule_once(app, make_article):
    app.config["CUSTOMER_TEXT_DAYS"] = 30
    seed(app, make_article().id, 31, 1)
    runners = [Runner(app), Runner(app)]  # two hosts, not started: each makes sure of today's job
    for runner in runners:
        runner._ensure_daily()
    with session_scope(app) as session:
        assert session.scalars(sa.select(Job.key).where(Job.kind == retention.KIND)).all() == [
            f"day:{utcnow().date().isoformat()}"]
    assert jobs.run_due(app)["done"] >= 1
    assert set(texts(app)) == {""}
