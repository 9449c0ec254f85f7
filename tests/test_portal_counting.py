"""Views and votes: a script cannot inflate "most viewed" and "most helpful", people still count.

A person's browser loads the article page and then its view counter image, sending back the
session cookie the page set; ``read_article`` does exactly that.
"""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from kb import visitors
from kb.articles import ArticleDraft, create_article
from kb.db import session_scope
from kb.models import Article, PortalCount, Vote
from tests.conftest import csrf_token_from

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
OFFICE = "192.0.2.10"


def person(app, address: str = OFFICE, agent: str = BROWSER):
    """A fresh browser (its own cookies) at ``address``."""
    client = app.test_client()
    client.environ_base.update(REMOTE_ADDR=address, HTTP_USER_AGENT=agent)
    return client


def read_article(client, slug: str = "tents", **headers) -> str:
    """Open the article as a browser does: the page, then its counter image (with the cookie)."""
    html = client.get(f"/en/articles/{slug}", headers=headers).text
    assert f'src="/articles/{slug}/seen"' in html
    response = client.get(f"/articles/{slug}/seen", headers=headers)
    assert response.status_code == 200 and response.mimetype == "image/gif"
    return html


def vote(client, slug: str = "tents", helpful: str = "yes"):
    """Open the article and answer "Was this helpful?"."""
    token = csrf_token_from(client.get(f"/en/articles/{slug}").text)
    return client.post(f"/en/articles/{slug}/vote", data={"helpful": helpful, "csrf_token": token},
                       follow_redirects=True)


def views(app, slug: str = "tents") -> int:
    """The article's stored view count."""
    with session_scope(app) as session:
        return session.scalar(sa.select(Article.views).where(Article.slug == slug))


def vote_count(app) -> int:
    """How many votes are stored."""
    with session_scope(app) as session:
        return session.scalar(sa.select(sa.func.count(Vote.id)))


@pytest.fixture
def article(make_article):
    """The published article the tests read and vote on."""
    return make_article("Pitching a tent in wind", slug="tents")


def test_a_hundred_fresh_sessions_from_one_client_count_a_bounded_number_of_times(app, article):
    for _ in range(100):
        read_article(person(app))
    assert views(app) == 3  # PORTAL_COUNTS_PER_CLIENT: three people behind one office address
    for _ in range(100):
        vote(person(app))
    assert vote_count(app) == 3


def test_a_real_second_client_still_counts(app, article):
    for _ in range(20):
        read_article(person(app))
        vote(person(app))
    read_article(person(app, "198.51.100.7"))
    assert views(app) == 4
    page = vote(person(app, "198.51.100.7"))
    assert "Thanks for your feedback!" in page.text and vote_count(app) == 4


def test_the_client_over_its_limit_is_told_so(app_factory, make_article):
    app = app_factory(PORTAL_COUNTS_PER_CLIENT=1)
    make_article("Pitching a tent in wind", slug="tents")
    assert "Thanks for your feedback!" in vote(person(app)).text
    assert "We already counted the answers from your network" in vote(person(app)).text
    assert vote_count(app) == 1


def test_one_person_reloading_counts_once(app, article):
    reader = person(app)
    for _ in range(10):
        read_article(reader)
    assert views(app) == 1


def test_the_page_alone_and_cookieless_requests_never_count(app, article):
    for _ in range(5):
        assert person(app).get("/en/articles/tents").status_code == 200  # link previews, mail scanners
        assert person(app).get("/articles/tents/seen").status_code == 200  # no cookie support
    assert views(app) == 0


@pytest.mark.parametrize("agent", ["Googlebot/2.1 (+http://www.google.com/bot.html)", "curl/8.5.0",
                                   "python-requests/2.32.3", "Mozilla/5.0 (compatible; bingbot/2.0)",
                                   "facebookexternalhit/1.1", "Slackbot-LinkExpanding 1.0", ""])
def test_bots_and_http_libraries_never_count(app, article, agent):
    for _ in range(3):
        read_article(person(app, agent=agent))
    assert views(app) == 0
    client = person(app, agent=agent)
    token = csrf_token_from(client.get("/en/articles/tents").text)
    response = client.post("/en/articles/tents/vote", data={"helpful": "yes", "csrf_token": token})
    assert response.status_code == 403 and "Automated requests cannot vote" in response.text
    assert vote_count(app) == 0


@pytest.mark.parametrize("headers", [{"Sec-Purpose": "prefetch;prerender"}, {"Purpose": "prefetch"},
                                     {"X-Moz": "prefetch"}, {"X-Purpose": "preview"}])
def test_prefetches_never_count(app, article, headers):
    read_article(person(app), **headers)
    assert views(app) == 0


def test_head_requests_never_count(app, article):
    reader = person(app)
    reader.get("/en/articles/tents")
    assert reader.head("/articles/tents/seen").status_code == 200
    assert views(app) == 0


def test_ipv6_clients_count_per_64_network(app_factory, make_article):
    app = app_factory(PORTAL_COUNTS_PER_CLIENT=1)
    make_article("Pitching a tent in wind", slug="tents")
    read_article(person(app, "2001:db8:1:2::1"))
    read_article(person(app, "2001:db8:1:2:ffff::9"))  # same subscriber, another address
    assert views(app) == 1
    read_article(person(app, "2001:db8:1:3::1"))
    assert views(app) == 2


def test_no_address_is_stored(app, article):
    read_article(person(app, "203.0.113.77"))
    vote(person(app, "203.0.113.77"))
    with session_scope(app) as session:
        stored = [str(value) for row in session.execute(sa.select(PortalCount.kind, PortalCount.client))
                  for value in row]
        stored += [str(value) for value in session.execute(sa.select(Vote.visitor, Vote.comment)).one()]
    assert stored and not any("203.0.113" in value for value in stored)


def test_limits_hold_across_workers_on_one_database(app_factory, shared_db_url, tmp_path):
    first = app_factory(DATABASE_URL=shared_db_url)
    second = app_factory(DATABASE_URL=shared_db_url, INDEX_DIR=str(tmp_path / "index-2"))
    with session_scope(first) as session:
        create_article(session, ArticleDraft(title="Pitching a tent in wind", body_md="Stake it.", slug="tents"),
                       status="published")
    for n in range(10):
        read_article(person(first if n % 2 else second))
        vote(person(second if n % 2 else first))
    assert views(first) == 3 and vote_count(first) == 3


def test_client_keys_rotate_daily_and_old_days_are_deleted(session, article):
    monday, tuesday = date(2026, 11, 30), date(2026, 12, 1)
    key = visitors.client_key("secret", OFFICE, monday)
    assert key != visitors.client_key("secret", OFFICE, tuesday) and OFFICE not in key
    assert visitors.claim(session, "view", article.id, key, 1, monday)
    assert not visitors.claim(session, "view", article.id, key, 1, monday)
    assert visitors.claim(session, "view", article.id, visitors.client_key("secret", OFFICE, tuesday), 1, tuesday)
    assert session.scalars(sa.select(PortalCount.day)).all() == [tuesday]


@pytest.mark.parametrize("address, network", [("192.0.2.1", "192.0.2.1"), ("::ffff:192.0.2.1", "192.0.2.1"),
                                              ("2001:db8::1", "2001:db8::/64"), ("nonsense", "unknown"),
                                              (None, "unknown")])
def test_client_network(address, network):
    assert visitors.client_network(address) == network
