"""/agent/gaps: emails without a good match, grouped by topic the same way every time, scrubbed,
filtered by period, for support and admins only, and "Write an article for these" makes one draft."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from kb.articles import set_status
from kb.autoreply import ledger
from kb.autoreply.models import MailRecord
from kb.capture import examples, gaps
from kb.capture.models import ExampleQuestion
from kb.errors import ValidationError
from kb.models import Article, utcnow
from tests.agent_helpers import ADMIN, EDITOR, login, make_agent, token
from tests.test_followup_hostile import VALUES, query, send

SUPPORT = "sam@example.com"
LOW = "low-score: best score 0.050 is under the threshold 0.200"
# (subject, text, days ago): three topics, one lone question, one email 40 days old.
EMAILS = [
    ("Damaged parcel", "My parcel arrived damaged, can I get a refund?", 1),
    ("", "The parcel was broken when it came. Refund please", 2),
    ("Refund", "Refund for a damaged parcel? Kari Nordmann, kari.nordmann@example.no, +47 912 34 567", 3),
    ("", "Parcel damaged in delivery: how do I get a refund for order 20261234?", 4),
    ("Gift card", "What is the balance on my gift card?", 1),
    ("", "How do I check my gift card balance?", 5),
    ("Balance", "gift card balance left?", 6),
    ("", "I want to change the delivery address of my order", 2),
    ("Address", "Can I change the delivery address after ordering?", 3),
    ("", "Do you ship to Svalbard with penguins?", 4),
    ("Old", "How do I reset the warranty timer on my kettle?", 40),
]


def add_email(session, n: int, subject: str, text: str, days: float, *, outcome="person", reason=LOW):
    """An email received ``days`` ago that kb recorded ``outcome`` for."""
    address = "kari.nordmann@example.no" if "Kari" in text else f"c{n}@example.org"
    rec = ledger.claim(session, dedupe_key=f"<{n}-{subject}-{days}@x>", message_id=f"<{n}@x>", folder="INBOX",
                       uidvalidity=1, uid=n, from_addr=address, reply_to=address, subject=subject, text=text)
    ledger.record_decision(session, rec, outcome, reason, [], "en")
    rec.created_at = utcnow() - timedelta(days=days)
    session.commit()
    return rec


def seed(session, order=EMAILS):
    """The gap emails, plus emails that are no gap: replied to, and handed over for a reason other than the match."""
    for n, (subject, text, days) in enumerate(order):
        add_email(session, n, subject, text, days)
    add_email(session, 90, "", "Where is my parcel refund?", 1, outcome="reply", reason="confident: best score 0.6")
    add_email(session, 91, "", "Damaged parcel refund", 1, reason="sender-cap: x already got 1 auto-reply(s)")


def shape(report):
    """What a reader sees of a report: each group's key, size, terms and example questions, in order."""
    return [(g.key, g.size, g.terms, g.examples) for g in report.gaps]


def last(days):
    """The [start, end) of the last ``days`` days."""
    return gaps.period({}, str(days), "", "", utcnow())[:2]


def test_groups_are_the_same_for_the_same_data_in_any_order(session):
    seed(session)
    first = gaps.find_gaps(session, *last(30))
    assert shape(first) == shape(gaps.find_gaps(session, *last(30)))
    sizes = [g.size for g in first.gaps]
    assert sizes == [4, 3, 2, 1] and first.emails == 10 and not first.capped
    assert {"parcel", "refund"} <= set(first.gaps[0].terms) and "gift" in first.gaps[1].terms
    session.execute(sa.delete(MailRecord))
    session.commit()
    seed(session, list(reversed(EMAILS)))  # other ids, other storage order
    assert shape(gaps.find_gaps(session, *last(30))) == shape(first)


def test_the_period_filters_which_emails_are_grouped(session):
    seed(session)
    assert gaps.find_gaps(session, *last(7)).emails == 10
    assert gaps.find_gaps(session, *last(30)).emails == 10
    assert gaps.find_gaps(session, *last(90)).emails == 11
    today = utcnow().date()
    start, end, days = gaps.period({}, "7", (today - timedelta(days=3)).isoformat(), today.isoformat(), utcnow())
    assert days is None and gaps.find_gaps(session, start, end).emails == 6  # 0 to 3 days ago
    with pytest.raises(ValidationError):
        gaps.period({}, "", "2026-02-30", "", utcnow())
    assert gaps.period({}, "12", "", "", utcnow())[2] == 30  # an unknown number of days: the default


def test_the_bound_groups_the_newest_emails_only(session):
    seed(session)
    report = gaps.find_gaps(session, *last(90), limit=4)
    assert report.capped and report.emails == 4
    assert "kettle" not in str(shape(report))


@pytest.fixture
def support(app, client):
    """A support agent, logged in."""
    make_agent(app, SUPPORT, role="support")
    login(client, SUPPORT)
    return client


def test_the_page_shows_groups_scrubbed_with_the_nearest_article(support, session, make_article):
    make_article("Refund for a damaged parcel", body_md="Send us a photo of the damaged parcel for a refund.")
    seed(session)
    page = support.get("/agent/gaps")
    assert page.status_code == 200
    text = page.text
    for private in ("kari.nordmann@example.no", "912 34 567", "20261234", "Kari", "Nordmann", "c1@example.org"):
        assert private not in text
    assert "[email]" in text and "[phone]" in text
    assert text.count('class="gap"') == 4 and "4 emails" in text and "Svalbard" in text and "kettle" not in text
    first = text.split('class="gap"')[1]
    assert "Refund for a damaged parcel</a>" in first and re.search(r'class="score">0\.\d\d', first)
    assert "kettle" in support.get("/agent/gaps?days=90").text
    bad = support.get("/agent/gaps?from=2026-13-01")
    assert bad.status_code == 422 and "Showing the last 30 days" in bad.text and "Svalbard" in bad.text


def test_write_an_article_makes_one_draft_with_the_questions_as_examples(app, support, session):
    seed(session)
    key = gaps.find_gaps(session, *last(30)).gaps[0].key
    csrf = token(support, "/agent/gaps")
    first = support.post(f"/agent/gaps/{key}/draft", data={"csrf_token": csrf, "days": "30"})
    assert first.status_code == 302
    article_id = int(re.search(r"/agent/articles/(\d+)/edit$", first.location).group(1))
    again = support.post(f"/agent/gaps/{key}/draft", data={"csrf_token": csrf, "days": "30"})
    assert again.location == first.location  # pressed twice: the same draft
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count()).select_from(Article)) == 1
    article = session.get(Article, article_id)
    assert article.status == "draft" and article.slug == f"gap-{key}" and "refund" in article.title.lower()
    assert "kari" not in article.body_md.lower() and "## Answer" in article.body_md
    kept = examples.for_article(session, article_id)
    assert len(kept) == 4 and {e.source for e in kept} == {"gap"} and all(e.mail_record_id for e in kept)
    assert not any("@" in e.text for e in kept)
    assert examples.all_examples(session) == []  # a draft's examples count once it is published
    set_status(session, article, "published")
    session.commit()
    assert len(examples.all_examples(session)) == 4
    page = support.get("/agent/gaps").text
    assert page.count('class="gap"') == 3 and "4 more are already example questions" in page


def test_editors_and_visitors_cannot_see_or_write_gaps(app, client, session):
    seed(session)
    key = gaps.find_gaps(session, *last(30)).gaps[0].key
    assert client.get("/agent/gaps").location.startswith("/agent/login")
    make_agent(app, EDITOR, role="editor")
    login(client, EDITOR)
    assert client.get("/agent/gaps").status_code == 403
    assert 'href="/agent/gaps"' not in client.get("/agent/").text
    csrf = token(client, "/agent/")
    assert client.post(f"/agent/gaps/{key}/draft", data={"csrf_token": csrf}).status_code == 403
    assert session.scalar(sa.select(sa.func.count()).select_from(ExampleQuestion)) == 0
    make_agent(app, ADMIN, role="admin")
    client.post("/agent/logout", data={"csrf_token": csrf})
    login(client, ADMIN)
    assert client.get("/agent/gaps").status_code == 200 and 'href="/agent/gaps"' in client.get("/agent/").text


def test_any_text_in_the_period_or_key_gets_an_answer(support):
    csrf = token(support, "/agent/gaps")
    for name in ("days", "from", "to"):
        for value in VALUES:
            response = support.get(f"/agent/gaps?{query({name: value})}")
            assert response.status_code < 500, (name, repr(value[:80]), response.status_code)
            response = send(support, "/agent/gaps/0123456789abcdef/draft", {name: value}, csrf)
            assert response.status_code < 500, (name, repr(value[:80]), response.status_code)
    for value in ("x", "0" * 17, "../gaps", "%00", "０１２３４５６７８９ａｂｃｄｅｆ"):
        response = send(support, f"/agent/gaps/{value}/draft", {}, csrf)
        assert response.status_code in (400, 404, 405), (value, response.status_code)
