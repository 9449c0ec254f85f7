"""The deflection rate and self-service score on a fixture with known answers, and the dashboard.

One app per module: the fixture's rows are written once and only read afterwards.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from kb.articles import ArticleDraft, create_article
from kb.autoreply.models import MailRecord
from kb.db import session_scope
from kb.followup.models import Case
from kb.insights import deflection
from kb.insights.models import PortalVisit
from kb.insights.periods import Period
from tests.agent_helpers import EDITOR, SUPPORT, logged_in, make_team_app
from tests.conftest import close_app
from tests.test_agent_auth import INLINE

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)
DAY1, DAY2 = datetime(2026, 3, 10, 9, tzinfo=timezone.utc), datetime(2026, 3, 11, 23, 30, tzinfo=timezone.utc)
# (channel, state, lang, category, outcome, outcome_at set, created, dedupe prefix)
ROWS = [
    ("email", "replied", "en", "Billing", "confirmed", True, DAY1, ""),
    ("email", "replied", "en", "Billing", "assumed", True, DAY1, ""),
    ("email", "replied", "en", "Billing", "reopened", True, DAY2, ""),
    ("email", "replied", "nb", "Shipping", "assumed", True, DAY2, ""),
    ("email", "replied", "nb", "Shipping", None, True, DAY2, ""),  # pending: answered, waiting
    ("email", "replied", "nb", "Shipping", None, False, DAY2, ""),  # pending: from before outcomes existed
    ("email", "person", "en", "", None, False, DAY1, ""),  # a person answered it
    ("web_form", "replied", "en", "Billing", "confirmed", True, DAY2, "sample:"),
    ("web_form", "person", "nb", "", None, False, DAY2, ""),
    # not questions: skipped (robots, the contact form's copy), a shadow worker's copy, outside the period
    ("email", "skipped", "en", "", None, False, DAY1, ""),
    ("email", "replied", "en", "Billing", "confirmed", True, DAY1, "dry-run:"),
    ("email", "replied", "en", "Billing", "confirmed", True, DAY1 - timedelta(days=40), ""),
]
PERIOD = Period(NOW - timedelta(days=30), NOW, 30)


def fill(app) -> None:
    """Write the known records, portal visits, two follow-up cases and an article."""
    with session_scope(app) as session:
        for n, (channel, state, lang, category, outcome, waiting, created, prefix) in enumerate(ROWS):
            session.add(MailRecord(dedupe_key=f"{prefix}q{n}", channel=channel, state=state, lang=lang,
                                   category=category, outcome=outcome, created_at=created,
                                   outcome_at=created + timedelta(hours=1) if waiting else None,
                                   reply_to=f"c{n}@example.org"))
        for n, (searched, viewed, lang) in enumerate([(True, False, "en"), (False, True, "nb"), (True, True, "en"),
                                                      (False, False, "en")]):
            session.add(PortalVisit(visitor=f"v{n}", day=date(2026, 3, 10 + n), lang=lang, searched=searched,
                                    viewed=viewed))
        session.add(PortalVisit(visitor="old", day=date(2026, 1, 2), searched=True))
        session.add(Case(source="vote", state="new", opened_at=NOW - timedelta(days=2)))
        session.add(Case(source="vote", state="resolved", opened_at=NOW - timedelta(days=9)))
        create_article(session, ArticleDraft(title="Refunds", body_md="Refunds take five days.", category="Billing"),
                       status="published")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """A team app holding the known rows (written once, only read by the tests)."""
    app = make_team_app(tmp_path_factory, "deflection")
    fill(app)
    yield app
    close_app(app)


def figures(app, period=PERIOD):
    """The deflection figures of ``period``."""
    with session_scope(app) as session:
        return deflection.deflection(session, period, app.config)


def test_the_rate_counts_confirmed_and_assumed_of_all_questions(app):
    d = figures(app)
    # 9 questions: the skipped one, the shadow copy and the one from 40 days ago are not questions.
    assert d.totals.as_tuple() == (9, 2, 2, 1, 2)
    assert d.totals.rate == pytest.approx(4 / 9)
    assert d.sample_questions == 1
    assert dict(d.by_channel) == {"email": deflection.Counts(7, 1, 2, 1, 2), "web_form": deflection.Counts(2, 1, 0, 0, 0)}
    assert dict(d.by_category) == {"Billing": deflection.Counts(4, 2, 1, 1, 0), "Shipping": deflection.Counts(3, 0, 1, 0, 2),
                                   "": deflection.Counts(2, 0, 0, 0, 0)}
    assert dict(d.by_language) == {"en": deflection.Counts(5, 2, 1, 1, 0), "nb": deflection.Counts(4, 0, 1, 0, 2)}
    # Self-service: 3 visitor-days with a search or a view in the period (not the idle one, not January's).
    assert d.portal_sessions == 3 and d.self_service == pytest.approx(3 / 9)


def test_days_and_languages(app):
    d = figures(app)
    assert d.bucket == "day" and len(d.by_time) == 31
    per_day = {day: counts for day, counts in d.by_time if counts.questions}
    assert per_day == {date(2026, 3, 10): deflection.Counts(3, 1, 1, 0, 0),
                       date(2026, 3, 11): deflection.Counts(6, 1, 1, 1, 2)}
    with session_scope(app) as session:
        _bucket, oslo = deflection.by_time(session, PERIOD, "Europe/Oslo")
    # 23:30 UTC on the 11th is 00:30 on the 12th in Oslo: those six questions move a day on.
    assert {day: c.questions for day, c in oslo if c.questions} == {date(2026, 3, 10): 3, date(2026, 3, 12): 6}
    nb = figures(app, Period(PERIOD.start, PERIOD.end, 30, "nb"))
    assert nb.totals.as_tuple() == (4, 0, 1, 0, 2) and nb.portal_sessions == 1
    year = figures(app, Period(NOW - timedelta(days=365), NOW, None))
    assert year.bucket == "week" and sum(c.questions for _day, c in year.by_time) == 10


def test_the_period_filter_reads_the_covering_index(app):
    with session_scope(app) as session:
        stmt = sa.select(sa.func.count()).select_from(MailRecord).where(*deflection.questions_where(PERIOD))
        sql = str(stmt.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
        plan = " ".join(str(row[-1]) for row in session.execute(sa.text("EXPLAIN QUERY PLAN " + sql)))
    assert "COVERING INDEX ix_mail_records_insights" in plan, plan  # the period's range, no table reads
    with session_scope(app) as session:
        first, last = deflection._visit_days(PERIOD)
        visits = session.execute(sa.text("EXPLAIN QUERY PLAN SELECT count(*) FROM portal_visits "
                                         "WHERE day >= :first AND day <= :last AND (searched OR viewed)"),
                                 {"first": first, "last": last}).all()
    assert "ix_portal_visits_day" in " ".join(str(row[-1]) for row in visits)


class Tables(HTMLParser):
    """Every <table id="insights-..."> of a page as lists of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables, self.current, self.row, self.cell = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and (attrs.get("id") or "").startswith("insights-"):
            self.current = self.tables.setdefault(attrs["id"][len("insights-"):], [])
        elif tag == "tr" and self.current is not None:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self.current = None
        elif tag == "tr" and self.row is not None:
            self.current.append(self.row)
            self.row = None
        elif tag in ("td", "th") and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def page_tables(html: str) -> dict[str, list[list[str]]]:
    """The page's insights tables."""
    parser = Tables()
    parser.feed(html)
    return parser.tables


QUERY = "from=2026-02-19&to=2026-03-20"


def test_the_dashboard_shows_the_figures_and_every_table_as_csv(app):
    client = logged_in(app, EDITOR)
    page = client.get(f"/agent/insights?{QUERY}")
    assert page.status_code == 200
    html = page.text
    assert 'id="nav-insights"' in html and "Assumed is a guess" in html
    assert not INLINE.search(html)  # the CSP's rules: no inline script or style
    assert re.search(r'id="figure-rate">44%<', html) and re.search(r'id="figure-questions">9<', html)
    assert re.search(r'id="figure-self-service">0.3<', html)
    assert "1 of these questions is sample data" in html
    assert "1 follow-up case is open." in html and "/agent/followups" not in html  # an editor has no queue
    tables = page_tables(html)
    assert set(tables) == {"over_time", "channels", "categories", "languages", "gaps", "attention"}
    assert tables["channels"][1:] == [["Email", "7", "1", "2", "1", "2", "43%"],
                                      ["Contact form", "2", "1", "0", "0", "0", "50%"]]
    for name, rows in tables.items():
        download = client.get(f"/agent/insights?{QUERY}&format=csv&table={name}")
        assert download.status_code == 200 and download.mimetype == "text/csv"
        got = list(csv.reader(io.StringIO(download.text)))
        empty = len(rows) == 2 and len(rows[1]) == 1  # the "nothing here" row spans the table
        assert got == (rows[:1] if empty else [[cell.replace("—", "") for cell in row] for row in rows]), name
    assert client.get(f"/agent/insights?{QUERY}&format=csv&table=nope").status_code == 404
    support = logged_in(app, SUPPORT).get("/agent/insights").text
    assert "/agent/followups" in support


def test_charts_are_svg_images_with_their_own_csp(app):
    client = logged_in(app, EDITOR)
    for name in ("over_time", "channels"):
        chart = client.get(f"/agent/insights/chart/{name}.svg?{QUERY}")
        assert chart.status_code == 200 and chart.mimetype == "image/svg+xml"
        policy = chart.headers["Content-Security-Policy"]
        # No script may run in it (pygal still writes an inert config <script>, which this forbids).
        assert policy.startswith("default-src 'none'") and "script-src" not in policy and "sandbox" in policy
        assert chart.headers["X-Content-Type-Options"] == "nosniff"
        assert b"<svg" in chart.data and not re.search(rb"<script[^>]*href", chart.data)  # no script file to load
    assert client.get("/agent/insights/chart/secret.svg").status_code == 404
    assert app.test_client().get("/agent/insights").status_code in (302, 401)
    bad = client.get("/agent/insights?days=13")
    assert bad.status_code == 200 and "Choose a period of 7, 30, 90 days" in bad.text


@pytest.mark.postgres
def test_postgresql_counts_the_same(app, app_factory, pg_database_url):
    pg_app = app_factory(DATABASE_URL=pg_database_url)
    fill(pg_app)
    for period in (PERIOD, Period(NOW - timedelta(days=365), NOW, None)):
        assert figures(pg_app, period) == figures(app, period)
    with session_scope(pg_app) as session:
        assert deflection.followups_waiting(session) == (1, NOW - timedelta(days=2))
