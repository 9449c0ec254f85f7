"""Search analytics: one row per search as typed, stem groups, result clicks, views per day, the report page."""

from __future__ import annotations

import csv
import html as html_lib
import io
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from kb import articles as kb_articles
from kb import search
from kb.db import session_scope
from kb.insights import searches, searchlog
from kb.insights.models import ArticleDay, PortalVisit
from kb.insights.periods import Period
from kb.models import Article, SearchLog
from kb.web import create_app
from tests.agent_helpers import ADMIN, EDITOR, logged_in, make_agent
from tests.conftest import app_with_article, close_app, make_config

SETTINGS = {"SEARCH_COLLAPSE_SECONDS": 10}
T0 = datetime(2030, 5, 6, 12, 0, tzinfo=timezone.utc)
IP = "203.0.113.77"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One app for the module: refund articles (three per result page of two), an admin and an editor."""
    app = create_app(make_config(tmp_path_factory.mktemp("insights-search"), SEARCH_PAGE_SIZE=2))
    make_agent(app, ADMIN, name="Ada Admin", role="admin")
    make_agent(app, EDITOR, name="Edith Editor", role="editor")
    with session_scope(app) as session:
        for title in ("Refund a card payment", "Refund a bank transfer", "Refund a gift card"):
            kb_articles.create_article(session, kb_articles.ArticleDraft(title=title, body_md="How to get a refund."),
                                       status="published")
        session.commit()
    search.process_outbox(app)
    yield app
    close_app(app)


@pytest.fixture
def session(app):
    """A session on an empty search log, visits and views (the articles and agents stay)."""
    with session_scope(app) as s:
        for model in (SearchLog, PortalVisit, ArticleDay):
            s.execute(sa.delete(model))
        s.commit()
        yield s


def rows(session):
    """(visitor, query, results) of every logged search, oldest first."""
    return [tuple(r) for r in session.execute(
        sa.select(SearchLog.visitor, SearchLog.query, SearchLog.results).order_by(SearchLog.id))]


def typed(session, visitor, text, seconds, results=3):
    """Log ``text`` as searched ``seconds`` after T0."""
    return searchlog.log_search(session, visitor=visitor, query=text, lang="en", results=results, settings=SETTINGS,
                                now=T0 + timedelta(seconds=seconds))


def test_keystrokes_collapse_into_one_search_per_visitor_and_window(session):
    ids = {typed(session, "v1", text, n) for n, text in enumerate(["r", "re", "Ref", "refund"])}
    assert len(ids) == 1 and rows(session) == [("v1", "refund", 3)]
    assert typed(session, "v1", "refu", 8, results=5) in ids  # backspacing, still within the window
    assert rows(session) == [("v1", "refu", 5)]
    assert typed(session, "v2", "refund", 9) not in ids  # another visitor: a search of their own
    assert typed(session, "v1", "refund  policy", 30) not in ids  # after the window: a new search
    assert typed(session, "v1", "delivery", 31) != typed(session, "v1", "refund", 32)  # not an extension
    typed(session, None, "refund", 33), typed(session, None, "refund", 34)  # the API: never collapses
    assert rows(session) == [("v1", "refu", 5), ("v2", "refund", 3), ("v1", "refund  policy", 3),
                             ("v1", "delivery", 3), ("v1", "refund", 3), ("", "refund", 3), ("", "refund", 3)]
    last = session.scalar(sa.select(SearchLog).where(SearchLog.visitor == "v1").order_by(SearchLog.id.desc()))
    assert last.group_key == "refund" and last.updated_at == T0 + timedelta(seconds=32)


def test_an_opened_search_is_finished_and_page_two_is_the_same_search(session):
    first = typed(session, "v1", "refund", 0)
    article_id = session.scalar(sa.select(sa.func.min(Article.id)))
    assert searchlog.record_click(session, search_id=first, visitor="v1", article_id=article_id, position=1)
    assert typed(session, "v1", "refunds", 2) != first  # typing on after opening a result: a new search
    again = searchlog.log_search(session, visitor="v1", query="Refunds", lang="en", results=3, settings=SETTINGS,
                                 now=T0 + timedelta(minutes=20), page=2)
    assert again == session.scalar(sa.select(sa.func.max(SearchLog.id))) and len(rows(session)) == 2


@pytest.mark.parametrize("lang, same, other", [
    ("en", ["refund", "Refunds", "Refund!", "how do I get a refund?"], "refund card"),
    ("nb", ["levering", "Leveringen", "leveringer"], "pakken"),
    ("zh", ["退款", "退款！", " 退款 "], "如何退款"),
])
def test_near_identical_queries_share_a_group(lang, same, other):
    keys = {searchlog.group_key(query, lang) for query in same}
    assert len(keys) == 1 and searchlog.group_key(other, lang) not in keys
    assert searchlog.group_key("how do I", "en") == "how do i"  # stop words only: not one empty group
    assert searchlog.group_key("如何退款", "zh").split() == ["如何", "退款"]  # segmented, sorted


def result_links(html):
    """(slug, search id, position) of each result link on a search page."""
    links = re.findall(r'<h2><a href="([^"]+)">', html)
    found = []
    for href in links:
        url = urlsplit(html_lib.unescape(href))
        args = parse_qs(url.query)
        found.append((url.path.rsplit("/", 1)[1], int(args["search"][0]), int(args["pos"][0])))
    return found


def test_a_click_records_its_position_once_for_the_same_visitor_and_never_for_bots(app, session):
    customer, stranger = app.test_client(), app.test_client()
    page1 = result_links(customer.get("/en/search?q=refund").get_data(as_text=True))
    page2 = result_links(customer.get("/en/search?q=refund&page=2").get_data(as_text=True))
    assert [p for _s, _i, p in page1 + page2] == [1, 2, 3]  # positions run on across pages
    assert len({i for _s, i, _p in page1 + page2}) == 1  # page 2 is the same search
    slug, search_id, _pos = page2[0]
    opened = f"/en/articles/{slug}?search={search_id}&pos=3"
    assert customer.get(opened, headers={"User-Agent": "curl/8.5"}).status_code == 200  # a script: not counted
    stranger.get("/en/search?q=delivery")
    assert stranger.get(opened).status_code == 200  # a shared link: not this visitor's search
    assert session.scalar(sa.select(SearchLog.click_position)) is None
    assert customer.get(opened).status_code == 200  # a plain link: no JavaScript needed
    first_slug, _i, _p = page1[0]
    customer.get(f"/en/articles/{first_slug}?search={search_id}&pos=1")  # a second result: not the first click
    assert customer.get(f"/en/articles/{slug}?search=x&pos=-1").status_code == 200  # mangled: still opens
    session.expire_all()
    row = session.scalar(sa.select(SearchLog).where(SearchLog.id == search_id))
    article_id = session.scalar(sa.select(Article.id).where(Article.slug == slug))
    assert (row.clicked_article_id, row.click_position, row.visitor != "") == (article_id, 3, True)
    assert session.scalar(sa.select(sa.func.count()).select_from(SearchLog)) == 2
    assert session.scalar(sa.select(sa.func.count()).where(PortalVisit.searched.is_(True))) == 2


def test_a_new_visitors_search_and_visit_are_found_by_their_next_search(app, session):
    # The first page makes the visitor and skips looking for their rows: the next page must find them.
    client = app.test_client()
    client.get("/en/search?q=refu")
    client.get("/en/search?q=refund")  # typing on within the window: the same search
    visitor = session.scalar(sa.select(SearchLog.visitor))
    assert visitor and rows(session) == [(visitor, "refund", 3)]
    assert session.execute(sa.select(PortalVisit.visitor, PortalVisit.searched)).all() == [(visitor, True)]


def visits(session):
    """(visitor, searched, viewed, contacted) of every visit row, oldest first."""
    return [tuple(r) for r in session.execute(sa.select(
        PortalVisit.visitor, PortalVisit.searched, PortalVisit.viewed, PortalVisit.contacted).order_by(PortalVisit.id))]


def test_a_visit_is_one_row_a_day_whose_flags_only_ever_turn_on(session):
    searchlog.record_visit(session, "v1", "en", searched=True)
    searchlog.record_visit(session, "v1", "en", viewed=True)
    searchlog.record_visit(session, "v2", "nb", contacted=True, new_visitor=True)
    searchlog.record_visit(session, None, "en", searched=True)  # no cookie: no visit
    session.commit()
    assert visits(session) == [("v1", True, True, False), ("v2", False, False, True)]
    statements, engine = [], session.get_bind()

    def note(_conn, _cursor, statement, *_rest):
        statements.append(statement.split()[0])
    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        searchlog.record_visit(session, "v1", "en", viewed=True, searched=True)  # both noted already
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)
    assert statements == ["SELECT"]  # a visit's later pages write nothing


def test_a_visit_another_tab_adds_between_the_look_and_the_insert_still_gets_the_flag(app, session):
    engine, tabs = session.get_bind(), []

    def other_tab(_conn, _cursor, statement, *_rest):
        """Right after this request looked and found no visit, another tab of the visitor writes one."""
        if statement.startswith("SELECT") and "portal_visits" in statement and not tabs:
            tabs.append("viewed")
            with session_scope(app) as tab:
                searchlog.record_visit(tab, "v1", "en", viewed=True)
                tab.commit()
    sa.event.listen(engine, "after_cursor_execute", other_tab)
    try:
        searchlog.record_visit(session, "v1", "en", searched=True)  # its insert loses to the unique (visitor, day)
    finally:
        sa.event.remove(engine, "after_cursor_execute", other_tab)
    session.commit()
    assert visits(session) == [("v1", True, True, False)]


@pytest.mark.postgres
def test_a_portal_search_its_visit_and_its_click_are_logged_on_postgresql(app_factory, pg_database_url):
    pg_app = app_with_article(app_factory, pg_database_url)
    client = pg_app.test_client()
    slug, search_id, pos = result_links(client.get("/en/search?q=refund").get_data(as_text=True))[0]
    assert client.get(f"/en/articles/{slug}?search={search_id}&pos={pos}").status_code == 200
    with session_scope(pg_app) as pg:
        row = pg.get(SearchLog, search_id)
        assert (row.query, row.click_position, bool(row.visitor)) == ("refund", 1, True)
        assert pg.execute(sa.select(PortalVisit.visitor, PortalVisit.searched)).all() == [(row.visitor, True)]


def test_the_counter_counts_views_per_day_and_the_visit(app, session):
    article = session.scalar(sa.select(Article).order_by(Article.id))
    for reader in (app.test_client(), app.test_client()):
        reader.get(f"/en/articles/{article.slug}")
        for _ in range(2):  # one view per session and day
            assert reader.get(f"/articles/{article.slug}/seen").status_code == 200
    app.test_client().get(f"/articles/{article.slug}/seen", headers={"User-Agent": "Googlebot/2.1"})
    session.expire_all()
    assert session.execute(sa.select(ArticleDay.article_id, ArticleDay.views)).all() == [(article.id, 2)]
    assert session.scalar(sa.select(sa.func.count()).where(PortalVisit.viewed.is_(True))) == 2
    searchlog.count_article_day(session, article.id)  # the UPDATE path of the upsert, outside a request
    searchlog.count_article_day(session, article.id, T0.date())  # and the INSERT path
    session.commit()
    assert session.scalar(sa.select(ArticleDay.views).where(ArticleDay.day == T0.date())) == 1
    assert session.scalar(sa.select(sa.func.max(ArticleDay.views))) == 3


def fixture_searches(session):
    """Known searches: 'refund' by 3 visitors (one opened a result), 'pakke' by 2 with none, one API search."""
    log = [("a", "refund", "en", 3, 0), ("b", "Refunds", "en", 3, 60), ("c", "refunds", "en", 3, 120),
           ("a", "pakke", "nb", 0, 200), ("b", "pakken", "nb", 0, 300), ("b", "pakke", "nb", 0, 400),
           ("", "xyzzy", "en", 0, 500), ("d", "old", "en", 1, -86_400 * 40)]
    ids = {}
    for visitor, query, lang, results, seconds in log:
        ids[query, visitor] = searchlog.log_search(session, visitor=visitor, query=query, lang=lang, results=results,
                                                   settings=SETTINGS, now=T0 + timedelta(seconds=seconds))
    article_id = session.scalar(sa.select(sa.func.min(Article.id))) or kb_articles.create_article(
        session, kb_articles.ArticleDraft(title="Refunds", body_md="How."), status="published").id
    searchlog.record_click(session, search_id=ids["refund", "a"], visitor="a", article_id=article_id, position=2)
    session.execute(sa.update(SearchLog).where(SearchLog.visitor == "b", SearchLog.query == "pakken")
                    .values(contacted=True))
    session.commit()


def test_the_report_groups_ranks_and_counts(session):
    fixture_searches(session)
    period = Period(T0 - timedelta(days=7), T0 + timedelta(days=1), 7)
    top = searches.groups(session, period, "top")
    assert [(g.key, g.query, g.visitors, g.searches, g.no_results, g.no_click, g.contacted) for g in top] == [
        ("refund", "refund", 3, 3, 0, 2, 0), ("pakk", "pakke", 2, 3, 3, 0, 1), ("xyzzi", "xyzzy", 0, 1, 1, 0, 0)]
    assert [g.key for g in searches.groups(session, period, "no_results")] == ["pakk", "xyzzi"]
    assert [(g.key, g.searches) for g in searches.groups(session, period, "no_click")] == [("refund", 2)]
    assert [g.key for g in searches.top_gaps(session, period, 2)] == ["pakk", "refund"]
    nb = Period(period.start, period.end, 7, "nb")
    assert [(g.key, g.lang) for g in searches.groups(session, nb, "top")] == [("pakk", "nb")]
    assert searches.summary(session, period) == searches.SearchSummary(7, 3, 4, 2, 1)
    days = searches.per_day(session, period, {"TIME_ZONE": "UTC"})
    assert len(days) == 9 and [(d.day, d.searches, d.no_results) for d in days if d.searches] == [(T0.date(), 7, 4)]
    late = Period(T0 - timedelta(days=1), T0 + timedelta(days=1), None)
    searchlog.log_search(session, visitor="e", query="late", lang="en", results=0, settings=SETTINGS,
                         now=T0.replace(hour=23, minute=30))
    oslo = searches.per_day(session, late, {"TIME_ZONE": "Europe/Oslo"})  # 23:30 UTC is 01:30 the next day there
    assert [(d.day.day, d.searches) for d in oslo if d.searches] == [(6, 7), (7, 1)]


def page_tables(html):
    """Each table's rows as the page shows them, keyed by the section id."""
    tables = {}
    for name, body in re.findall(r'<section class="insights-section" id="table-(\w+)">(.*?)</section>', html, re.S):
        found = []
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)[1:]:
            cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
            found.append([html_lib.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
        tables[name] = found
    return tables


def test_the_page_shows_the_tables_and_each_csv_equals_its_table(app, session):
    fixture_searches(session)
    admin, editor = logged_in(app, ADMIN), logged_in(app, EDITOR)
    query = f"from={(T0 - timedelta(days=6)).date()}&to={T0.date()}"
    html = admin.get(f"/agent/insights/search?{query}").get_data(as_text=True)
    tables = page_tables(html)
    assert [row[:6] for row in tables["top"]] == [["refund", "3", "3", "0", "2", "0%"],
                                                  ["pakke", "2", "3", "3", "0", "33%"], ["xyzzy", "0", "1", "1", "0", "0%"]]
    for name in ("top", "no_results", "no_click", "per_day"):
        response = admin.get(f"/agent/insights/search?{query}&format=csv&table={name}")
        assert response.mimetype == "text/csv"
        lines = list(csv.reader(io.StringIO(response.get_data(as_text=True))))[1:]
        assert lines == [row[:len(lines[0])] for row in tables[name]] and lines
    assert admin.get(f"/agent/insights/search?{query}&format=csv&table=nope").status_code == 404
    write = html_lib.unescape(re.search(r'href="([^"]+)">Write an article', html).group(1))
    assert 'value="pakke"' in admin.get(write).get_data(as_text=True)  # the editor's title, pre-filled
    synonym = html_lib.unescape(re.search(r'href="([^"]+)">Add a synonym', html).group(1))
    assert 'value="pakke"' in admin.get(synonym).get_data(as_text=True) and "lang=nb" in synonym
    editor_html = editor.get(f"/agent/insights/search?{query}").get_data(as_text=True)
    assert "Add a synonym" not in editor_html and "Only an admin can add synonyms" in editor_html
    chart = admin.get(f"/agent/insights/search/chart/per_day.svg?{query}")
    assert chart.mimetype == "image/svg+xml" and b"<svg" in chart.data and b"Found nothing" in chart.data
    assert app.test_client().get("/agent/insights/search").status_code in (302, 401, 403)


def test_no_address_is_stored_and_a_broken_log_never_fails_a_search(app, session, monkeypatch):
    customer = app.test_client()
    environ = {"REMOTE_ADDR": IP}
    links = result_links(customer.get("/en/search?q=refund", environ_base=environ).get_data(as_text=True))
    slug, search_id, pos = links[0]
    customer.get(f"/en/articles/{slug}?search={search_id}&pos={pos}", environ_base=environ)
    customer.get(f"/articles/{slug}/seen", environ_base=environ)
    for model in (SearchLog, PortalVisit, ArticleDay):
        values = [str(v) for row in session.execute(sa.select(model)).scalars() for v in vars(row).values()]
        assert values and not any(IP in v for v in values)

    def broken(*_args, **_kwargs):
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))

    monkeypatch.setattr(searchlog, "log_search", broken)
    response = customer.get("/en/search?q=refund")
    assert response.status_code == 200 and 'href="/en/articles/' in response.get_data(as_text=True)


@pytest.mark.postgres
def test_the_report_reads_the_same_on_postgresql(app_factory, pg_database_url):
    pg_app = app_factory(DATABASE_URL=pg_database_url)
    with session_scope(pg_app) as pg:
        fixture_searches(pg)
        period = Period(T0 - timedelta(days=7), T0 + timedelta(days=1), 7)
        found, summary = searches.report(pg, period)
        assert [(g.query, g.visitors, g.searches, g.contacted) for g in found["top"]] == [
            ("refund", 3, 3, 0), ("pakke", 2, 3, 1), ("xyzzy", 0, 1, 0)]
        assert [g.key for g in found["no_click"]] == ["refund"] and summary == searches.SearchSummary(7, 3, 4, 2, 1)
        days = searches.per_day(pg, period, {"TIME_ZONE": "Europe/Oslo"})
        assert [(d.day, d.searches, d.no_results) for d in days if d.searches] == [(T0.date(), 7, 4)]
