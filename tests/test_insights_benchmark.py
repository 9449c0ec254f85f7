"""benchmarks/insights.py on a tiny size, so its builder and timing cannot rot."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from benchmarks import insights as bench
from kb.autoreply.models import MailRecord
from kb.db import session_scope
from kb.insights import rollup
from kb.insights.models import ArticleDay, PortalVisit, SearchRollupDay
from kb.models import Article, SearchLog, utcnow


def test_the_builder_fills_a_year_in_proportion_and_every_page_is_timed_or_missing(app):
    now = utcnow()
    counts = bench.build(app, searches=2000, mails=300, now=now)
    with session_scope(app) as session:
        articles = session.scalar(sa.select(sa.func.count(Article.id)))
        assert counts == {"search_log": 2000, "portal_visits": 1400 // 365 * 365, "mail_records": 300, "votes": 40,
                          "article_days": articles * 365}
        assert session.scalar(sa.select(sa.func.count(ArticleDay.day))) == articles * 365
        first, last = session.execute(sa.select(sa.func.min(SearchLog.created_at),
                                                sa.func.max(SearchLog.created_at))).one()
        assert now - timedelta(days=366) < first < now - timedelta(days=360) and last <= now
        assert set(session.scalars(sa.select(SearchLog.lang).distinct())) == {"en", "zh", "nb"}
        assert session.scalar(sa.select(sa.func.count()).where(SearchLog.group_key == "")) == 0
        groups = session.execute(sa.select(SearchLog.group_key, sa.func.count()).group_by(SearchLog.group_key)
                                 .order_by(sa.func.count().desc())).all()
        assert len(groups) > 200 and groups[0][1] > 10 * groups[len(groups) // 2][1]  # Zipf-like: a long tail
        assert session.scalar(sa.select(sa.func.count()).where(SearchLog.results == 0)) > 0
        assert set(session.scalars(sa.select(MailRecord.channel).distinct())) == {"email", "web_form"}
        assert set(session.scalars(sa.select(MailRecord.outcome).distinct())) == {None, "confirmed", "assumed",
                                                                                  "reopened"}
        assert session.scalar(sa.select(sa.func.count(MailRecord.from_addr.distinct()))) < 250  # they write again
        assert session.scalar(sa.select(sa.func.count()).where(PortalVisit.visitor.is_(None))) == 0
        # the past days are rolled up, and the roll-up counts every search of them
        rolled = session.execute(sa.select(sa.func.count(), sa.func.sum(SearchRollupDay.searches))
                                 .where(SearchRollupDay.lang == "")).one()
        raw = session.scalar(sa.select(sa.func.count()).where(SearchLog.created_at < rollup.day_start(
            max(session.scalars(sa.select(SearchRollupDay.day))) + rollup.DAY)))
        assert rolled[0] >= 362 and rolled[1] == raw
    lines: list[str] = []
    results = bench.time_pages(app, runs=1, out=lines.append)
    pages = [url for url, _, _ in results if url.split("?")[0] in bench.PAGES and "format=" not in url]
    assert len(pages) == 2 * len(bench.PAGES) + len(bench.LONG_PAGES) and len(lines) == len(results)
    for (url, status, median), line in zip(results, lines):
        assert status in (200, 404) and line.endswith(url)
        assert (median is None) == (status == 404) == line.lstrip().startswith("missing")
