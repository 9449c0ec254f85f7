"""Any text in any field of the follow-up pages gets an answer, never a 500, and stores nothing broken.

Every form and query parameter the loop added (the vote form, the survey page, opening a case by
hand, notes, messages, resolving, assigning, customers' identities, notes, merges and search, the
queue's filters and the report's period) is sent strings built from pieces that have broken
software before: controls, NUL, lone surrogates (sent as the bytes a broken client would send),
right-to-left marks, huge words, markup, SQL and format strings.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
import sqlalchemy as sa

from kb.db import session_scope
from kb.followup import signals
from kb.followup.models import Case, Customer
from tests.agent_helpers import ADMIN, login, make_agent, token
from tests.test_autoreply_compose import hostile_strings

SPECIAL = ["", " ", "\x00", "a\x00b", "\ud800", "x" * 100_000, "<script>alert(1)</script>", "' OR 1=1 --",
           "%(name)s {0} %s", "9" * 40, "-1", "0", "\u202eevil", "用户@例子.广告", "a@b.c\r\nBcc: x@y",
           "+47 " + "1" * 500, "%", "_", "\\", "../../etc/passwd", "²", "٣", "1_000", "１２",
           "99999999999999999999", "2147483648", "2026-02-30", "0001-01-01", "9999-12-31"]
VALUES = SPECIAL + list(hostile_strings(25, seed=11))


def body(fields: dict[str, str]) -> bytes:
    """A form body as a broken client may send it: UTF-8, lone surrogates kept as their bytes."""
    return "&".join(f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in fields.items()).encode()


def query(fields: dict[str, str]) -> str:
    """A query string of the same bytes."""
    return body(fields).decode("ascii")


def send(client, url: str, fields: dict[str, str], csrf: str | None = None, **kw):
    """POST ``fields`` (with the CSRF token when given) as a url-encoded form."""
    if csrf is not None:
        fields = {**fields, "csrf_token": csrf}
    return client.post(url, data=body(fields), content_type="application/x-www-form-urlencoded", **kw)


@pytest.fixture
def admin_client(app, client):
    """An admin, logged in, and a case with a customer to act on."""
    make_agent(app, ADMIN, name="Ada Admin", role="admin")
    login(client, ADMIN)
    with session_scope(app) as session:
        result = signals.record_signal(session, key="vote:seed", source="vote", settings=app.config,
                                       address="ann@example.org", name="Ann", words="It did not help.")
        session.commit()
        client.case_id, client.customer_id = result.case.id, result.case.customer_id
    client.csrf = token(client, f"/agent/followups/{client.case_id}")
    return client


AGENT_FORMS = [
    ("/agent/followups/new", ["email", "phone", "name", "channel", "words", "article", "nonce"],
     {"email": "kari@example.org", "channel": "phone", "words": "Called about a refund."}),
    ("/agent/followups/{case}/note", ["text", "channel", "outcome"], {"text": "Called", "channel": "phone"}),
    ("/agent/followups/{case}/message", ["body", "links", "nonce"], {"body": "Hello"}),
    ("/agent/followups/{case}/assign", ["assignee"], {}),
    ("/agent/followups/{case}/resolve", ["root_cause", "note"], {"root_cause": "product"}),
    ("/agent/followups/{case}/reopen", ["note"], {}),
    ("/agent/followups/{case}/acknowledge", ["note"], {}),
    ("/agent/customers/{customer}/identities", ["kind", "value"], {"kind": "phone", "value": "+47 22 33 44 55"}),
    ("/agent/customers/{customer}/notes", ["note", "channel", "outcome"], {"note": "Met in the shop", "channel": "in_person"}),
    ("/agent/customers/{customer}/merge", ["merged_id"], {}),
]
AGENT_QUERIES = [
    ("/agent/followups", ["state", "assignee", "category", "source", "page"]),
    ("/agent/customers", ["q", "page", "merge_q"]),
    ("/agent/customers/{customer}", ["page", "merge_q"]),
    ("/agent/followups/report", ["from", "to", "agent"]),
    ("/agent/followups/report.csv", ["from", "to", "agent"]),
]


@pytest.mark.parametrize(("url", "fields", "good"), AGENT_FORMS, ids=[f[0] for f in AGENT_FORMS])
def test_any_text_in_an_agent_form_gets_an_answer(app, admin_client, url, fields, good):
    url = url.format(case=admin_client.case_id, customer=admin_client.customer_id)
    for name in fields:
        for value in VALUES:
            response = send(admin_client, url, {**good, name: value}, admin_client.csrf)
            assert response.status_code < 500, (url, name, repr(value[:80]), response.status_code)
    with session_scope(app) as session:  # what was stored reads back
        assert session.scalar(sa.select(sa.func.count()).select_from(Case)) >= 1
        assert all(c.name is not None for c in session.scalars(sa.select(Customer)))


@pytest.mark.parametrize(("url", "fields"), AGENT_QUERIES, ids=[q[0] for q in AGENT_QUERIES])
def test_any_text_in_an_agent_query_gets_an_answer(admin_client, url, fields):
    url = url.format(customer=admin_client.customer_id)
    for name in fields:
        for value in VALUES:
            response = admin_client.get(f"{url}?{query({name: value})}")
            assert response.status_code < 500, (url, name, repr(value[:80]), response.status_code)


def test_any_text_in_the_vote_form_gets_an_answer(app, client, make_article):
    slug = make_article().slug
    url = f"/en/articles/{slug}/vote"
    csrf = token(client, f"/en/articles/{slug}")
    for n, value in enumerate(VALUES):
        for name in ("comment", "reason", "email", "helpful"):
            fields = {"helpful": "no", "comment": "", "reason": "", "email": "", name: value}
            address = f"10.{n % 250}.{len(name)}.{(n * 7) % 250}"  # fresh clients: the per-client limit stays out of it
            response = send(client, url, fields, csrf, environ_overrides={"REMOTE_ADDR": address})
            assert response.status_code < 500, (name, repr(value[:80]), response.status_code)


def test_any_text_as_a_survey_token_score_or_comment_gets_an_answer(client, make_article):
    csrf = token(client, f"/en/articles/{make_article().slug}")
    for value in VALUES:
        safe = quote(value.encode("utf-8", "surrogatepass"), safe="")
        for response in (client.get(f"/en/survey/{safe}?{query({'score': value})}"),
                         send(client, f"/en/survey/{safe}", {"score": value, "comment": value}, csrf)):
            assert response.status_code < 500, (repr(value[:80]), response.status_code)
