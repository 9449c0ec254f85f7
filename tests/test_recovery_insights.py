"""What the recovery ledger tells people: /agent/recovery, the follow-up report's gesture measures, the ledger CSV.

One app per module holds three sets of ledger rows, far apart in time so they never meet in one
period: November 2026 (spend, budgets, approvals; TIME_ZONE Europe/Oslo, weeks from Monday), March
2026 (the team median), October 2026 (follow-up cases with re-surveys and gestures). Every row is
written by kb.recovery.offers, as the offering page writes them.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from kb.db import session_scope
from kb.followup import report as measures
from kb.followup.models import Case, Customer, Survey
from kb.models import Agent
from kb.recovery import insights, offers
from kb.recovery import report as gesture_report
from kb.recovery.ledger_csv import HEADER
from kb.recovery.models import Bound, GestureType
from kb.web import create_app
from tests.agent_helpers import ADMIN, EDITOR, login, make_agent
from tests.conftest import close_app, make_config

pytestmark = pytest.mark.filterwarnings("error")
UTC = timezone.utc
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # Monday 13:00 in Oslo: a week that runs into December
MARCH = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)
SUPPORT, BOB = "sam@example.com", "bob@example.com"
_n = itertools.count(1)


def new_case(session, customer_id=None, **fields) -> Case:
    """A case of a (new) customer."""
    if customer_id is None:
        customer = Customer(name=f"Customer {next(_n)}")
        session.add(customer)
        session.flush()
        customer_id = customer.id
    row = Case(open_key=f"insights:{next(_n)}", customer_id=customer_id, source="manual", **fields)
    session.add(row)
    session.flush()
    return row


def give(session, config, who, gesture, amount, when, the_case=None, reference="", reason="delivery"):
    """Offer ``amount`` of ``gesture`` at ``when`` (on a new case unless given); returns the offer row."""
    return offers.offer(session, case=the_case or new_case(session, opened_at=when), agent=who, gesture_type=gesture, amount=amount,
                        reason=reason, message="Sorry about that.", reference=reference, settings=config,
                        now=when).entry


def gesture(session, name, kind="fixed_credit", currency="EUR") -> GestureType:
    """A gesture type."""
    row = GestureType(name=name, kind=kind, currency=currency, template="Sorry!")
    session.add(row)
    session.flush()
    return row


def november(session, config, people) -> dict:
    """Spend around the week and month boundaries in Oslo, a decline, a cancellation and a correction."""
    ann, bob, admin = people["ann"], people["bob"], people["admin"]
    eur, nok = gesture(session, "Credit EUR"), gesture(session, "Credit NOK", currency="NOK")
    pct = gesture(session, "Discount", kind="discount_percent", currency="")
    session.add_all([Bound(scope="per_incident", max_amount=Decimal("60")),
                     Bound(scope="agent_week", max_amount=Decimal("100"), max_count=5),
                     Bound(scope="agent_week", gesture_type_id=nok.id, max_count=1),
                     Bound(scope="customer_90d", max_amount=Decimal("150"), approver_role="support")])
    session.flush()
    ids = {"eur": eur.id, "nok": nok.id}
    ids["a"] = give(session, config, ann, eur, "30", datetime(2026, 11, 29, 23, 30, tzinfo=UTC)).id  # Mon 00:30 Oslo
    give(session, config, ann, eur, "20", datetime(2026, 11, 29, 22, 30, tzinfo=UTC))  # Sun 23:30: last week
    give(session, config, ann, eur, "40", datetime(2026, 10, 31, 23, 30, tzinfo=UTC))  # 1 Nov 00:30 Oslo
    give(session, config, ann, eur, "50", datetime(2026, 10, 31, 22, 30, tzinfo=UTC))  # 31 Oct 23:30: October
    ids["e"] = give(session, config, bob, nok, "300", datetime(2026, 11, 30, 8, 0, tzinfo=UTC)).id  # waits
    give(session, config, bob, pct, "10", datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    declined = give(session, config, ann, eur, "100", datetime(2026, 11, 30, 9, 30, tzinfo=UTC))
    offers.decline(session, declined.id, admin, note="too much", now=NOW - timedelta(hours=2))
    cancelled = give(session, config, bob, eur, "25", datetime(2026, 11, 30, 10, 0, tzinfo=UTC))
    offers.cancel(session, cancelled.id, bob, now=NOW - timedelta(hours=1))
    offers.correct(session, ids["a"], admin, amount="12", note="=the refund was smaller", now=NOW)
    ids["hostile"] = give(session, config, bob, eur, "5", datetime(2026, 11, 10, tzinfo=UTC),
                          reference="+SUM(A1:A9)", reason="@cmd|' /C calc'!A0").id
    return ids


def march(session, config, people) -> None:
    """EUR spend of four agents in March: 10, 20, 30 and 100 (the median is 25), and NOK of two."""
    eur, nok = gesture(session, "March EUR"), gesture(session, "March NOK", currency="NOK")
    for key, amount in (("ann", "10"), ("bob", "20"), ("admin", "30"), ("dan", "50"), ("dan", "50")):
        give(session, config, people[key], eur, amount, MARCH)
    for key in ("ann", "bob"):
        give(session, config, people[key], nok, "99", MARCH)


def surveyed_case(session, customer_id, score, offset_days):
    """An October case resolved and re-surveyed; ``score`` None: the survey was never answered."""
    opened = OCTOBER + timedelta(days=offset_days)
    row = new_case(session, customer_id, opened_at=opened, resolved_at=opened + timedelta(hours=5), state="resolved",
                   score_after=score)
    session.add(Survey(case_id=row.id, state="answered" if score else "sent", sent_at=opened + timedelta(days=1),
                       answered_at=opened + timedelta(days=1, hours=1) if score else None, score=score))
    return row


def october(session, config, people) -> None:
    """Customers: c1 gesture+recovered, c2 gesture+not, c3 none+recovered, c4 none+not, c5 declined+recovered."""
    ann, admin = people["ann"], people["admin"]
    eur, pct = gesture(session, "October EUR"), gesture(session, "October %", kind="discount_percent", currency="")
    c = []
    for _ in range(6):
        person = Customer(name="October customer")
        session.add(person)
        session.flush()
        c.append(person.id)
    first = surveyed_case(session, c[0], 5, 1)
    give(session, config, ann, eur, "30", OCTOBER + timedelta(days=1, hours=6), first)
    give(session, config, ann, pct, "15", OCTOBER + timedelta(days=1, hours=7), first)
    second = give(session, config, ann, eur, "20", OCTOBER + timedelta(days=2, hours=6), surveyed_case(session, c[1], 2, 2))
    offers.correct(session, second.id, admin, amount="10", note="partial refund", now=OCTOBER + timedelta(days=3))
    surveyed_case(session, c[2], 4, 3)
    surveyed_case(session, c[3], 1, 4)
    fifth = surveyed_case(session, c[4], 5, 5)
    big = give(session, config, ann, eur, "500", OCTOBER + timedelta(days=5, hours=6), fifth)
    offers.decline(session, big.id, admin, now=OCTOBER + timedelta(days=5, hours=7))
    give(session, config, ann, eur, "10", OCTOBER + timedelta(days=6, hours=6), surveyed_case(session, c[5], None, 6))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The module's app and the ids of what it holds."""
    app = create_app(make_config(tmp_path_factory.mktemp("insights"), TIME_ZONE="Europe/Oslo",
                                 RECOVERY_WEEK_START="monday"))
    ids = {key: make_agent(app, email, name=name, role=role) for key, email, name, role in (
        ("ann", "ann@example.com", "Ann", "support"), ("bob", BOB, "Bob", "support"),
        ("admin", ADMIN, "Ada", "admin"), ("dan", "dan@example.com", "Dan", "support"),
        ("sam", SUPPORT, "Sam", "support"), ("editor", EDITOR, "Edith", "editor"))}
    with app.app_context(), session_scope(app) as session:
        people = {key: session.get(Agent, agent_id) for key, agent_id in ids.items()}
        ids.update(november(session, app.config, people))
        march(session, app.config, people)
        october(session, app.config, people)
        session.commit()
    yield app, ids
    close_app(app)


def lines(found) -> set[tuple]:
    """Lines as (label, currency, count, amount)."""
    return {(line.label, line.currency, line.count, line.amount) for line in found}


def test_spend_this_week_and_month_in_the_time_zone_per_currency(world):
    app, _ids = world
    with app.app_context(), session_scope(app) as session:
        week, month = insights.spend(session, app.config, NOW)
    assert (week.start, week.end) == (datetime(2026, 11, 29, 23, tzinfo=UTC), datetime(2026, 12, 6, 23, tzinfo=UTC))
    assert (month.start, month.end) == (datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 30, 23, tzinfo=UTC))
    # Ann's 30 counts at its correction's 12; declined and cancelled offers count nothing; % is counted only.
    assert lines(week.by_agent) == {("Ann", "EUR", 1, Decimal("12")), ("Bob", "NOK", 1, Decimal("300")),
                                    ("Bob", "", 1, None)}
    assert lines(month.by_agent) == {("Ann", "EUR", 3, Decimal("72")), ("Bob", "EUR", 1, Decimal("5")),
                                     ("Bob", "NOK", 1, Decimal("300")), ("Bob", "", 1, None)}
    assert lines(month.by_type) == {("Credit EUR", "EUR", 4, Decimal("77")), ("Credit NOK", "NOK", 1, Decimal("300")),
                                    ("Discount", "", 1, None)}
    assert lines(month.totals) == {("", "", 1, None), ("", "EUR", 4, Decimal("77")), ("", "NOK", 1, Decimal("300"))}


def test_remaining_budgets_per_agent_and_pending_approvals(world):
    app, ids = world
    with app.app_context(), session_scope(app) as session:
        found = insights.budgets(session, app.config, NOW)
        waiting = insights.pending(session)
        # Bob's NOK 300 and March's two NOK 99 wait (above the incident bound); the declined one no more.
        assert (waiting.count, waiting.oldest.created_at, waiting.oldest.agent_id) == (3, MARCH, ids["ann"])
    overall = {(b.agent, b.count, b.count_left, tuple(b.amounts)) for b in found if not b.gesture}
    assert ("Ann", 1, 4, (("EUR", Decimal("12"), Decimal("88")),)) in overall
    assert ("Bob", 2, 3, (("NOK", Decimal("300"), Decimal("-200")),)) in overall
    assert ("Sam", 0, 5, ()) in overall and not any(b.agent == "Edith" for b in found)  # editors do not offer
    nok = {(b.agent, b.count, b.count_left) for b in found if b.gesture == "Credit NOK"}
    assert {("Bob", 1, 0), ("Ann", 0, 1)} <= nok


def test_an_agent_above_twice_the_median_is_flagged_only_with_enough_agents(world):
    app, _ids = world
    with app.app_context(), session_scope(app) as session:
        _week, month = insights.spend(session, app.config, MARCH)
    eur, nok = insights.outliers(month)
    assert (eur.currency, eur.agents, eur.median) == ("EUR", 4, Decimal("25"))
    assert [(line.label, line.amount) for line in eur.flagged] == [("Dan", Decimal("100"))]
    assert (nok.currency, nok.agents, nok.enough, nok.flagged) == ("NOK", 2, False, [])


def test_the_report_compares_recovery_with_and_without_a_gesture(world):
    app, _ids = world
    with app.app_context(), session_scope(app) as session:
        report = measures.build_report(session, app.config, OCTOBER, OCTOBER + timedelta(days=10),
                                       now=OCTOBER + timedelta(days=40))
        found = gesture_report.gesture_outcomes(session, report.outcomes)
    assert (found.with_gesture, found.with_recovered, found.with_share) == (2, 1, 0.5)
    assert (found.without_gesture, found.without_recovered) == (3, 2)  # a declined offer is no gesture
    assert found.recovered == report.total.recovered == 3
    assert found.spend == [("", 1, None), ("EUR", 3, Decimal("50"))]  # 30, 20 corrected to 10, and 10
    assert found.per_recovered() == [("EUR", Decimal("16.67"))]


def test_the_report_page_and_csv_show_the_gesture_measures(world):
    app, _ids = world
    client = app.test_client()
    login(client, SUPPORT)
    page = client.get("/agent/followups/report?from=2026-10-01&to=2026-10-10").text
    assert "50 % (1 of 2 customers)" in page and "66.7 % (2 of 3 customers)" in page
    assert "16.67 EUR" in page
    rows = list(csv.reader(io.StringIO(client.get("/agent/followups/report.csv?from=2026-10-01&to=2026-10-10").text)))
    found = {(row[4], row[5]): row[6] for row in rows if row[3] == "all"}
    assert found[("recovered_share_with_gesture", "")] == "0.5"
    assert found[("gesture_spend_per_recovered_customer", "EUR")] == "16.67"


def test_the_page_for_support_and_admin_not_editors(world):
    app, ids = world
    client = app.test_client()
    assert client.get("/agent/recovery").status_code == 302  # anonymous: to the login page
    login(client, EDITOR)
    assert client.get("/agent/recovery").status_code == 403
    client = app.test_client()
    login(client, SUPPORT)
    page = client.get("/agent/recovery").text
    assert 'href="/agent/recovery/approvals"' in page and "3 offers wait for an approver." in page
    assert "The oldest was made 2026-03-20 12:00 UTC by Ann" in page
    assert "Download the ledger" not in page  # the CSV is for admins
    admin = app.test_client()
    login(admin, ADMIN)
    assert "Download the ledger" in admin.get("/agent/recovery").text


def test_the_page_shows_spend_charts_budgets_and_the_outlier(app_factory):
    app = app_factory(TIME_ZONE="America/New_York")
    names = ("Ann", "Bob", "Cleo", "Dan")
    ids = [make_agent(app, f"{name.lower()}@example.com", name=name, role="support") for name in names]
    with app.app_context(), session_scope(app) as session:
        eur, pct = gesture(session, "Voucher"), gesture(session, "Ten off", kind="discount_percent", currency="")
        session.add(Bound(scope="customer_90d", max_count=3, approver_role="support"))
        for agent_id, amount in zip(ids, ("10", "20", "30", "100")):  # now: this week and this month
            give(session, app.config, session.get(Agent, agent_id), eur, amount, None)
        give(session, app.config, session.get(Agent, ids[0]), pct, "10", None)
        session.commit()
    client = app.test_client()
    login(client, "ann@example.com")
    page = client.get("/agent/recovery").text
    assert page.count("the median of 4 agents is 25.00 EUR") == 2  # this week and this month
    assert page.count("Dan spent 100.00 EUR, more than 2 times the median: worth a look.") == 2
    assert "only 1 agent spent; the comparison needs at least 3 agents" in page  # the percentages
    assert page.count('class="bar bar-open"') == 2 and page.count('class="bar bar-stage"') == 8
    assert "160.00 EUR (4 offers)" in page and "counted only" in page
    assert "No weekly bound is active" in page and "Per customer, over 90 days" in page
    assert "a support agent or an admin approves" in page and "No offer waits for an approver." in page
    assert not re.search(r"\sstyle=|<script>|<script(?![^>]*\ssrc=)", page)  # the CSP allows neither inline


def read_csv(client, query=""):
    """The ledger CSV's response and its rows."""
    response = client.get(f"/agent/recovery/ledger.csv{query}")
    streamed = response.is_streamed and "Content-Length" not in response.headers  # before the body is read
    return response, streamed, list(csv.reader(io.StringIO(response.text)))


def test_the_ledger_csv_for_admins_with_its_columns_escaping_and_filters(world):
    app, ids = world
    client = app.test_client()
    login(client, ADMIN)
    response, streamed, rows = read_csv(client, "?from=2026-11-01&to=2026-11-30")  # days in Oslo
    assert response.status_code == 200 and streamed and response.mimetype == "text/csv"
    assert tuple(rows[0]) == HEADER
    body = [dict(zip(HEADER, row)) for row in rows[1:]]
    assert len(body) == 11  # 8 offers, a decline, a cancellation, a correction; not the one of 31 Oct 23:30
    first = body[0]
    assert first["id"] == str(ids["a"]) and first["created_at"] == "2026-11-29T23:30:00+00:00"
    assert (first["agent"], first["gesture_type"], first["amount"], first["currency"]) == ("ann@example.com", "Credit EUR", "30.00", "EUR")
    assert [check["scope"] for check in json.loads(first["bounds"])] == ["agent_week", "customer_90d", "per_incident"]
    assert first["approver_role"] == "" and json.loads(first["bounds"])[0]["max_amount"] == "100.00"
    correction = next(row for row in body if row["kind"] == "correction")
    assert (correction["corrects_id"], correction["amount"], correction["reason"]) == (str(ids["a"]), "12.00", "'=the refund was smaller")
    decline = next(row for row in body if row["kind"] == "decline")
    assert (decline["approver"], decline["state"], decline["sample"]) == (ADMIN, "declined", "no")
    hostile = next(row for row in body if row["id"] == str(ids["hostile"]))
    assert (hostile["reference"], hostile["reason"]) == ("'+SUM(A1:A9)", "'@cmd|' /C calc'!A0")
    _response, _streamed, october_ones = read_csv(client, "?to=2026-10-31")
    assert all(row[1] < "2026-10-31T23:00" for row in october_ones[1:]) and len(october_ones) > 2


@pytest.mark.parametrize("query", ["?from=2026-02-30", "?to=yesterday", "?from=2026-11-02&to=2026-11-01",
                                   "?from=1900-01-01"])
def test_bad_csv_dates_are_a_clear_422(world, query):
    app, _ids = world
    client = app.test_client()
    login(client, ADMIN)
    response = client.get(f"/agent/recovery/ledger.csv{query}")
    assert response.status_code == 422 and response.text.startswith("Cannot export the ledger: The ")


def test_only_admins_download_the_ledger(world):
    app, _ids = world
    for email in (EDITOR, SUPPORT):
        client = app.test_client()
        login(client, email)
        assert client.get("/agent/recovery/ledger.csv").status_code == 403
