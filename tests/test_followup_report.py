"""The follow-up report: every figure checked on cases with known timestamps, the page, and the CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone

import pytest

from kb.autoreply.models import MailRecord
from kb.db import session_scope
from kb.errors import ValidationError
from kb.followup import report as measures
from kb.followup.models import Case, Customer, CustomerIdentity, Signal, Survey
from kb.followup.report_csv import figure_rows, report_csv, safe_cell
from tests.agent_helpers import login, make_agent

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=timezone.utc)
START, END = datetime(2026, 10, 1, tzinfo=timezone.utc), datetime(2026, 10, 29, tzinfo=timezone.utc)
PERIOD = "from=2026-10-01&to=2026-10-28"
S, MIN, H, D = 1, 60, 3600, 86400


def customer(session, address: str) -> int:
    """A customer with one email identity, stored as kb normalises it."""
    person = Customer(name=address.split("@")[0])
    session.add(person)
    session.flush()
    session.add(CustomerIdentity(customer_id=person.id, kind="email", value=address.lower(), display=address))
    return person.id


def case(session, *, opened, source, assignee=None, customer_id=None, alert=None, ack=None, contact=None,
         resolve=None, root_cause="", survey=None) -> Case:
    """A case opened at ``opened`` whose steps came the given seconds later; ``survey`` = (answered, score)."""
    def later(seconds):
        return None if seconds is None else opened + timedelta(seconds=seconds)
    row = Case(source=source, assignee_id=assignee, customer_id=customer_id, opened_at=opened,
               alerted_at=later(alert), acknowledged_at=later(ack), first_contact_at=later(contact),
               resolved_at=later(resolve), root_cause=root_cause,
               state="resolved" if resolve is not None else ("acknowledged" if ack is not None else "new"))
    session.add(row)
    session.flush()
    if survey is not None:
        answered, score = survey
        sent = row.resolved_at + timedelta(hours=24)
        session.add(Survey(case_id=row.id, state="answered" if answered else "sent", sent_at=sent,
                           answered_at=sent + timedelta(hours=2) if answered else None, score=score))
        row.score_after = score
    return row


def mail(session, reply_to: str, when: datetime, n: int) -> None:
    """An email kb received from ``reply_to`` at ``when``."""
    session.add(MailRecord(dedupe_key=f"test:{n}", from_addr=reply_to, reply_to=reply_to, created_at=when))


def signal(session, case_id: int, customer_id: int | None, source: str, when: datetime, key: str) -> None:
    """A signal of ``source`` recorded at ``when``."""
    session.add(Signal(key=key, case_id=case_id, customer_id=customer_id, source=source, created_at=when))


@pytest.fixture
def seeded(app):
    """The cases of seed(app); returns the agents' ids."""
    return seed(app)


def seed(app) -> dict:
    """Five cases in October 2026 (and one before it) with known times; returns the agents' ids."""
    ann = make_agent(app, "ann@example.com", name="Ann", role="support")
    bob = make_agent(app, "bob@example.com", name="Bob", role="support")
    with session_scope(app) as session:
        alice, bert, cleo, dora = (customer(session, f"{n}@example.com") for n in ("alice", "bert", "cleo", "dora"))
        c1 = case(session, opened=T0, source="vote", assignee=ann, customer_id=alice, alert=30, ack=10 * MIN,
                  contact=H, resolve=D, root_cause="product", survey=(True, 5))
        c2 = case(session, opened=T0 + timedelta(days=1), source="still_need_help", assignee=ann, customer_id=bert,
                  alert=50, ack=20 * MIN, contact=2 * H, resolve=2 * D, root_cause="billing", survey=(True, 2))
        c3 = case(session, opened=T0 + timedelta(days=8), source="writeback", assignee=bob, customer_id=cleo,
                  alert=40, ack=5 * MIN, resolve=3 * H, root_cause="product", survey=(False, None))
        case(session, opened=T0 + timedelta(days=15), source="vote", alert=20)  # about an article, never acknowledged
        case(session, opened=T0 + timedelta(days=16), source="manual", assignee=bob, customer_id=dora, alert=60,
             ack=15 * MIN, contact=30 * MIN)  # acknowledged at exactly the deadline: in time
        case(session, opened=START - timedelta(minutes=1), source="vote", assignee=ann, alert=9999)  # before the period
        # Alice writes again 89 days after her case (from a +tag address): counts.
        mail(session, "Alice+shop@Example.COM", c1.resolved_at + timedelta(days=89), 1)
        # Bert writes again only after 91 days, and answers the re-survey: neither counts.
        mail(session, "bert@example.com", c2.resolved_at + timedelta(days=91), 2)
        signal(session, c2.id, bert, "survey", c2.resolved_at + timedelta(days=2), "s:bert")
        # Cleo calls 10 days after hers: an agent records the signal by hand; counts.
        signal(session, c3.id, cleo, "manual", c3.resolved_at + timedelta(days=10), "s:cleo")
        # Someone else writes: counts for nobody.
        mail(session, "zed@example.com", c1.resolved_at + timedelta(days=3), 3)
        session.commit()
    return {"ann": ann, "bob": bob}


def build(app, **kw):
    """The report of October 2026, read long after it (every acknowledgement deadline has passed)."""
    with app.app_context(), session_scope(app) as session:
        return measures.build_report(session, app.config, START, END, now=datetime(2026, 12, 1, tzinfo=timezone.utc), **kw)


def test_every_figure_of_all_cases(app, seeded):
    total = build(app).total
    assert (total.cases, total.resolved) == (5, 3)
    assert total.timings["alert"] == measures.Timing(5, 40, 60)
    assert total.timings["acknowledge"] == measures.Timing(4, 750, 1200)
    assert total.timings["contact"] == measures.Timing(3, 3600, 7200)
    assert total.timings["resolve"] == measures.Timing(3, D, 2 * D)
    assert (total.ack_in_time, total.ack_due, total.ack_share) == (3, 5, 0.6)
    assert (total.surveys_sent, total.surveys_answered, total.response_rate) == (3, 2, 2 / 3)
    assert (total.recovered, total.recovered_share) == (1, 0.5)
    assert total.by_root_cause == {"product": 2, "billing": 1}
    assert total.by_source == {"vote": 2, "manual": 1, "still_need_help": 1, "writeback": 1}
    assert (total.customers_wrote_again, total.customers_resolved) == (2, 3)
    assert total.wrote_again_share == 2 / 3


@pytest.mark.postgres
def test_the_same_figures_on_postgres(app_factory, pg_database_url):
    pg_app = app_factory(DATABASE_URL=pg_database_url)
    seed(pg_app)
    report = build(pg_app)
    total = report.total
    assert (total.cases, total.timings["acknowledge"], total.ack_share, total.response_rate) == (
        5, measures.Timing(4, 750, 1200), 0.6, 2 / 3)
    assert (total.by_root_cause, total.customers_wrote_again, total.customers_resolved) == ({"product": 2, "billing": 1}, 2, 3)
    assert [(f.label, f.cases) for f in report.agents] == [("Ann", 2), ("Bob", 2), ("unassigned", 1)]


def test_per_agent_rows(app, seeded):
    report = build(app)
    ann, bob, nobody = report.agents
    assert (ann.label, ann.agent_id, bob.label, nobody.label, nobody.agent_id) == ("Ann", seeded["ann"], "Bob", "unassigned", None)
    assert (ann.cases, ann.resolved, bob.cases, bob.resolved, nobody.cases, nobody.resolved) == (2, 2, 2, 1, 1, 0)
    assert [ann.timings[s] for s in ("alert", "acknowledge", "contact", "resolve")] == [
        measures.Timing(2, 40, 50), measures.Timing(2, 900, 1200), measures.Timing(2, 5400, 7200),
        measures.Timing(2, 1.5 * D, 2 * D)]
    assert [bob.timings[s] for s in ("alert", "acknowledge", "contact", "resolve")] == [
        measures.Timing(2, 50, 60), measures.Timing(2, 600, 900), measures.Timing(1, 1800, 1800),
        measures.Timing(1, 3 * H, 3 * H)]
    assert nobody.timings["acknowledge"] == measures.Timing(0, None, None)
    assert (ann.ack_share, bob.ack_share, nobody.ack_share) == (0.5, 1.0, 0.0)
    assert (ann.response_rate, ann.recovered_share, bob.response_rate, bob.recovered_share) == (1.0, 0.5, 0.0, None)
    assert nobody.response_rate is None
    assert (ann.by_root_cause, bob.by_root_cause, nobody.by_root_cause) == ({"billing": 1, "product": 1}, {"product": 1}, {})
    assert (ann.by_source, bob.by_source) == ({"still_need_help": 1, "vote": 1}, {"manual": 1, "writeback": 1})
    assert (ann.customers_wrote_again, ann.customers_resolved, bob.wrote_again_share, nobody.wrote_again_share) == (1, 2, 1.0, None)


def test_one_agent_or_the_unassigned_only(app, seeded):
    report = build(app, assignee=seeded["bob"])
    assert [f.label for f in report.agents] == ["Bob"]
    assert (report.total.cases, report.total.timings["alert"]) == (2, measures.Timing(2, 50, 60))
    report = build(app, assignee=measures.UNASSIGNED)
    assert (report.total.cases, [f.label for f in report.agents]) == (1, ["unassigned"])


def test_weeks_split_cases_by_outcome(app, seeded):
    weeks = build(app).weeks
    assert [(w.start.isoformat(), w.open, w.resolved, w.recovered) for w in weeks] == [
        ("2026-10-01", 0, 1, 1), ("2026-10-08", 0, 1, 0), ("2026-10-15", 2, 0, 0), ("2026-10-22", 0, 0, 0)]


def test_a_case_still_within_its_acknowledgement_time_is_not_yet_counted(app):
    now = datetime(2026, 10, 10, 12, 0, tzinfo=timezone.utc)
    with session_scope(app) as session:
        case(session, opened=now - timedelta(minutes=5), source="vote")  # not late yet
        case(session, opened=now - timedelta(minutes=16), source="vote")  # late
        session.commit()
        total = measures.build_report(session, app.config, START, END, now=now).total
    assert (total.cases, total.ack_in_time, total.ack_due, total.ack_share) == (2, 0, 1, 0.0)


def test_an_empty_period_divides_by_nothing(app):
    with session_scope(app) as session:
        report = measures.build_report(session, app.config, START, END)
    total = report.total
    assert (total.cases, report.agents, total.ack_share, total.response_rate, total.recovered_share) == (0, [], None, None, None)
    assert total.timings["resolve"] == measures.Timing(0, None, None)
    assert [w.open + w.resolved + w.recovered for w in report.weeks] == [0, 0, 0, 0]


def test_periods_are_parsed_and_bad_ones_refused():
    today = datetime(2026, 12, 1).date()
    first, last = measures.parse_period(None, None, today)
    assert (first.isoformat(), last.isoformat()) == ("2026-11-02", "2026-12-01")  # the last 30 days
    assert measures.day_bounds(*measures.parse_period("2026-10-01", "2026-10-28")) == (START, END)
    for start, end, words in (("2026-13-01", "", "not a date"), ("yesterday", None, "YYYY-MM-DD"),
                              ("2026-10-05", "2026-10-01", "after its end"), ("2024-01-01", "2026-01-01", "at most")):
        with pytest.raises(ValidationError, match=words):
            measures.parse_period(start, end, today)


def csv_cells(text: str) -> dict:
    """(agent, measure, category) -> value of the CSV."""
    rows = list(csv.DictReader(io.StringIO(text)))
    assert all((r["period_from"], r["period_to"]) == ("2026-10-01", "2026-10-28") for r in rows)
    return {(r["agent"], r["measure"], r["category"]): r["value"] for r in rows}


def test_csv_holds_the_same_figures(app, seeded):
    report = build(app)
    cells = csv_cells(report_csv(report))
    assert cells[("all", "time_to_acknowledge_median", "")] == "750.0"
    assert cells[("all", "time_to_resolve_p90", "")] == str(2.0 * D)
    assert float(cells[("all", "resurvey_response_rate", "")]) == 2 / 3
    assert cells[("all", "cases_by_root_cause", "product")] == "2"
    assert cells[("Bob", "recovered_share", "")] == ""  # nothing answered: no share, not zero
    assert cells[("unassigned", "acknowledged_in_time_share", "")] == "0.0"
    expected = {}
    for figures in [report.total, *report.agents]:
        for measure, category, value, _unit in figure_rows(figures):
            expected[(figures.label, measure, category)] = "" if value is None else str(value)
    assert cells == expected


def test_csv_neutralises_formulas(app):
    evil = make_agent(app, "eve@example.com", name='=HYPERLINK("http://x.example","click")', role="support")
    with session_scope(app) as session:
        case(session, opened=T0, source="vote", assignee=evil, resolve=H, root_cause="@SUM(A1)")
        session.commit()
    text = report_csv(build(app))
    assert "'=HYPERLINK" in text and "'@SUM(A1)" in text
    cells = csv_cells(text)
    assert cells[("'=HYPERLINK(\"http://x.example\",\"click\")", "cases_by_root_cause", "'@SUM(A1)")] == "1"
    assert [safe_cell(v) for v in ("-1+2", "+x", "plain", 3)] == ["'-1+2", "'+x", "plain", 3]


def support_client(app):
    """A test client logged in as a support agent."""
    make_agent(app, "sam@example.com", name="Sam", role="support")
    client = app.test_client()
    assert login(client, "sam@example.com").status_code == 302
    return client


def test_the_page_shows_the_chart_and_the_table(app, seeded):
    client = support_client(app)
    response = client.get(f"/agent/followups/report?{PERIOD}")
    assert response.status_code == 200
    page = response.text
    assert page.count("<svg") == 2 and 'role="img"' in page and '<title id="weeks-title">' in page
    assert len(re.findall(r'<rect class="bar bar-(open|resolved|recovered)"', page)) == 4
    assert "Week of 2026-10-15: 2 open" in page
    # The CSP blocks inline style and inline script: the chart uses neither.
    assert not re.search(r"\sstyle=", page) and not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert "<td>40 s</td>" in page and "<td>12.5 min</td>" in page  # alert and acknowledgement medians
    assert "60 % (3 of 5)" in page and "66.7 % (2 of 3)" in page and "66.7 % (2 of 3 customers)" in page
    assert re.search(r'<th scope="row">product</th><td>2</td><td>1</td><td>1</td><td>0</td>', page)
    assert re.search(r'href="/agent/followups/report.csv\?[^"]*from=2026-10-01', page) and "Download CSV" in page


def test_the_page_for_one_agent_and_the_csv_download(app, seeded):
    client = support_client(app)
    page = client.get(f"/agent/followups/report?{PERIOD}&agent={seeded['ann']}").text
    assert "2 cases, 2 resolved" in page
    response = client.get(f"/agent/followups/report.csv?{PERIOD}&agent={seeded['ann']}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert csv_cells(response.text)[("all", "time_to_contact_median", "")] == "5400.0"


def test_an_empty_period_says_so(app):
    client = support_client(app)
    response = client.get("/agent/followups/report")
    assert response.status_code == 200
    assert "No cases yet" in response.text and "<svg" not in response.text
    assert client.get("/agent/followups/report.csv").status_code == 200


def test_bad_dates_get_a_clear_message(app):
    client = support_client(app)
    response = client.get("/agent/followups/report?from=2026-02-30&to=2026-03-01")
    assert response.status_code == 400 and "is not a date: write it as YYYY-MM-DD" in response.text
    response = client.get("/agent/followups/report?from=2026-03-05&to=2026-03-01")
    assert response.status_code == 400 and "start is after its end" in response.text
    assert client.get("/agent/followups/report?agent=nobody").status_code == 400
    response = client.get("/agent/followups/report.csv?from=x")
    assert response.status_code == 400 and "not a date" in response.text


def test_only_support_agents_and_admins_see_it(app):
    make_agent(app, "edith@example.com", role="editor")
    anonymous = app.test_client()
    for url in ("/agent/followups/report", "/agent/followups/report.csv"):
        assert anonymous.get(url).status_code == 302
    editor = app.test_client()
    login(editor, "edith@example.com")
    assert editor.get("/agent/followups/report").status_code == 403
    assert editor.get("/agent/followups/report.csv").status_code == 403
    make_agent(app, "ada@example.com", role="admin")
    admin = app.test_client()
    login(admin, "ada@example.com")
    assert admin.get("/agent/followups/report").status_code == 200
