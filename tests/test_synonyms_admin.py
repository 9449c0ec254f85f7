"""/agent/admin/synonyms: admins list, add, edit, remove and switch sets per language; anything typed gets an answer.

One app serves the module (its rows only grow, each test names what it adds), so the posts stay quick.
"""

from __future__ import annotations

import re
from html import unescape

import pytest
import sqlalchemy as sa

from kb.capture import synonyms
from kb.capture.models import SynonymSet
from kb.db import session_scope
from tests.agent_helpers import ADMIN, EDITOR, SUPPORT, logged_in, make_team_app
from tests.conftest import close_app
from tests.test_followup_hostile import VALUES, send

BASE = "/agent/admin/synonyms"


@pytest.fixture(scope="module")
def module_app(tmp_path_factory):
    """One app for the module, with an admin, a support agent and an editor."""
    app = make_team_app(tmp_path_factory, "synonyms-admin")
    yield app
    close_app(app)


@pytest.fixture(scope="module")
def admin(module_app):
    """The admin's client."""
    return logged_in(module_app, ADMIN)


def post(client, url: str, fields: dict, **kw):
    """POST the form with the client's CSRF token."""
    return client.post(url, data={**fields, "csrf_token": client.csrf}, **kw)


def set_id(app, **where) -> int:
    """The id of the set matching ``where`` (column=value)."""
    with session_scope(app) as session:
        return session.scalar(sa.select(SynonymSet.id).where(*(getattr(SynonymSet, k) == v for k, v in where.items())))


def listed(html: str) -> list[str]:
    """The sets as the page lists them (their written lines)."""
    return [unescape(t) for t in re.findall(r'class="synonym-terms"[^>]*>([^<]*)<', html)]


def test_only_admins_reach_the_page_and_the_nav_shows_it_to_them(module_app, admin):
    page = admin.get(f"{BASE}?lang=en")
    assert page.status_code == 200 and 'id="nav-synonyms"' in page.text
    refund = set_id(module_app, default_key="en:refund")
    urls = [("GET", BASE), ("POST", BASE), ("GET", f"{BASE}/{refund}"), ("POST", f"{BASE}/{refund}"),
            ("POST", f"{BASE}/{refund}/remove"), ("POST", f"{BASE}/{refund}/off"), ("POST", f"{BASE}/{refund}/on")]
    assert len([r for r in module_app.url_map.iter_rules() if r.rule.startswith(BASE)]) == 6  # new pages join urls
    for email in (SUPPORT, EDITOR):
        client = logged_in(module_app, email)
        assert 'id="nav-synonyms"' not in client.get("/agent/").text
        for method, url in urls:
            response = client.open(url, method=method, data={"lang": "en", "terms": "a, b", "csrf_token": client.csrf})
            assert response.status_code == 403, (email, method, url)
    anonymous = module_app.test_client()
    for method, url in urls:
        response = anonymous.open(url, method=method)
        assert response.status_code in (302, 400) and "/agent/login" in (response.location or "/agent/login")
    with session_scope(module_app) as session:  # the refused posts changed nothing
        assert session.get(SynonymSet, refund).active
        assert session.scalar(sa.select(sa.func.count()).where(SynonymSet.source == "agent")) == 0


def test_each_language_lists_its_defaults_and_an_admin_adds_edits_and_removes_a_set(module_app, admin):
    for lang, term in (("en", "money back"), ("zh", "退钱"), ("nb", "pengene tilbake")):
        assert any(term in line for line in listed(admin.get(f"{BASE}?lang={lang}").text)), lang
    response = post(admin, BASE, {"lang": "nb", "terms": "kano , kajakk"})
    assert response.status_code == 303 and response.location.endswith(f"{BASE}?lang=nb")
    page = admin.get(response.location).text
    assert listed(page)[0] == "kano, kajakk" and "Added the set" in page
    row = set_id(module_app, lang="nb", source="agent")
    assert 'value="kano, kajakk"' in admin.get(f"{BASE}/{row}").text
    assert post(admin, f"{BASE}/{row}", {"terms": "kano => kajakk, padlebrett"}).status_code == 303
    assert listed(admin.get(f"{BASE}?lang=nb").text)[0] == "kano => kajakk, padlebrett"
    assert post(admin, f"{BASE}/{row}/remove", {}).status_code == 303
    assert "kano" not in admin.get(f"{BASE}?lang=nb").text
    assert admin.get(f"{BASE}/{row}").status_code == 404


def test_a_default_is_switched_off_and_on_but_never_edited_or_removed(module_app, admin):
    row = set_id(module_app, default_key="zh:refund")
    assert post(admin, f"{BASE}/{row}/off", {}).status_code == 303
    page = admin.get(f"{BASE}?lang=zh").text
    assert re.search(rf'id="set-{row}" class="inactive"', page) and "Switch on" in page
    with session_scope(module_app) as session:
        assert all("退钱" not in s.terms for s in synonyms.active_sets(session))
    assert admin.get(f"{BASE}/{row}").status_code == 404  # no edit page for a default
    response = post(admin, f"{BASE}/{row}/remove", {}, follow_redirects=True)
    assert "cannot be removed" in response.text and set_id(module_app, default_key="zh:refund") == row
    assert post(admin, f"{BASE}/{row}/on", {}).status_code == 303
    with session_scope(module_app) as session:
        assert session.get(SynonymSet, row).active


def test_a_refused_set_comes_back_with_its_message_and_what_was_typed(module_app, admin):
    response = post(admin, BASE, {"lang": "en", "terms": "a, b => c"})
    assert response.status_code == 422
    assert "exactly one term before =&gt;" in response.text and 'value="a, b =&gt; c"' in response.text
    assert 'aria-invalid="true"' in response.text
    elsewhere = post(admin, BASE, {"lang": "xx", "terms": "filed, elsewhere"})
    assert elsewhere.status_code == 422 and "Choose one of the languages" in elsewhere.text
    assert all("filed" not in admin.get(f"{BASE}?lang={code}").text for code in ("en", "zh", "nb"))
    post(admin, BASE, {"lang": "en", "terms": "dup one, dup two"})
    again = post(admin, BASE, {"lang": "en", "terms": "Dup Two, dup one"})
    assert again.status_code == 422 and "already has that set" in again.text


def test_hostile_text_in_the_forms_is_answered_and_shown_as_text(module_app, admin):
    script = "<script>alert(1)</script>, \"><img src=x onerror=alert(1)>"
    assert post(admin, BASE, {"lang": "en", "terms": script}).status_code == 303
    page = admin.get(f"{BASE}?lang=en").text
    assert "<script>alert" not in page and "<img src=x" not in page and "&lt;script&gt;" in page
    row = set_id(module_app, lang="en", source="agent", kind="equivalent")
    for n, value in enumerate(VALUES):
        for url, fields in ((BASE, {"lang": value, "terms": "a, b"}), (BASE, {"lang": "en", "terms": value}),
                            (f"{BASE}/{row}", {"terms": value})):
            response = send(admin, url, fields, admin.csrf)
            assert response.status_code in (303, 404, 422), (url, repr(value[:80]), response.status_code)
    for value in ("../../etc/passwd", "en' OR 1=1", "\x00", "ZH"):
        assert admin.get(BASE, query_string={"lang": value}).status_code == 200
    with session_scope(module_app) as session:  # whatever was stored parses again and lists
        for item in session.scalars(sa.select(SynonymSet).where(SynonymSet.source == "agent")):
            assert synonyms.parse_line(synonyms.written(item.kind, item.terms))[1] == item.terms
            assert item.lang in ("en", "zh", "nb")


def test_the_page_needs_no_javascript(admin):
    for url in (f"{BASE}?lang=en", f"{BASE}?lang=zh"):
        html = admin.get(url).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html) and " style=" not in html and "onclick" not in html
        for form in re.findall(r"<form[^>]*>.*?</form>", html, re.S):
            if "logout" not in form:
                assert 'method="post"' in form and 'name="csrf_token"' in form and 'type="submit"' in form
    with admin.get("/static/synonyms.css") as css:
        assert css.status_code == 200 and b"overflow-wrap" in css.data
