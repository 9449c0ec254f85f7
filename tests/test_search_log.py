"""The search log's buffer: API searches commit nothing in their request; their rows are written in batches."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import html as html_lib
import pytest
import sqlalchemy as sa

from kb import search
from kb.db import get_db, session_scope
from kb.insights import logbuffer, searchlog
from kb.models import SearchLog, utcnow
from tests import polling

HOLD = {"SEARCH_LOG_FLUSH_SECONDS": 60}  # long enough that only the test's own flush writes


@pytest.fixture
def refund_app(app_factory, make_article_in):
    """A factory: an app with these settings and two indexed refund articles."""
    def make(**settings):
        app = app_factory(**settings)
        make_article_in(app, "Refund a card payment")
        make_article_in(app, "Refund a bank transfer")
        search.process_outbox(app)
        return app
    return make


@pytest.fixture
def make_article_in():
    """``make_article_in(app, title)``: a published article, committed."""
    from kb import articles as kb_articles

    def make(app, title):
        with session_scope(app) as session:
            kb_articles.create_article(session, kb_articles.ArticleDraft(title=title, body_md="How to get a refund."),
                                       status="published")
            session.commit()
    return make


def logged(app) -> list[tuple]:
    """(query, lang, results, visitor, group_key) of every search-log row, by id."""
    with session_scope(app) as session:
        return [tuple(r) for r in session.execute(sa.select(
            SearchLog.query, SearchLog.lang, SearchLog.results, SearchLog.visitor, SearchLog.group_key)
            .order_by(SearchLog.id))]


def test_an_api_search_commits_nothing_and_its_row_comes_with_the_flush(refund_app):
    app = refund_app(**HOLD)
    client = app.test_client()
    client.get("/api/search?q=card")  # the first search loads the synonym sets (and commits that session)
    search.flush_log(app)
    commits = []
    note = commits.append  # one object, so the listener can be removed
    sa.event.listen(get_db(app).sessionmaker, "after_commit", note)
    try:
        assert client.get("/api/search?q=Refunds").get_json()["total"] == 2
    finally:
        sa.event.remove(get_db(app).sessionmaker, "after_commit", note)
    assert commits == [] and [r[0] for r in logged(app)] == ["card"]
    assert search.flush_log(app) == 1
    # The same row log_search writes: its stems group it with "refund".
    assert logged(app)[1:] == [("Refunds", "en", 2, "", searchlog.group_key("Refunds", "en"))] and \
        searchlog.group_key("Refunds", "en") == "refund"
    assert search.flush_log(app) == 0


def test_the_thread_writes_waiting_rows_in_order_within_the_period(refund_app):
    app = refund_app(SEARCH_LOG_FLUSH_SECONDS=0.05)
    client = app.test_client()
    for q in ("refund", "bank transfer", "nothing like this"):
        client.get(f"/api/search?q={q}")
    assert polling.poll(lambda: len(logged(app)) == 3, 30)
    assert [(r[0], r[2]) for r in logged(app)] == [("refund", 2), ("bank transfer", 1), ("nothing like this", 0)]


def test_closing_writes_what_waits_and_later_searches_write_in_their_request(refund_app):
    app = refund_app(**HOLD)
    client = app.test_client()
    client.get("/api/search?q=refund")
    app.extensions["kb.search"].close_log()  # what the backends' close (and the process's exit) do
    assert [r[0] for r in logged(app)] == ["refund"]
    client.get("/api/search?q=card")
    assert [r[0] for r in logged(app)] == ["refund", "card"]


def test_zero_seconds_writes_each_api_search_in_its_request(refund_app):
    app = refund_app(SEARCH_LOG_FLUSH_SECONDS=0)
    assert app.extensions["kb.search.log"] is None
    app.test_client().get("/api/search?q=refund")
    assert [r[0] for r in logged(app)] == ["refund"]


def result_links(html: str) -> list[tuple[str, int, int]]:
    """(slug, search id, position) of each result link on a portal search page."""
    found = []
    for href in re.findall(r'<h2><a href="([^"]+)">', html):
        url = urlsplit(html_lib.unescape(href))
        args = parse_qs(url.query)
        found.append((url.path.rsplit("/", 1)[1], int(args["search"][0]), int(args["pos"][0])))
    return found


def test_clicks_while_api_rows_wait_land_on_the_portal_search_and_never_on_a_waiting_row(refund_app):
    app = refund_app(**HOLD)
    api, customer = app.test_client(), app.test_client()
    api.get("/api/search?q=refund")  # waits in memory
    links = result_links(customer.get("/en/search?q=refund").get_data(as_text=True))
    slug, search_id, pos = links[0]
    assert [r[3] != "" for r in logged(app)] == [True]  # the portal's row is there at once: its id is in the links
    # A click naming the id the waiting row will get: no row has it yet, so nothing changes, and the page opens.
    assert customer.get(f"/en/articles/{slug}?search={search_id + 1}&pos=1").status_code == 200
    assert customer.get(f"/en/articles/{slug}?search={search_id}&pos={pos}").status_code == 200
    search.flush_log(app)
    with session_scope(app) as session:
        rows = session.execute(sa.select(SearchLog.id, SearchLog.visitor, SearchLog.click_position)
                               .order_by(SearchLog.id)).all()
    assert [(r.id, r.visitor != "", r.click_position) for r in rows] == [(search_id, True, pos), (search_id + 1, False, None)]
    # Once written, the API search's row still takes no click: it has no visitor to match.
    customer.get(f"/en/articles/{slug}?search={search_id + 1}&pos=1")
    with session_scope(app) as session:
        assert session.scalar(sa.select(SearchLog.click_position).where(SearchLog.id == search_id + 1)) is None


def test_a_refusing_database_keeps_the_newest_rows_up_to_the_bound(app, monkeypatch, caplog):
    monkeypatch.setattr(logbuffer, "MAX_ROWS", 3)
    refusing = [True]

    def engine():
        if refusing[0]:
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return get_db(app).engine

    buffer = logbuffer.LogBuffer(engine, 60, 365)
    try:
        now = utcnow()
        with caplog.at_level(logging.WARNING, logger="kb.insights.logbuffer"):
            for k in range(4):
                assert buffer.add(f"q{k}", "en", k, now)
            assert buffer.flush() == 0 and len(buffer.rows) == 3  # refused: kept for the next try
            buffer.add("q4", "en", 4, now)
            refusing[0] = False
            assert buffer.flush() == 3
    finally:
        buffer.close()
    assert [r[0] for r in logged(app)] == ["q2", "q3", "q4"]
    assert sum(int(n) for n in re.findall(r"dropped (\d+) searches", caplog.text)) == 2


def test_a_row_that_waited_past_the_retention_period_is_written_blanked(app):
    buffer = logbuffer.LogBuffer(lambda: get_db(app).engine, 60, 365)
    try:
        buffer.add("my card number is 4111", "en", 0, utcnow() - timedelta(days=366))
        buffer.add("refund", "en", 2, utcnow())
    finally:
        buffer.close()
    assert logged(app) == [("", "en", 0, "", ""), ("refund", "en", 2, "", "refund")]


def test_a_row_the_database_always_refuses_is_dropped_and_the_rows_behind_it_are_written(app, caplog):
    buffer = logbuffer.LogBuffer(lambda: get_db(app).engine, 60, 365)
    try:
        now = utcnow()
        buffer.add("before", "en", 1, now)
        buffer.add("poison", "en", 2**70, now)  # no database column holds it: refused every time
        buffer.add("x" * 100_000, "en", 3, now)  # huge: cut to the column's bound when added
        buffer.add("after", "en", 4, now)
        with caplog.at_level(logging.WARNING, logger="kb.insights.logbuffer"):
            assert buffer.flush() == 3
        assert buffer.rows == [] and "poison" not in caplog.text
    finally:
        buffer.close()
    rows = logged(app)
    assert [(q[:6], n) for q, _lang, n, *_rest in rows] == [("before", 1), ("xxxxxx", 3), ("after", 4)]
    assert len(rows[1][0]) == searchlog.MAX_QUERY
