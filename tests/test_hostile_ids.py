"""Every URL with an id or token in it answers hostile values with 400 or 404, never a 500.

The walk goes over the whole URL map, so a route added later is covered without anyone
remembering to: huge numbers (PostgreSQL's int4 ends at 2**31 - 1, SQLite's integers at 2**63 - 1),
NUL characters (PostgreSQL refuses them in text), and signed tokens whose signature is valid but
whose payload is not what kb signs.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from itsdangerous import Signer, URLSafeSerializer

from tests.agent_helpers import ADMIN, created_id, login, make_agent, save_new, token
from tests.conftest import TEST_SECRET

HUGE_IDS = ["2147483648", str(2**63 - 1), str(2**63), str(2**64), "1" + "0" * 30, "9" * 5000]
SALT = "kb-mail-feedback"  # kb.autoreply.links


def signed(payload) -> str:
    """A token with a valid signature around ``payload``."""
    return URLSafeSerializer(TEST_SECRET, salt=SALT).dumps(payload)


HOSTILE_TEXT = [
    "\x00", "a\x00b", "x" * 3000, "\udcff", "../../etc/passwd", "%ff", "1.5", "-1",
    signed({"r": 2**63, "a": "solved"}), signed({"r": 2**31, "a": "help"}), signed({"r": -5, "a": "help"}),
    signed({"r": 0, "a": "solved"}), signed({"r": 1.5, "a": "solved"}), signed({"r": "1", "a": "help"}),
    signed(None), signed([1, "solved"]), signed({"r": 1}), signed("solved"),
    Signer(TEST_SECRET, salt=SALT).sign(b"not base64 json!").decode(),
    Signer(TEST_SECRET, salt=SALT).sign(b"bm90IGpzb24").decode(),  # base64 of "not json"
]
HOSTILE_QUERY = ["\x00", "a\x00b", "9" * 40, "-1", "1e999", "\udcff"]
QUERY_NAMES = ("page", "per_page", "a", "b", "q", "status", "lang", "category", "state", "next")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def admin_client(request, app_factory):
    """A client logged in as an admin, on SQLite or on a fresh PostgreSQL database."""
    overrides = {"DATABASE_URL": request.getfixturevalue("pg_database_url")} if request.param == "postgres" else {}
    app = app_factory(**overrides)
    make_agent(app, ADMIN, role="admin")
    client = app.test_client()
    assert login(client, ADMIN).status_code == 302
    assert created_id(save_new(client)) == 1  # so "1" in the other arguments names a real article
    client.environ_base["HTTP_X_CSRFTOKEN"] = token(client, "/agent/")
    return app, client


def hostile_urls(app):
    """(method, url) for every route, with each argument in turn replaced by hostile values."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "agent.logout":
            continue  # would end the walk's session; it takes no argument anyway
        methods = [m for m in ("GET", "POST") if m in rule.methods]
        for name in rule.arguments:
            numeric = type(rule._converters[name]).__name__ != "PathConverter" and rule._converters[name].regex == r"\d+"
            for value in HUGE_IDS if numeric else HOSTILE_TEXT:
                path = rule.rule
                for other in rule.arguments:
                    raw = value if other == name else ("en" if other == "lang_code" else "1")
                    encoded = quote(raw.encode("utf-8", "surrogatepass"), safe="%") if not numeric else raw
                    path = re.sub(rf"<(?:\w+:)?{other}>", lambda _m: encoded, path)
                yield from ((method, path) for method in methods)


def test_the_walk_covers_every_route_with_an_argument(admin_client):
    app, _ = admin_client
    walked = {url.split("/")[1] for _, url in hostile_urls(app)}
    assert {"agent", "en", "articles", "mail", "api", "categories"} <= walked


def test_hostile_ids_and_tokens_are_400_or_404_never_500(admin_client):
    app, client = admin_client
    seen = 0
    for method, url in hostile_urls(app):
        response = client.open(url, method=method, follow_redirects=True)  # old addresses redirect
        # A POST to an old address is redirected (307) to a page that may only take GET.
        assert response.status_code in ((400, 404, 405) if response.history else (400, 404)), (method, url[:120], response.status_code)
        seen += 1
    assert seen > 200
    assert client.get("/agent/").status_code == 200  # still logged in: every answer was a clean refusal


def test_hostile_query_arguments_never_give_a_500(admin_client):
    app, client = admin_client
    pages = ["/", "/search?q=x", "/api/search?q=x", "/api/suggest?q=x", "/agent/", "/agent/mail",
             "/agent/articles/1/revisions", "/agent/admin/agents", "/sitemap.xml", "/categories/x"]
    for page in pages:
        for name in QUERY_NAMES:
            for value in HOSTILE_QUERY:
                url = f"{page}{'&' if '?' in page else '?'}{name}={quote(value.encode('utf-8', 'surrogatepass'))}"
                response = client.get(url)
                assert response.status_code < 500, (url, response.status_code)


def test_a_validly_signed_but_malformed_feedback_link_is_a_400_with_a_message(admin_client):
    _, client = admin_client
    for value in (signed({"r": 2**63, "a": "solved"}), Signer(TEST_SECRET, salt=SALT).sign(b"bm90IGpzb24").decode()):
        response = client.get(f"/mail/feedback/{value}")
        assert response.status_code == 400 and "not valid" in response.text
