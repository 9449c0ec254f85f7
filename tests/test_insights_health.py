"""Article health on real parts: one app per module (SQLite), the Flask test client, the aiosmtpd sink, the job runner.

The fixture writes known views (ArticleDay rows, as the portal's counter does), votes and search
clicks around "now": inside the default 30-day period and outside it, so every figure is checked
against what was written.
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from kb import articles as kb_articles
from kb import jobs
from kb.db import session_scope
from kb.insights import health, review
from kb.insights.models import ArticleDay
from kb.insights.periods import Period
from kb.jobs.models import Job
from kb.jobs.scheduling import schedule_daily
from kb.models import Agent, Article, SearchLog, Vote, utcnow
from kb.web import create_app
from tests.agent_helpers import ADMIN, EDITOR, SUPPORT, login, make_agent, token
from tests.conftest import close_app, make_config
from tests.mailservers.smtp import SmtpSink

pytestmark = pytest.mark.filterwarnings("error")
NOW = utcnow()
PERIOD = Period(NOW - timedelta(days=30), NOW, 30)
OTHER_AUTHOR = "otto@example.com"
_visitor = itertools.count(1)


def votes(session, article_id: int, helpful: int, unhelpful: int, *, days_ago: float = 2, reason: str = "",
          comment: str = "") -> None:
    """``helpful`` + ``unhelpful`` votes on the article, ``days_ago`` days ago."""
    when = NOW - timedelta(days=days_ago)
    for n in range(helpful + unhelpful):
        session.add(Vote(article_id=article_id, visitor=f"v{next(_visitor)}", helpful=n < helpful,
                         reason="" if n < helpful else reason, comment=comment, created_at=when))


def article(session, title: str, author: Agent | None, **fields) -> int:
    """A published article; its id."""
    draft = kb_articles.ArticleDraft(title=title, body_md=f"{title}.", **fields)
    return kb_articles.create_article(session, draft, author=author, status="published").id


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The app, the SMTP sink, and the ids of the fixture's articles."""
    sink = SmtpSink()
    sink.start()
    tmp = tmp_path_factory.mktemp("health")
    app = create_app(make_config(tmp, **sink.settings(), BASE_URL="https://help.example.com"))
    make_agent(app, EDITOR, name="Edith")
    make_agent(app, OTHER_AUTHOR, name="Otto")
    make_agent(app, SUPPORT, role="support")
    make_agent(app, ADMIN, role="admin")
    ids = {}
    with session_scope(app) as s:
        edith = s.scalar(sa.select(Agent).where(Agent.email == EDITOR))
        otto = s.scalar(sa.select(Agent).where(Agent.email == OTHER_AUTHOR))
        for key, title, author in (("known", "Reset your password", otto), ("nine", "Nine votes", edith),
                                   ("ten", "Ten votes", edith), ("h59", "Fifty-nine percent", edith),
                                   ("h60", "Sixty percent", edith), ("fix", "To be fixed", otto),
                                   ("quiet", "Quiet article", None), ("sampled", "Flagged by samples", edith)):
            ids[key] = article(s, title, author)
        s.flush()
        known = ids["known"]
        # Views: 5 + 7 in the period, 100 before it.
        s.add_all([ArticleDay(article_id=known, day=(NOW - timedelta(days=3)).date(), views=5),
                   ArticleDay(article_id=known, day=(NOW - timedelta(days=1)).date(), views=7),
                   ArticleDay(article_id=known, day=(NOW - timedelta(days=60)).date(), views=100),
                   ArticleDay(article_id=ids["quiet"], day=(NOW - timedelta(days=2)).date(), views=40)])
        # Votes in the period: 3 helpful, 2 "out of date", 1 "hard to follow" (with a comment); 4 helpful before.
        votes(s, known, 3, 2, reason="out_of_date")
        votes(s, known, 0, 1, reason="hard_to_follow", comment="Step 3 is missing [email]", days_ago=1)
        votes(s, known, 4, 0, days_ago=45)
        # Searches that led to it: 2 clicks in the period, 1 before it; 1 search clicked another article.
        for days_ago, clicked in ((2, known), (5, known), (40, known), (2, ids["quiet"])):
            s.add(SearchLog(query="reset password", created_at=NOW - timedelta(days=days_ago), clicked_article_id=clicked,
                            click_position=1))
        votes(s, ids["nine"], 0, 9, reason="not_answered")
        votes(s, ids["ten"], 0, 10, reason="not_answered")
        votes(s, ids["h59"], 59, 41)
        votes(s, ids["h60"], 60, 40)
        votes(s, ids["fix"], 2, 8, reason="out_of_date")
        for n in range(12):  # sample data (kb sample) flags the page, never an author's inbox
            s.add(Vote(article_id=ids["sampled"], visitor=f"sample:{n}", helpful=False, created_at=NOW - timedelta(days=1)))
        s.get(Article, ids["quiet"]).review_by = (NOW - timedelta(days=1)).date()
        s.get(Article, ids["fix"]).created_at = NOW - timedelta(days=20)
        s.get(Article, ids["nine"]).review_by = (NOW + timedelta(days=10)).date()
    yield app, sink, ids
    close_app(app)
    sink.stop()


@pytest.fixture(scope="module")
def app(world):
    return world[0]


@pytest.fixture(scope="module")
def ids(world):
    return world[2]


def by_id(rows):
    return {row.article_id: row for row in rows}


def test_health_figures_count_the_period_only(app, ids):
    with session_scope(app) as s:
        row = health.one(s, ids["known"], PERIOD, app.config)
        assert (row.views, row.votes, row.helpful, row.searches) == (12, 6, 3, 2)
        assert row.helpful_share == pytest.approx(0.5)
        assert row.author == "Otto" and not row.flagged  # never reviewed: all 10 votes count, 7 helpful
        assert (row.flag_votes, row.flag_helpful) == (10, 7)
        reasons = dict(health.reasons(s, ids["known"], PERIOD))
        assert reasons == {"not_answered": 0, "hard_to_follow": 1, "out_of_date": 2, "other": 0, "": 0}
        [comment] = health.comments(s, ids["known"], PERIOD)
        assert comment.comment == "Step 3 is missing [email]"
        week = Period(NOW - timedelta(days=2), NOW, None)  # whole days: the 3-days-ago views fall out
        assert health.one(s, ids["known"], week, app.config).views == 7


def test_the_flag_threshold_on_both_sides(app, ids):
    with session_scope(app) as s:
        flagged = by_id(health.flagged(s, PERIOD, app.config))
        table = by_id(health.article_table(s, PERIOD, app.config))
    assert ids["ten"] in flagged and ids["nine"] not in flagged  # 10 votes, none helpful vs 9
    assert ids["sampled"] in flagged
    assert ids["h59"] in flagged and ids["h60"] not in flagged  # 59 % vs 60 % of 100 votes
    assert table[ids["ten"]].flagged and not table[ids["nine"]].flagged
    assert table[ids["h59"]].flagged and not table[ids["h60"]].flagged
    assert health.is_flagged(10, 5, {"ARTICLE_FLAG_VOTES": 10, "ARTICLE_FLAG_HELPFUL": 0.5}) is False


def test_overdue_review_dates_are_listed(app, ids):
    with session_scope(app) as s:
        overdue = by_id(health.overdue(s, PERIOD, app.config))
        attention = [a.article_id for a in health.needing_attention(s, PERIOD, app.config, limit=20)]
    assert list(overdue) == [ids["quiet"]] and overdue[ids["quiet"]].overdue
    assert ids["quiet"] in attention and ids["ten"] in attention and ids["nine"] not in attention
    client = app.test_client()
    login(client)
    page = client.get("/agent/insights/articles").text
    overdue_section = page.split('id="overdue"')[1].split("</section>")[0]
    assert "Quiet article" in overdue_section and "Nine votes" not in overdue_section
    assert "was due for review" in client.get(f"/agent/articles/{ids['quiet']}/edit").text


def test_mark_as_reviewed_clears_the_flag_and_moves_the_review_date(app, ids):
    client = app.test_client()
    login(client)
    url = f"/agent/articles/{ids['fix']}/edit"
    assert "Readers flag this article" in client.get(url).text
    response = client.post(f"/agent/articles/{ids['fix']}/review",
                           data={"action": "save", "review_by": (NOW + timedelta(days=10)).date().isoformat(),
                                 "csrf_token": token(client, url)})
    assert response.status_code == 302
    response = client.post(f"/agent/articles/{ids['fix']}/review", data={"action": "reviewed",
                                                                         "csrf_token": token(client, url)})
    assert response.status_code == 302
    with session_scope(app) as s:
        fixed = s.get(Article, ids["fix"])
        assert fixed.reviewed_at is not None
        # The 30 days from creation to the review date (20 past, 10 to come) start again from today's review.
        assert fixed.review_by == utcnow().date() + timedelta(days=30)
        assert health.flag_of(s, fixed, app.config) is None
        assert ids["fix"] not in by_id(health.flagged(s, PERIOD, app.config))
    assert "Readers flag this article" not in client.get(url).text
    bad = client.post(f"/agent/articles/{ids['fix']}/review", data={"action": "save", "review_by": "soon",
                                                                     "csrf_token": token(client, url)},
                      follow_redirects=True)
    assert "is not a date" in bad.text


def test_each_author_is_emailed_their_new_flags_once(world, ids):
    app, sink, _ids = world
    before = len(sink.messages)
    with session_scope(app) as s:
        schedule_daily(s)
    jobs.run_due(app)
    jobs.run_due(app)
    with session_scope(app) as s:  # the next day's scan finds the same flags: no new email
        jobs.schedule(s, review.SCAN, "day:tomorrow")
    jobs.run_due(app)
    mails = sink.wait_for(before + 1)[before:]
    to_edith = [m for m in mails if EDITOR in m.rcpt_tos]
    assert len(to_edith) == 1, [m.rcpt_tos for m in mails]
    text = to_edith[0].data.decode()
    assert "Ten votes" in text and "Fifty-nine percent" in text
    assert "Nine votes" not in text and "Sixty percent" not in text and "Flagged by samples" not in text
    assert f"https://help.example.com/agent/articles/{ids['ten']}/edit" in text
    with session_scope(app) as s:
        states = set(s.scalars(sa.select(Job.state).where(Job.kind == review.EMAIL)))
        assert states == {"done"}


def test_a_flag_email_naming_nobody_ends_at_once_and_sends_nothing(world):
    app, sink, _ids = world
    before = len(sink.messages)
    with session_scope(app) as s:
        for n, payload in enumerate(({"agent_id": None, "article_ids": ["x", None]}, {"agent_id": 424242},
                                     {"agent_id": "1; DROP TABLE agents", "article_ids": [10**20]})):
            jobs.schedule(s, review.EMAIL, f"junk:{n}", payload=payload)
    jobs.run_due(app)
    with session_scope(app) as s:
        junk = list(s.execute(sa.select(Job.state, Job.attempts).where(Job.key.startswith("junk:"))))
    assert junk == [("done", 1)] * 3
    assert len(sink.messages) == before


def test_the_article_list_sorts_by_views_and_helpful(app, ids):
    with session_scope(app) as s:
        s.get(Article, ids["quiet"]).views = 400
        s.get(Article, ids["known"]).views = 300
    client = app.test_client()
    login(client)

    def titles(**args):
        page = client.get("/agent/", query_string=args).text
        order = ["Quiet article", "Reset your password", "Sixty percent", "Fifty-nine percent", "Ten votes"]
        return sorted((page.index(t), t) for t in order if t in page)

    assert [t for _i, t in titles(sort="views")][:2] == ["Quiet article", "Reset your password"]
    assert [t for _i, t in titles(sort="views", order="asc")][-2:] == ["Reset your password", "Quiet article"]
    helpful = [t for _i, t in titles(sort="helpful")]
    assert helpful.index("Sixty percent") < helpful.index("Fifty-nine percent") < helpful.index("Ten votes")
    assert helpful[-1] == "Quiet article"  # no votes: last
    page = client.get("/agent/", query_string={"sort": "helpful"}).text
    assert "60%" in page and 'aria-sort="descending"' in page


def page_table(page: str, marker: str) -> list[list[str]]:
    """The header and rows of the first table after ``id="marker"``, as text (tags and sort arrows dropped)."""
    body = page.split(f'id="{marker}"', 1)[1].split("<table", 1)[1].split("</table>", 1)[0]
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)
        rows.append([html.unescape(re.sub(r"<[^>]+>", "", c)).replace(" ▼", "").replace(" ▲", "").strip()
                     for c in cells])
    return rows


def test_every_csv_equals_its_table_on_the_page(app, ids):
    client = app.test_client()
    login(client)
    args = {"sort": "helpful", "order": "asc"}
    page = client.get("/agent/insights/articles", query_string=args).text
    for table, section in (("articles", "articles"), ("flagged", "flagged"), ("overdue", "overdue"),
                           ("most_viewed", "most-viewed")):
        response = client.get("/agent/insights/articles", query_string={"format": "csv", "table": table, **args})
        assert response.status_code == 200 and response.mimetype == "text/csv"
        rows = list(csv.reader(io.StringIO(response.text)))
        assert len(rows) > 1, table
        assert rows == page_table(page, section), table
    query = {"article": ids["known"]}
    detail = client.get("/agent/insights/articles", query_string=query).text
    for table in ("reasons", "comments"):
        rows = list(csv.reader(io.StringIO(client.get("/agent/insights/articles", query_string={
            "format": "csv", "table": table, **query}).text)))
        assert rows == page_table(detail, f"{table}-title"), table
    assert ["out of date", "2"] in page_table(detail, "reasons-title")
    assert "Step 3 is missing [email]" in detail
    for name in ("most_viewed", "helpful"):
        chart = client.get(f"/agent/insights/articles/chart/{name}.svg")
        assert chart.status_code == 200 and chart.mimetype == "image/svg+xml" and b"<svg" in chart.data
