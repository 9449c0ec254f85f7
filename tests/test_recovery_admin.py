"""/agent/admin/recovery: admins keep the gesture types and bounds; every field is checked where it is typed.

One app serves the module (its rows only grow: each test names what it adds), so the many form
posts stay quick; the tests of offers' snapshots build their own.
"""

from __future__ import annotations

import re
from decimal import Decimal
from html import unescape

import pytest
import sqlalchemy as sa

from kb.db import session_scope
from kb.followup.models import Case, Customer
from kb.models import Agent
from kb.recovery import catalog, offers
from kb.recovery.models import Bound, GestureType, RecoveryEntry
from tests.agent_helpers import ADMIN, EDITOR, SUPPORT, login, make_agent, make_team_app, token
from tests.agent_helpers import logged_in as agent_login
from tests.conftest import close_app
from tests.test_followup_hostile import VALUES, send

BASE = "/agent/admin/recovery"
GOOD_GESTURE = {"name": "Voucher", "kind": "fixed_credit", "currency": "EUR", "active": "1",
                "template": "Dear {name}, here is {amount} {currency} (code {reference}). {agent}"}
GOOD_BOUND = {"scope": "per_incident", "gesture_type": "", "max_amount": "25", "max_count": "", "approver_role": "admin"}


@pytest.fixture(scope="module")
def module_app(tmp_path_factory):
    """One app for the module, with an admin, a support agent and an editor."""
    app = make_team_app(tmp_path_factory, "recovery-admin")
    yield app
    close_app(app)


def logged_in(app, email: str):
    """A test client logged in as ``email``, with a CSRF token of its session as ``.csrf``."""
    return agent_login(app, email, BASE if email == ADMIN else "/agent/")


@pytest.fixture(scope="module")
def admin(module_app):
    """The admin's client."""
    return logged_in(module_app, ADMIN)


def post(client, url: str, fields: dict, **kw):
    """POST the form with the client's CSRF token."""
    return client.post(url, data={**fields, "csrf_token": client.csrf}, **kw)


def field_error(html: str, form: str, field: str) -> str:
    """The message shown at ``field`` ("" when none)."""
    match = re.search(rf'id="{form}-{field}-error">([^<]*)<', html)
    return unescape(match.group(1)) if match else ""


def new_gesture(client, **fields) -> int:
    """Add a gesture type through the page; returns its id."""
    response = post(client, f"{BASE}/gestures/new", {**GOOD_GESTURE, **fields})
    assert response.status_code == 303, field_error(response.text, "gesture", "name") or response.text[-500:]
    with session_scope(client.application) as session:
        return session.scalar(sa.select(GestureType.id).where(GestureType.name == fields.get("name", "Voucher")))


def new_bound(client, **fields) -> int:
    """Add a bound through the page; returns its id (the newest)."""
    response = post(client, f"{BASE}/bounds/new", {**GOOD_BOUND, **fields})
    assert response.status_code == 303, response.text[-800:]
    with session_scope(client.application) as session:
        return session.scalar(sa.select(sa.func.max(Bound.id)))


def admin_urls() -> list[tuple[str, str]]:
    """Every (method, url) of the admin pages (ids of 1, which exist by the time it runs)."""
    return [("GET", BASE), ("GET", f"{BASE}/gestures/new"), ("POST", f"{BASE}/gestures/new"),
            ("GET", f"{BASE}/gestures/1"), ("POST", f"{BASE}/gestures/1"), ("GET", f"{BASE}/bounds/new"),
            ("POST", f"{BASE}/bounds/new"), ("GET", f"{BASE}/bounds/1"), ("POST", f"{BASE}/bounds/1"),
            ("POST", f"{BASE}/bounds/1/deactivate"), ("POST", f"{BASE}/bounds/1/reactivate")]


def test_only_admins_reach_the_pages_and_the_nav_shows_them_only(module_app, admin):
    gesture_id, bound_id = new_gesture(admin, name="Role check"), new_bound(admin, scope="customer_90d")
    assert (gesture_id, bound_id) >= (1, 1)
    rules = {rule.endpoint for rule in module_app.url_map.iter_rules() if "/admin/recovery" in rule.rule}
    assert len(rules) == 7  # a new page joins admin_urls
    for email in (SUPPORT, EDITOR):
        client = logged_in(module_app, email)
        assert 'id="nav-recovery-admin"' not in client.get("/agent/").text
        for method, url in admin_urls():
            response = client.open(url, method=method, data={**GOOD_GESTURE, **GOOD_BOUND, "csrf_token": client.csrf})
            assert response.status_code == 403, (email, method, url, response.status_code)
    anonymous = module_app.test_client()
    for method, url in admin_urls():
        response = anonymous.open(url, method=method)
        assert response.status_code in (302, 400) and "/agent/login" in (response.location or "/agent/login")
    nav = admin.get("/agent/").text
    assert 'id="nav-recovery-admin" href="/agent/admin/recovery"' in nav
    assert 'href="/agent/admin/recovery"' in admin.get("/agent/admin/agents").text
    with session_scope(module_app) as session:  # the refused posts changed nothing
        assert session.get(Bound, bound_id).active and session.get(GestureType, gesture_id).name == "Role check"


def test_an_admin_adds_and_edits_a_gesture_type_with_its_languages(module_app, admin):
    gesture_id = new_gesture(admin, name="Gift card", currency="nok", needs_reference="1",
                             template_zh="{name}您好，{amount} {currency}", template_nb="Hei {name}, {amount} kr")
    with session_scope(module_app) as session:
        gesture = session.get(GestureType, gesture_id)
        assert (gesture.currency, gesture.needs_reference, gesture.active, gesture.sample) == ("NOK", True, True, False)
        assert gesture.templates == {"zh": "{name}您好，{amount} {currency}", "nb": "Hei {name}, {amount} kr"}
    page = admin.get(f"{BASE}/gestures/{gesture_id}").text
    assert "Hei {name}, {amount} kr</textarea>" in page and 'name="needs_reference" value="1" checked' in page
    response = post(admin, f"{BASE}/gestures/{gesture_id}", {**GOOD_GESTURE, "name": "Gift card 2", "currency": "NOK",
                                                          "template_nb": "", "kind": "gift"})
    assert response.status_code == 303 and response.location.endswith(BASE)
    with session_scope(module_app) as session:
        gesture = session.get(GestureType, gesture_id)
        assert (gesture.name, gesture.kind, gesture.templates, gesture.active) == ("Gift card 2", "gift", {}, True)
        assert not gesture.needs_reference  # an unticked box is a no
    post(admin, f"{BASE}/gestures/{gesture_id}", {**GOOD_GESTURE, "name": "Gift card 2", "active": ""})
    listing = admin.get(BASE).text
    assert "Gift card 2" in listing and "inactive" in listing


GESTURE_ERRORS = [
    ({"name": ""}, "name", "Give the gesture a name"),
    ({"name": "x" * 121}, "name", "under 120"),
    ({"name": "a\x01b"}, "name", "control characters"),
    ({"name": "DUPLICATE"}, "name", "has this name already"),
    ({"kind": "refund"}, "kind", "Choose a kind"),
    ({"kind": "apology", "currency": "EUR"}, "currency", "An apology has no amount"),
    ({"kind": "discount_percent", "currency": "EUR"}, "currency", "A discount is a percentage"),
    ({"kind": "fixed_credit", "currency": ""}, "currency", "Give the currency"),
    ({"currency": "EURO"}, "currency", "ISO 4217"),
    ({"currency": "XQQ"}, "currency", "ISO 4217"),
    ({"currency": "€"}, "currency", "ISO 4217"),
    ({"template": "  "}, "template", "Write the message"),
    ({"template": "Hi {customer}"}, "template", "Unknown placeholder {customer}"),
    ({"template": "Hi {Name} {}"}, "template", "Unknown placeholder {Name}, {}"),
    ({"template": "x" * 5001}, "template", "under 5000"),
    ({"template_zh": "您好 {姓名}"}, "template_zh", "Unknown placeholder {姓名}"),
    ({"template_nb": "Hei {navn}, {amount}"}, "template_nb", "Unknown placeholder {navn}"),
]


def test_every_gesture_field_is_checked_at_the_field_and_the_form_kept(module_app, admin):
    new_gesture(admin, name="Duplicate")
    for fields, field, message in GESTURE_ERRORS:
        values = {**GOOD_GESTURE, "name": "Checked", **fields}
        for url in (f"{BASE}/gestures/new", f"{BASE}/gestures/1"):
            response = post(admin, url, values)
            assert response.status_code == 422, (fields, url)
            assert message in field_error(response.text, "gesture", field), (fields, response.text[-2000:])
            assert 'role="alert"' in response.text
            assert f'id="gesture-{field}" ' in response.text or f'name="{field}"' in response.text
            kept = values["template"][:40]
            assert kept.strip() == "" or unescape(response.text).count(kept) >= 1  # what was typed stays
    with session_scope(module_app) as session:
        assert session.scalar(sa.select(GestureType.id).where(GestureType.name == "Checked")) is None
    # Lower-case currencies are upper-cased, "other" may go without one, and the names' case does not matter.
    assert new_gesture(admin, name="Other thing", kind="other", currency="")
    assert post(admin, f"{BASE}/gestures/new", {**GOOD_GESTURE, "name": "other THING"}).status_code == 422


def test_every_bound_field_is_checked_at_the_field(module_app, admin):
    apology = new_gesture(admin, name="Sorry", kind="apology", currency="")
    discount = new_gesture(admin, name="Discount", kind="discount_percent", currency="")
    new_bound(admin, scope="agent_week", gesture_type=str(discount), max_amount="", max_count="3")
    errors = [
        ({"max_amount": "", "max_count": ""}, "max_amount", "Set a maximum amount, a maximum count, or both"),
        ({"max_amount": "-5"}, "max_amount", "cannot be negative"),
        ({"max_amount": "", "max_count": "-1"}, "max_count", "cannot be negative"),
        ({"max_amount": "1,5"}, "max_amount", "plain number"),
        ({"max_amount": "12.345"}, "max_amount", "plain number"),
        ({"max_amount": "１２"}, "max_amount", "plain number"),
        ({"max_amount": "NaN"}, "max_amount", "plain number"),
        ({"max_amount": "", "max_count": "2.5"}, "max_count", "plain number"),
        ({"max_amount": "", "max_count": "99999999"}, "max_count", "plain number"),
        ({"gesture_type": str(apology), "max_amount": "5"}, "max_amount", "An apology has no amount"),
        ({"gesture_type": str(discount), "max_amount": "150"}, "max_amount", "100 or less"),
        ({"gesture_type": "99999"}, "gesture_type", "Choose a gesture type"),
        ({"gesture_type": "abc"}, "gesture_type", "Choose a gesture type"),
        ({"scope": "per_year"}, "scope", "Choose what the bound counts"),
        ({"approver_role": "editor"}, "approver_role", "support or admin"),
    ]
    for fields, field, message in errors:
        for url in (f"{BASE}/bounds/new", f"{BASE}/bounds/1"):
            response = post(admin, url, {**GOOD_BOUND, "scope": "customer_90d", **fields})
            assert response.status_code == 422, (fields, url, response.status_code)
            assert message in field_error(response.text, "bound", field), (fields, url)
            for name, value in fields.items():  # the form keeps what was typed
                if name in ("max_amount", "max_count"):
                    assert f'name="{name}"' in response.text and f'value="{value}"' in response.text
    duplicate = post(admin, f"{BASE}/bounds/new", {**GOOD_BOUND, "scope": "agent_week", "gesture_type": str(discount),
                                                   "max_amount": "", "max_count": "4"})
    assert duplicate.status_code == 422 and "exists already" in unescape(duplicate.text)
    assert new_bound(admin, scope="per_incident", gesture_type=str(apology), max_amount="", max_count="0")


def test_deactivating_and_reactivating_a_bound(module_app, admin):
    first = new_bound(admin, scope="agent_week", max_amount="150", max_count="10")
    response = post(admin, f"{BASE}/bounds/{first}/deactivate", {}, follow_redirects=True)
    assert "The bound is deactivated." in response.text
    second = new_bound(admin, scope="agent_week", max_amount="200")  # the first no longer holds the place
    response = post(admin, f"{BASE}/bounds/{first}/reactivate", {}, follow_redirects=True)
    assert "exists already" in unescape(response.text)
    post(admin, f"{BASE}/bounds/{second}/deactivate", {})
    assert "active again" in post(admin, f"{BASE}/bounds/{first}/reactivate", {}, follow_redirects=True).text
    with session_scope(module_app) as session:
        assert session.get(Bound, first).active and not session.get(Bound, second).active
    assert post(admin, f"{BASE}/bounds/99999/deactivate", {}).status_code == 404
    assert admin.get(f"{BASE}/gestures/99999").status_code == 404


def test_the_pages_work_without_javascript(module_app, admin):
    for url in (BASE, f"{BASE}/gestures/new", f"{BASE}/bounds/new", f"{BASE}/gestures/1", f"{BASE}/bounds/1"):
        html = admin.get(url).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html) and " style=" not in html and "onclick" not in html
        for form in re.findall(r"<form[^>]*>.*?</form>", html, re.S):
            if "logout" not in form:
                assert 'method="post"' in form and 'name="csrf_token"' in form and 'type="submit"' in form
    assert "never changes past offers" in admin.get(BASE).text
    with admin.get("/static/recovery_admin.css") as css:
        assert css.status_code == 200 and b"@media" not in css.data  # the agent table's own narrow layout serves


def test_any_text_in_any_field_gets_an_answer(module_app, admin):
    # The add and edit forms share their checks: each value goes to one of them, in turn.
    forms = [((f"{BASE}/gestures/new", f"{BASE}/gestures/1"), GOOD_GESTURE),
             ((f"{BASE}/bounds/new", f"{BASE}/bounds/1"), GOOD_BOUND)]
    for urls, good in forms:
        for name in good:
            for n, value in enumerate(VALUES):
                url = urls[n % 2]
                response = send(admin, url, {**good, name: value}, admin.csrf)
                assert response.status_code < 500, (url, name, repr(value[:80]), response.status_code)
    assert admin.get(BASE).status_code == 200  # whatever was stored lists and reads back
    with session_scope(module_app) as session:
        for gesture in catalog.list_gesture_types(session):
            assert catalog.unknown_placeholders(gesture.template) == [] and len(gesture.name) <= 120
        assert all(row.bound.max_amount is None or row.bound.max_amount >= 0 for row in catalog.list_bounds(session))


# --- offers keep their bounds --------------------------------------------------------------------------

def test_editing_a_bound_never_changes_past_offers(app, client):
    make_agent(app, ADMIN, name="Ada Admin", role="admin")
    login(client, ADMIN)
    client.csrf = token(client, BASE)
    credit = new_gesture(client, name="Voucher")
    bound_id = new_bound(client, max_amount="50", gesture_type=str(credit))
    with session_scope(app) as session:
        customer = Customer(name="Kari")
        session.add(customer)
        session.flush()
        case = Case(open_key="test:1", customer_id=customer.id, source="manual")
        session.add(case)
        session.flush()
        agent, gesture = session.scalar(sa.select(Agent)), session.get(GestureType, credit)
        first = offers.offer(session, case=case, agent=agent, gesture_type=gesture, amount="40", reason="delivery",
                             message="Sorry", reference="C-1", settings=app.config)
        assert first.state == "approved_auto"
        first_id, snapshot = first.entry.id, dict(first.entry.bounds)
    assert snapshot["checked"][0]["max_amount"] == "50.00"
    response = post(client, f"{BASE}/bounds/{bound_id}", {**GOOD_BOUND, "gesture_type": str(credit),
                                                           "max_amount": "45", "approver_role": "support"})
    assert response.status_code == 303
    post(client, f"{BASE}/gestures/{credit}", {**GOOD_GESTURE, "name": "Voucher (new)",
                                               "template": "New words for {name}"})
    with session_scope(app) as session:
        entry = session.get(RecoveryEntry, first_id)
        assert entry.bounds == snapshot and entry.message == "Sorry"  # the offer keeps what applied then
        bound = session.get(Bound, bound_id)
        assert (bound.max_amount, bound.approver_role) == (Decimal("45.00"), "support")
        second = offers.offer(session, case=session.get(Case, entry.case_id), agent=session.get(Agent, entry.agent_id),
                              gesture_type=session.get(GestureType, credit), amount="10", reason="delivery",
                              message="More", reference="C-2", settings=app.config)
        assert second.state == "pending" and second.exceeded[0]["max_amount"] == "45.00"
        assert second.entry.bounds["approver_role"] == "support"
    # Offers were made with it: its kind and currency stay (the ledger and the reports count them so).
    response = post(client, f"{BASE}/gestures/{credit}", {**GOOD_GESTURE, "name": "Voucher (new)", "currency": "NOK"})
    assert response.status_code == 422 and "add a new gesture type" in field_error(response.text, "gesture", "kind")
