"""The daily search roll-up: the report reads the same from it as from the raw rows, and it never goes stale."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from kb import jobs
from kb.db import session_scope
from kb.insights import rollup, sample, searches
from kb.insights.models import ArticleDay, PortalVisit, SearchRollup, SearchRollupDay, SearchRollupHour
from kb.insights.periods import Period
from kb.jobs.models import Job
from kb.jobs.scheduling import DAILY, HANDLERS, schedule_daily
from kb.models import SearchLog, utcnow
from kb.web import create_app
from tests.conftest import close_app, make_config

D0 = datetime(2030, 5, 6, tzinfo=timezone.utc)  # a Monday, UTC midnight
NOW = D0 + timedelta(days=6)
SETTINGS = {"TIME_ZONE": "Europe/Oslo"}
TABLES = ("top", "no_results", "no_click", "gaps")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One app for the module (no articles needed: the report reads the search log alone)."""
    app = create_app(make_config(tmp_path_factory.mktemp("insights-rollup")))
    yield app
    close_app(app)


@pytest.fixture
def session(app):
    """A session on an empty search log and roll-up."""
    with session_scope(app) as s:
        for model in (SearchLog, SearchRollup, SearchRollupDay, SearchRollupHour, PortalVisit, ArticleDay, Job):
            s.execute(sa.delete(model))
        s.commit()
        yield s


def search(session, at, visitor, query, key, lang="en", results=3, position=None, contacted=False):
    """One logged search."""
    session.add(SearchLog(query=query, lang=lang, results=results, visitor=visitor, group_key=key, created_at=at,
                          updated_at=at, click_position=position, contacted=contacted))


def fixture_rows(session):
    """Searches over four days, each visitor on one day only (so visitors and visitor-days agree)."""
    hours = [timedelta(hours=h) for h in (1, 7, 13, 19, 23)]  # before and after the period's noon edges
    n = 0
    for day in range(4):
        for h in hours:
            at = D0 + timedelta(days=day) + h
            n += 1
            search(session, at, f"v{n}", "Refund policy", "polici refund", results=4, position=1)
            search(session, at, f"v{n}", "refund policies", "polici refund", results=0, contacted=n % 3 == 0)
            search(session, at, f"w{n}", "Hvor er pakken", "pakk", lang="nb", results=0)
            search(session, at + timedelta(minutes=5), f"w{n}", "hvor er pakken min", "pakk", lang="nb", results=2)
            search(session, at, "", "api search", "api search", results=5)  # no visitor: searches, not customers
        search(session, D0 + timedelta(days=day, hours=12), "", "old row", "", results=0)  # no group: totals only
    session.commit()


def everything(session, period):
    """The report's tables, totals and chart for ``period``."""
    tables, summary = searches.report(session, period, TABLES, limit=50)
    return tables, summary, searches.per_day(session, period, SETTINGS)


@pytest.mark.parametrize("lang", ["", "nb"])
def test_the_report_is_the_same_from_the_roll_up_and_from_the_raw_rows(session, lang):
    fixture_rows(session)
    period = Period(D0 + timedelta(hours=12), D0 + timedelta(days=3, hours=12), None, lang)  # partial edge days
    raw = everything(session, period)
    assert rollup.coverage(session, period).runs == []
    assert [d.isoformat() for d in rollup.roll_up(session, NOW)] == [
        (D0 + timedelta(days=n)).date().isoformat() for n in range(5)]  # D4 too: over by SETTLE at NOW
    cover = rollup.coverage(session, period)
    assert cover.runs == [((D0 + timedelta(days=1)).date(), (D0 + timedelta(days=2)).date())]
    assert cover.raw == [(period.start, D0 + timedelta(days=1)), (D0 + timedelta(days=3), period.end)]
    assert everything(session, period) == raw
    tables, summary, _ = raw
    assert summary.searches == (30 if lang else 78) and summary.visitors == (15 if lang else 30)
    assert [g.query for g in tables["top"]] == (["Hvor er pakken"] if lang else
                                                ["Hvor er pakken", "Refund policy", "api search"])


def test_a_customer_counts_once_per_day_they_searched(session):
    for day, minutes in ((1, 0), (1, 30), (2, 0)):  # twice on day 1, once on day 2
        search(session, D0 + timedelta(days=day, hours=9, minutes=minutes), "v1", "refund", "refund")
    session.commit()
    period = Period(D0, D0 + timedelta(days=4), None)
    before = searches.report(session, period)
    rollup.roll_up(session, NOW)
    after = searches.report(session, period)
    assert after == before
    top, summary = after[0]["top"][0], after[1]
    assert (top.searches, top.visitors, summary.visitors) == (3, 2, 2)  # visitor-days, not one visitor


def test_raw_rows_of_today_add_to_the_rolled_up_days_and_rebuilding_changes_nothing(session):
    fixture_rows(session)
    rollup.roll_up(session, NOW)
    rolled = session.execute(sa.select(SearchRollup.day, SearchRollup.lang, SearchRollup.group_key,
                                       SearchRollup.searches, SearchRollup.visitors, SearchRollup.wording)
                             .order_by(SearchRollup.day, SearchRollup.lang, SearchRollup.group_key)).all()
    period = Period(D0, NOW, None)
    before = searches.report(session, period)[1]
    assert rollup.roll_up(session, NOW) == [] and rollup.pending(session, NOW) == []
    for day in (D0 + timedelta(days=n) for n in range(4)):  # rebuild: the same rows
        rollup.build_day(session, day.date())
    session.commit()
    assert session.execute(sa.select(SearchRollup.day, SearchRollup.lang, SearchRollup.group_key,
                                     SearchRollup.searches, SearchRollup.visitors, SearchRollup.wording)
                           .order_by(SearchRollup.day, SearchRollup.lang, SearchRollup.group_key)).all() == rolled
    search(session, NOW - timedelta(hours=1), "t1", "refund", "polici refund", results=0)  # today: not rolled up
    session.commit()
    after = searches.report(session, period)[1]
    assert (after.searches, after.visitors, after.no_results) == (
        before.searches + 1, before.visitors + 1, before.no_results + 1)
    assert searches.per_day(session, period, {})[-1].searches == 1


def test_sample_remove_leaves_no_stale_roll_up(session):
    now = utcnow()
    sample.load(session, now)
    session.commit()
    days = {at.date() for at in session.scalars(sa.select(SearchLog.created_at))}
    rolled = set(session.scalars(sa.select(SearchRollupDay.day).where(SearchRollupDay.lang == "")))
    assert len(rolled) >= sample.DAYS - 2 and rolled <= days  # the sample's finished days are rolled up
    real_day = min(rolled)
    search(session, rollup.day_start(real_day) + timedelta(hours=10), "real", "refund", "refund")
    rollup.build_day(session, real_day)
    sample.remove(session)
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(SearchRollupDay)) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(SearchRollup)) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(SearchRollupHour)) == 0
    rollup.roll_up(session, now)  # the job counts the real rows again
    period = Period(rollup.day_start(real_day), now, None)
    assert searches.summary(session, period).searches == 1
    assert session.scalar(sa.select(sa.func.sum(SearchRollupDay.searches)).where(SearchRollupDay.lang == "")) == 1


def test_the_daily_job_rolls_up_the_finished_days(app, session):
    assert rollup.KIND in DAILY and rollup.KIND in HANDLERS
    today = rollup.day_start(utcnow().date())
    for days_ago in (3, 2):
        search(session, today - timedelta(days=days_ago, hours=-10), "v", "refund", "refund")
    session.commit()
    schedule_daily(session)
    session.commit()
    assert jobs.run_due(app)["done"] >= 1
    session.expire_all()
    rolled = list(session.scalars(sa.select(SearchRollupDay.day).where(SearchRollupDay.lang == "")
                                  .order_by(SearchRollupDay.day)))
    assert rolled[:2] == [(today - timedelta(days=3)).date(), (today - timedelta(days=2)).date()]


def test_a_whole_month_is_read_from_its_month_rows_and_counts_the_same(session):
    june = datetime(2030, 6, 1, tzinfo=timezone.utc)
    for day in range(-1, 32):  # May 31 to July 2
        at = june + timedelta(days=day, hours=9)
        search(session, at, f"v{day}", "Refund policy", "polici refund", results=0, contacted=day % 4 == 0)
        search(session, at, f"v{day}", "sizes", "size", results=3, position=None if day % 3 else 2)
        search(session, at + timedelta(hours=5), f"w{day}", "sizes", "size", results=2)
    session.commit()
    period = Period(june - timedelta(hours=12), june + timedelta(days=31, hours=12), None)
    raw = everything(session, period)
    rollup.roll_up(session, june + timedelta(days=40))
    cover = rollup.coverage(session, period)
    assert cover.months == [june.date()] and cover.days == [((june + timedelta(days=30)).date(),) * 2]
    assert everything(session, period) == raw
    assert raw[0]["top"][0].visitors == 64 and raw[1].searches == 1 + 30 * 3 + 3 + 2
    session.execute(sa.delete(SearchRollup).where(SearchRollup.span > 1))  # June was read from its month rows:
    assert searches.report(session, period)[0]["top"][0].searches == 4  # without them, only the edge days are left
    session.rollback()
