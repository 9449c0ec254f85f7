"""Agent metrics (/agent/insights/team) on one app per module: articles, revisions, answered emails,
follow-up cases and recovery offers written at known times, checked against the page, its CSV and
the follow-up report's own figures.
"""

from __future__ import annotations

import csv
import io
import itertools
from datetime import timedelta

import pytest
import sqlalchemy as sa

from kb import articles as kb_articles
from kb import drafts
from kb.autoreply.models import MailRecord
from kb.db import session_scope
from kb.followup import report as followup_report
from kb.followup.models import Case, Customer, Survey
from kb.insights import team
from kb.insights.periods import Period
from kb.models import Agent, utcnow
from kb.recovery import offers
from kb.recovery.models import GestureType
from kb.web import create_app
from tests.agent_helpers import ADMIN, EDITOR, SUPPORT, login, make_agent
from tests.conftest import close_app, make_config
from tests.test_insights_health import page_table

pytestmark = pytest.mark.filterwarnings("error")
NOW = utcnow()
PERIOD = Period(NOW - timedelta(days=30), NOW + timedelta(hours=1), 30)  # the fixture writes after NOW
HOUR = timedelta(hours=1)
_n = itertools.count(1)


def case(session, assignee: Agent, days_ago: float, ack: float | None, contact: float | None, resolve: float | None,
         score: int | None = None) -> Case:
    """A case opened ``days_ago`` and assigned; ack/contact/resolve are hours after opening (None: not yet)."""
    opened = NOW - timedelta(days=days_ago)
    customer = Customer(name=f"Customer {next(_n)}")
    session.add(customer)
    session.flush()
    row = Case(open_key=f"team:{next(_n)}", customer_id=customer.id, source="manual", assignee_id=assignee.id,
               opened_at=opened, state="resolved" if resolve is not None else "acknowledged",
               **{column: opened + hours * HOUR for column, hours in (
                   ("acknowledged_at", ack), ("first_contact_at", contact), ("resolved_at", resolve))
                  if hours is not None})
    session.add(row)
    session.flush()
    if score is not None:
        session.add(Survey(case_id=row.id, state="answered", sent_at=opened + 24 * HOUR,
                           answered_at=opened + 25 * HOUR, score=score))
    return row


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """Edith writes articles; Sam answers emails, works cases and makes an offer; Ada does little."""
    app = create_app(make_config(tmp_path_factory.mktemp("team")))
    make_agent(app, EDITOR, name="Edith")
    make_agent(app, SUPPORT, name="Sam", role="support")
    make_agent(app, ADMIN, name="Ada", role="admin")
    with session_scope(app) as s:
        edith, sam, ada = (s.scalar(sa.select(Agent).where(Agent.email == e)) for e in (EDITOR, SUPPORT, ADMIN))
        made = [kb_articles.create_article(s, kb_articles.ArticleDraft(title=f"Written {n}", body_md="x."),
                                           author=edith, status="published") for n in range(3)]
        s.flush()
        made[2].created_at = NOW - timedelta(days=60)  # written before the period
        for revision in made[2].revisions:
            revision.created_at = NOW - timedelta(days=60)
        drafts.save_from_editor(s, made[0], kb_articles.ArticleDraft(title="Written 0", body_md="Changed."),
                                "publish", author=sam, note="")
        for days_ago, who in ((1, sam), (2, sam), (3, sam), (40, sam), (4, ada)):
            s.add(MailRecord(dedupe_key=f"team:{next(_n)}", answered_by=who.id,
                             answered_at=NOW - timedelta(days=days_ago)))
        case(s, sam, 5, ack=1, contact=2, resolve=10, score=5)
        case(s, sam, 6, ack=3, contact=None, resolve=None)
        case(s, sam, 7, ack=2, contact=4, resolve=20, score=2)
        case(s, ada, 45, ack=1, contact=1, resolve=1)  # before the period
        credit = GestureType(name="Credit", kind="fixed_credit", currency="EUR", template="Sorry!")
        s.add(credit)
        s.flush()
        first = s.scalar(sa.select(Case).where(Case.assignee_id == sam.id).order_by(Case.id))
        offers.offer(s, case=first, agent=sam, gesture_type=credit, amount="25", reason="delivery",
                     message="Sorry.", settings=app.config, now=NOW - timedelta(days=4))
    yield app
    close_app(app)


def test_team_figures_per_agent(app):
    with session_scope(app) as s:
        rows = {row.name: row for row in team.team(s, PERIOD, app.config)}
        report = followup_report.build_report(s, app.config, PERIOD.start, PERIOD.end)
    edith, sam, ada = rows["Edith"], rows["Sam"], rows["Ada"]
    assert (edith.written, edith.updated, edith.answered) == (2, 0, 0)
    assert (sam.written, sam.updated, sam.answered) == (0, 1, 3)
    assert (sam.acknowledged, sam.contacted, sam.resolved) == (3, 2, 2)
    assert sam.acknowledge_median == 2 * 3600 and sam.contact_median == 3 * 3600 and sam.resolve_median == 15 * 3600
    assert sam.recovered == 1
    assert [(c, n, str(a)) for c, n, a in sam.spend] == [("EUR", 1, "25.00")]
    assert (ada.answered, ada.acknowledged, ada.spend) == (1, 0, [])
    # The follow-up report's own figures, not a second computation.
    [sam_report] = [f for f in report.agents if f.label == "Sam"]
    assert sam_report.timings["resolve"].median == sam.resolve_median


def test_team_page_and_csv_agree_and_editors_get_403(app):
    client = app.test_client()
    login(client, SUPPORT)
    page = client.get("/agent/insights/team")
    assert page.status_code == 200
    rows = list(csv.reader(io.StringIO(client.get("/agent/insights/team",
                                                  query_string={"format": "csv", "table": "team"}).text)))
    assert rows == page_table(page.text, "team")
    sam = next(row for row in rows if row[0] == "Sam")
    assert sam[1:5] == ["0", "1", "3", "3"] and sam[-1] == "EUR 25.00"
    chart = client.get("/agent/insights/team/chart/work.svg")
    assert chart.status_code == 200 and chart.mimetype == "image/svg+xml"
    editor = app.test_client()
    login(editor, EDITOR)
    assert editor.get("/agent/insights/team").status_code == 403
    assert editor.get("/agent/insights/team/chart/work.svg").status_code == 403
    assert editor.get("/agent/insights/team", query_string={"format": "csv", "table": "team"}).status_code == 403
    tabs = editor.get("/agent/insights/articles").text
    assert "/agent/insights/team" not in tabs
