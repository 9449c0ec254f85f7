"""Personal data is blanked once older than KB_RETENTION_DAYS; the records and every count stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from kb import jobs, retention
from kb.autoreply.models import MailRecord
from kb.config import load_config
from kb.db import session_scope
from kb.errors import ConfigError
from kb.followup import cases, signals
from kb.followup.models import Case, CaseEvent, Signal, Survey
from kb.insights import rollup
from kb.insights.models import PortalVisit, RateCount, SearchRollup
from kb.insights.searchagg import COUNTS
from kb.jobs.models import Job
from kb.jobs.runner import Runner
from kb.models import Agent, SearchLog, Vote, utcnow
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
        counts = retention.purge(session, retention.cutoff(app.config))  # 365 days by default
    assert dict(counts) == {"mail_records": 1, "votes": 1, "signals": 1, "surveys": 1, "notes": 1, "offer_messages": 1,
                            "search_log": 0, "portal_visits": 0, "rate_counts": 0, "search_rollup": 0,
                            "job_payloads": 0, "worker_heartbeats": 0}
    assert texts(app) == ["", WORDS] * 6
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 2
        assert sorted(session.scalars(sa.select(Survey.score))) == [2, 2]  # the figures stay
        assert [str(a) for a in session.scalars(sa.select(RecoveryEntry.amount))] == ["5.00", "5.00"]


def test_the_scrub_is_a_daily_job_that_two_runners_schedule_once(app, make_article):
    app.config["RETENTION_DAYS"] = 30
    seed(app, make_article().id, 31, 1)
    runners = [Runner(app), Runner(app)]  # two hosts, not started: each makes sure of today's job
    for runner in runners:
        runner._ensure_daily()
    with session_scope(app) as session:
        assert session.scalars(sa.select(Job.key).where(Job.kind == retention.KIND)).all() == [
            f"day:{utcnow().date().isoformat()}"]
    assert jobs.run_due(app)["done"] >= 1
    assert set(texts(app)) == {""}
    with session_scope(app) as session:
        noted = retention.purged_before(session)
    assert abs(noted - (utcnow() - timedelta(days=30))) < timedelta(minutes=5)
    # The next run starts where this one stopped (less a day): a row written since is blanked, one from
    # long before (which an earlier run would have blanked) is not looked at again.
    with session_scope(app) as session:
        for n, age in ((10, 30.5), (11, 40)):
            session.add(MailRecord(dedupe_key=f"next{n}", text=WORDS, state="person",
                                   created_at=utcnow() - timedelta(days=age)))
        jobs.schedule(session, retention.KIND, "day:next")
    assert jobs.run_due(app)["done"] == 1
    with session_scope(app) as session:
        assert session.scalars(sa.select(MailRecord.text).where(MailRecord.dedupe_key.startswith("next"))
                               .order_by(MailRecord.dedupe_key)).all() == ["", WORDS]


def insight_rows(app, article_id: int, age_days: float, n: int) -> None:
    """Searches, a portal visit, an email and a contact-form question, ``age_days`` old."""
    when = utcnow() - timedelta(days=age_days)
    with session_scope(app) as session:
        for i, (results, position, contacted) in enumerate(((0, None, True), (4, 2, False), (3, None, False))):
            session.add(SearchLog(query=f"where is my parcel {n}", lang="en", results=results, created_at=when,
                                  visitor=f"visitor-{n}", group_key=f"parcel {n}", click_position=position,
                                  clicked_article_id=article_id if position else None, contacted=contacted))
        session.add(SearchLog(query="sample query", lang="nb", results=1, created_at=when, visitor=f"sample:v{n}"))
        session.add(PortalVisit(visitor=f"visitor-{n}", day=when.date(), lang="en", searched=True, contacted=True))
        for channel, outcome in (("email", "confirmed"), ("web_form", "assumed"), ("web_form", "reopened")):
            session.add(MailRecord(dedupe_key=f"k{n}{channel}{outcome}", from_addr=f"kari{n}@example.org",
                                   subject="My card ends 4242", text=WORDS, state="replied", channel=channel,
                                   outcome=outcome, category="Orders", lang="en", created_at=when))


def figures(app) -> dict[str, list]:
    """What the insights pages count, by every column the purge keeps."""
    with session_scope(app) as session:
        def grouped(*columns):
            rows = session.execute(sa.select(*columns, sa.func.count()).group_by(*columns))
            return sorted(map(tuple, rows), key=repr)
        received = grouped(MailRecord.channel, MailRecord.outcome, MailRecord.category, MailRecord.lang,
                           sa.func.date(MailRecord.created_at))
        resolved = sum(n for _, outcome, *_, n in received if outcome in ("confirmed", "assumed"))
        return {"deflection": [resolved / sum(row[-1] for row in received)], "received": received,
                "searches": grouped(sa.func.date(SearchLog.created_at), SearchLog.lang, SearchLog.results == 0,
                                    SearchLog.click_position, SearchLog.clicked_article_id, SearchLog.contacted),
                "visits": grouped(PortalVisit.day, PortalVisit.searched, PortalVisit.viewed, PortalVisit.contacted),
                "rollup": grouped(SearchRollup.day, SearchRollup.lang, *(getattr(SearchRollup, name) for name in COUNTS))}


def test_searches_visits_and_questions_lose_their_words_and_visitors_and_every_count_stays(app, make_article):
    article = make_article()
    insight_rows(app, article.id, 400, 1)
    insight_rows(app, article.id, 10, 2)
    with session_scope(app) as session:  # the contact form's counts: one of an hour ago, one of two days ago
        session.add_all([RateCount(key=f"rate-{hours}", window_start=utcnow() - timedelta(hours=hours), count=3)
                         for hours in (1, 48)])
    with session_scope(app) as session:
        assert len(rollup.roll_up(session, limit=500)) >= 390  # the daily search roll-up of both days (and those between)
    before, batches = figures(app), []
    with session_scope(app) as session:
        counts = retention.purge(session, retention.cutoff(app.config), batch=2, between=lambda: batches.append(1))
    assert figures(app) == before and before["deflection"] == [4 / 6]
    assert [counts[name] for name in ("search_log", "portal_visits", "mail_records", "rate_counts",
                                      "search_rollup")] == [3, 1, 3, 1, 1]
    assert len(batches) == 2 + 1 + 2  # a commit every two rows: search log, visits, mail
    with session_scope(app) as session:
        searches = session.execute(sa.select(SearchLog.query, SearchLog.visitor, SearchLog.group_key)
                                   .order_by(SearchLog.id)).all()
        assert searches[:4] == [("", "", "")] * 3 + [("sample query", "sample:v1", "")]  # sample stays removable
        assert searches[4] == ("where is my parcel 2", "visitor-2", "parcel 2")
        assert list(session.scalars(sa.select(PortalVisit.visitor).order_by(PortalVisit.id))) == [None, "visitor-2"]
        rolled = session.execute(sa.select(SearchRollup.group_key, SearchRollup.wording, SearchRollup.searches)
                                 .where(SearchRollup.lang == "en", SearchRollup.span == 1)
                                 .order_by(SearchRollup.day)).all()
        assert rolled == [("", "", 3), ("parcel 2", "where is my parcel 2", 3)]  # the counts stay, the words go
        mail = session.execute(sa.select(MailRecord.subject, MailRecord.text).order_by(MailRecord.id)).all()
        assert mail == [("", "")] * 3 + [("My card ends 4242", WORDS)] * 3
        assert list(session.scalars(sa.select(RateCount.key))) == ["rate-1"]
    with session_scope(app) as session:  # again: nothing left to do
        assert sum(retention.purge(session, retention.cutoff(app.config)).values()) == 0


def test_the_older_setting_name_still_sets_the_retention_period(tmp_path):
    base = {"KB_INSTANCE_DIR": str(tmp_path)}
    now = utcnow()
    for environ, days in (({}, 365), ({"KB_RETENTION_DAYS": "100"}, 100), ({"KB_CUSTOMER_TEXT_DAYS": "30"}, 30)):
        config = load_config(environ={**base, **environ})
        assert retention.cutoff(config, now) == now - timedelta(days=days)
    with pytest.raises(ConfigError, match="KB_CUSTOMER_TEXT_DAYS"):
        load_config(environ={**base, "KB_CUSTOMER_TEXT_DAYS": "0"})


def test_finished_jobs_past_the_period_lose_the_customer_words_of_their_payload(app):
    old, recent = utcnow() - timedelta(days=400), utcnow() - timedelta(days=3)
    rows = [("contact.send", "done", old), ("capture.answer", "failed", old), ("contact.send", "pending", old),
            ("contact.send", "done", recent), ("recovery.send", "done", old)]
    with session_scope(app) as session:
        for n, (kind, state, when) in enumerate(rows):
            session.add(Job(kind=kind, key=f"payload-{n}", state=state, created_at=when,
                            payload={"record_id": n, "name": "Kari Nordmann"}))
    with session_scope(app) as session:
        counts = retention.purge(session, retention.cutoff(app.config))
        payloads = [session.scalar(sa.select(Job.payload).where(Job.key == f"payload-{n}")) for n in range(len(rows))]
    assert counts["job_payloads"] == 2
    # A job still to run keeps what it needs; a recent one and kinds without customer words are left alone.
    assert payloads[:2] == [{}, {}] and all(p["name"] == "Kari Nordmann" for p in payloads[2:])
