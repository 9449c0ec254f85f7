"""Example questions as agents and customers see them: the editor's list, the "Solved" source, portal search."""

from __future__ import annotations

import re
import time

import sqlalchemy as sa

from kb import agents, search
from kb.articles import ArticleDraft, create_article
from kb.autoreply import ledger, links
from kb.capture import examples
from kb.capture.models import ExampleQuestion
from kb.db import session_scope
from kb.models import IndexChange
from tests.agent_helpers import login, make_agent, post_form, token
from tests.conftest import TEST_SECRET, csrf_token_from

HOSTILE = '<script>alert("x")</script> Can I return it?"><img src=x onerror=alert(1)>'


def publish(app, title: str, body: str) -> int:
    """A published article, committed; its id."""
    with session_scope(app) as session:
        article = create_article(session, ArticleDraft(title, body, "en"), status="published")
        session.flush()
        return article.id


def rows(app, article_id: int) -> list[tuple[str, str]]:
    """(text, source) of the article's examples, newest first."""
    with session_scope(app) as session:
        return [(e.text, e.source) for e in examples.for_article(session, article_id)]


def wait_until(predicate, timeout: float) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# The editor: list, add, remove -------------------------------------------------------------------

def test_the_editor_lists_adds_and_removes_examples_without_javascript(app, client):
    make_agent(app)
    login(client)
    article_id = publish(app, "Returns", "Send the item back within 30 days.")
    url = f"/agent/articles/{article_id}/examples"
    added = post_form(client, url, {"phrasings": f"Can I send it back?\n\n  can i SEND it back? \n{HOSTILE}\n"
                                                 "Mail me at kari@example.no about returns"})
    assert added.status_code == 302 and added.location.endswith(f"/agent/articles/{article_id}/edit#examples")
    kept = rows(app, article_id)
    assert [source for _t, source in kept] == ["editor"] * 3  # the same question twice is kept once
    assert kept[0][0] == "Mail me at [email] about returns"  # scrubbed, and the newest first

    page = client.get(f"/agent/articles/{article_id}/edit").text
    section = page[page.index('id="examples"'):]
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#34;x&#34;)" in section
    assert section.index("[email] about returns") < section.index("Can I send it back?")
    assert "added in the editor" in section and re.search(r'<time datetime="\d{4}-\d\d-\d\dT', section)
    removes = re.findall(r'<form class="inline-form" method="post" action="([^"]+/remove)">', section)
    assert len(removes) == 3 and 'name="phrasings"' in section  # plain forms: no script needed

    assert client.post(removes[0]).status_code == 400  # no CSRF token: refused, nothing removed
    assert len(rows(app, article_id)) == 3
    assert post_form(client, removes[0], {}).status_code == 302
    assert [text for text, _s in rows(app, article_id)] == [HOSTILE, "Can I send it back?"]
    # An example of another article, named through this one, is left alone.
    other = publish(app, "Shipping", "We ship in two days.")
    with session_scope(app) as session:
        foreign = examples.learn(session, other, "When does it ship?", source="editor").id
    post_form(client, f"/agent/articles/{article_id}/examples/{foreign}/remove", {})
    assert rows(app, other) == [("When does it ship?", "editor")]
    assert post_form(client, url, {"phrasings": " \n "}).status_code == 302
    assert len(rows(app, article_id)) == 2
    # Too long a line is refused with its number; the other lines still go in, control characters dropped.
    refused = post_form(client, url, {"phrasings": "word " * 500 + "\nNull\x00 byte?\u202e"}, follow_redirects=True)
    assert "Line 1: Keep an example under 2,000 characters." in refused.text
    assert [text for text, _s in rows(app, article_id)][0].startswith("Null")
    assert len(rows(app, article_id)) == 3


def test_changing_examples_follows_who_may_edit_articles(app, client, monkeypatch):
    article_id = publish(app, "Returns", "Send the item back.")
    url = f"/agent/articles/{article_id}/examples"
    anonymous = client.post(url, data={"phrasings": "Can I return it?", "csrf_token": token(client)})
    assert anonymous.status_code == 302 and "/agent/login" in anonymous.location and rows(app, article_id) == []

    make_agent(app, "sam@example.com", role="support")
    login(client, "sam@example.com")
    assert post_form(client, url, {"phrasings": "Can I return it?"}).status_code == 302
    assert rows(app, article_id) == [("Can I return it?", "editor")]
    with session_scope(app) as session:
        example_id = session.scalar(sa.select(ExampleQuestion.id))
    # A role without the editor's permission may neither add nor remove.
    monkeypatch.setitem(agents.PERMISSIONS, "edit_articles", ("editor", "admin"))
    assert post_form(client, url, {"phrasings": "Another way"}).status_code == 403
    assert post_form(client, f"{url}/{example_id}/remove", {}).status_code == 403
    assert rows(app, article_id) == [("Can I return it?", "editor")]
    assert post_form(client, "/agent/articles/999/examples", {"phrasings": "x y"}).status_code in (403, 404)


# The "Solved" source ------------------------------------------------------------------------------

def replied_record(app, matches: list[int]) -> int:
    """An email kb auto-replied to, suggesting ``matches`` (best first); its id."""
    with session_scope(app) as session:
        record = ledger.claim(session, dedupe_key="<q@x>", message_id="<q@x>", folder="INBOX", uidvalidity=1,
                              uid=1, from_addr="kari.nordmann@example.no", reply_to="kari.nordmann@example.no",
                              subject="Parcel", text="Hi, Kari here. Where is my parcel 20261234? Call +47 912 34 567.")
        ledger.record_decision(session, record, "reply", "confident",
                               [{"article_id": i, "slug": "", "title": "", "score": 0.9 - n / 10, "terms": []}
                                for n, i in enumerate(matches)], "en")
        ledger.begin_sending(session, record, "<r@kb>")
        ledger.finish_sent(session, record)
        return record.id


def click(client, record_id: int, action: str):
    """Open the reply's feedback link and confirm it, as the customer does."""
    url = links.make_feedback_urls("http://h", TEST_SECRET, record_id)[0 if action == "solved" else 1]
    path = "/mail/feedback/" + url.rsplit("/", 1)[1]
    return client.post(path, data={"csrf_token": csrf_token_from(client.get(path).text)})


def test_solved_teaches_the_top_article_the_question_once(app, client):
    top, second = publish(app, "Track a parcel", "Use the tracking link."), publish(app, "Lost parcels", "Tell us.")
    record_id = replied_record(app, [top, second])
    assert click(client, record_id, "solved").status_code == 200
    expected = rows(app, top)
    assert len(expected) == 1 and expected[0][1] == "solved" and rows(app, second) == []
    # Subject and question; the name (from kari.nordmann@) and numbers scrubbed (placeholders: kb.capture.scrub).
    assert re.fullmatch(r"Parcel Hi, \[name\] here\. Where is my parcel \[\w+\]\? Call \[phone\]\.", expected[0][0])
    with session_scope(app) as session:
        assert session.scalar(sa.select(ExampleQuestion.mail_record_id)) == record_id

    assert click(client, record_id, "solved").status_code == 200  # a second click adds nothing
    assert rows(app, top) == expected
    with session_scope(app) as session:  # an agent removes it: a later click does not bring it back
        examples.forget(session, session.scalar(sa.select(ExampleQuestion.id)))
    click(client, record_id, "solved")
    assert rows(app, top) == []


def test_still_need_help_after_solved_takes_the_example_back(app, client):
    top = publish(app, "Track a parcel", "Use the tracking link.")
    record_id = replied_record(app, [top])
    click(client, record_id, "solved")
    assert len(rows(app, top)) == 1
    click(client, record_id, "help")
    assert rows(app, top) == []


# Portal search -------------------------------------------------------------------------------------

QUESTION = "Can I get a refund for a sweater that is too tight?"
SEARCH = "refund sweater too tight"


def found(app, q: str) -> list[int]:
    """Ids of the articles the portal's search finds for ``q``."""
    with app.app_context():
        return [hit.article_id for hit in search.query_index(q).hits]


def test_a_learnt_example_is_found_on_the_portal_within_seconds_and_gone_after_forgetting(app_factory):
    app = app_factory(INDEXER=True, INDEXER_POLL_SECONDS=30)  # only the commit's wake-up makes it quick
    article_id = publish(app, "Returns and exchanges", "Send the item back within 30 days for your money.")
    publish(app, "Gift cards", "Gift cards never expire.")
    assert wait_until(lambda: found(app, "exchanges") == [article_id], 5)
    assert found(app, "sweater tight") == []
    with session_scope(app) as session:
        example_id = examples.learn(session, article_id, QUESTION, source="solved", lang="en").id
    assert wait_until(lambda: found(app, "sweater tight") == [article_id], 5)

    page = app.test_client().get("/en/search", query_string={"q": SEARCH}).text
    assert "Returns and exchanges" in page and "Gift cards" not in page
    # The snippet is the article's own text: another customer's question is never shown as the answer.
    with app.app_context():
        snippet = search.query_index(SEARCH).hits[0].snippet_html
    text = re.sub(r"</?mark>", "", snippet)  # synonyms may highlight "money back" in it
    assert text.startswith("Send the item back") and "sweater" not in text

    with session_scope(app) as session:
        examples.forget(session, example_id)
    assert wait_until(lambda: found(app, "sweater tight") == [], 5)
    assert found(app, "exchanges") == [article_id]


def test_examples_survive_a_rebuild_and_a_start_that_missed_them(app_factory):
    app = app_factory()
    article_id = publish(app, "Returns and exchanges", "Send the item back within 30 days.")
    with session_scope(app) as session:
        examples.learn(session, article_id, QUESTION, source="editor")
    search.process_outbox(app)
    assert found(app, "sweater tight") == [article_id]
    assert search.rebuild(app) == 1 and found(app, "sweater tight") == [article_id]

    # Learnt behind the index's back (its outbox row lost): the next start sees the index is stale.
    with session_scope(app) as session:
        examples.learn(session, article_id, "Do you take back worn sandals?", source="editor")
        session.execute(sa.delete(IndexChange))
    assert found(app, "sandals") == []
    assert found(app_factory(), "sandals") == [article_id]
