"""Kept pages ask whether content changed at most every PAGE_CACHE_CHECK_SECONDS (kb.search.clock):
another process's change shows within that time and not later, this process's own change and index
commit show at once, and 0 asks on every page. Both search backends."""

from __future__ import annotations

import pytest

from kb import articles as kb_articles
from kb import search
from kb.db import session_scope
from kb.search import clock

# (database, search backend): Whoosh on SQLite, the PostgreSQL backend on PostgreSQL
SITES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


class FakeTime:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_time(monkeypatch) -> FakeTime:
    """kb.search.clock's idea of the time, moved by the test."""
    fake = FakeTime()
    monkeypatch.setattr(clock.time, "monotonic", fake)
    return fake


@pytest.fixture(params=SITES)
def two_processes(request, app_factory, tmp_path):
    """Two apps on one database, index and instance folder (two workers of a host), one article published."""
    if request.param == "postgres":
        settings = {"DATABASE_URL": request.getfixturevalue("pg_database_url"), "SEARCH_BACKEND": "postgres"}
    else:
        settings = {"DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}"}
    settings["PAGE_CACHE_CHECK_SECONDS"] = 5
    first = app_factory(**settings)
    with session_scope(first) as session:
        kb_articles.create_article(session, kb_articles.ArticleDraft(title="Refund a card payment", body_md="How."),
                                   status="published")
        session.commit()
    search.process_outbox(first)
    return first, app_factory(**settings)


def retitle(app, title: str) -> None:
    """Rename the one article through ``app`` (its process commits the change)."""
    with session_scope(app) as session:
        article = kb_articles.get_article(session, "refund-a-card-payment")
        kb_articles.update_article(session, article, kb_articles.ArticleDraft(
            title=title, body_md=article.body_md, category=article.category or ""))
        session.commit()


def page(app) -> str:
    """The article's public page as a new visitor gets it."""
    return app.test_client().get("/en/articles/refund-a-card-payment").get_data(as_text=True)


def test_another_processs_change_shows_within_the_check_seconds(two_processes, fake_time):
    app, other = two_processes
    assert "Refund a card payment" in page(app)  # kept, and the version read now
    retitle(other, "Refund a credit card payment")
    fake_time.now += 4.9
    assert "Refund a card payment" in page(app)  # still within the 5 seconds: the kept page
    fake_time.now += 0.2
    assert "Refund a credit card payment" in page(app)  # asked again: the change shows
    assert "Refund a credit card payment" in page(other)  # the process that made it: at once


def test_this_processs_own_change_shows_at_once(two_processes, fake_time):
    app, _other = two_processes
    assert "Refund a card payment" in page(app)
    retitle(app, "Refund a credit card payment")
    assert "Refund a credit card payment" in page(app)  # no time has passed: the commit made it ask


def test_a_rolled_back_change_does_not_make_it_ask(two_processes, fake_time, monkeypatch):
    app, _other = two_processes
    page(app)
    reads = []
    real = app.extensions[search.CLOCK].read
    monkeypatch.setattr(app.extensions[search.CLOCK], "read", lambda session: reads.append(1) or real(session))
    with session_scope(app) as session:
        article = kb_articles.get_article(session, "refund-a-card-payment")
        kb_articles.update_article(session, article, kb_articles.ArticleDraft(title="Never saved", body_md="How."))
        session.flush()
        session.rollback()
    assert "Refund a card payment" in page(app) and reads == []


def test_this_processs_index_commit_shows_at_once(app, fake_time, make_article):
    app.config["PAGE_CACHE_CHECK_SECONDS"] = 60
    make_article("Refund a card payment", body_md="How to get a refund.")
    search.process_outbox(app)
    assert "Refund a bank transfer" not in app.test_client().get("/en/search?q=refund").get_data(as_text=True)
    make_article("Refund a bank transfer", body_md="How to get a refund by transfer.")  # committed: asks again
    assert "Refund a bank transfer" not in app.test_client().get("/en/search?q=refund").get_data(as_text=True)
    search.process_outbox(app)  # only the index moves now, no database change of this process
    assert "Refund a bank transfer" in app.test_client().get("/en/search?q=refund").get_data(as_text=True)


def test_zero_asks_on_every_page(two_processes, fake_time):
    app, other = two_processes
    app.config["PAGE_CACHE_CHECK_SECONDS"] = 0
    assert "Refund a card payment" in page(app)
    retitle(other, "Refund a credit card payment")
    assert "Refund a credit card payment" in page(app)


def test_by_default_a_change_reaches_every_hosts_kept_pages_within_a_second():
    # A Whoosh host has a change within INDEXER_POLL_SECONDS (and its apply), then each worker's kept
    # pages within PAGE_CACHE_CHECK_SECONDS: the two add up, and the multihost promise is 1 s
    # (tests/test_multihost.py measures it; a check of 1 s on top of the poll once missed it).
    from kb.config import SETTINGS_BY_NAME

    poll, check = (float(SETTINGS_BY_NAME[name].default) for name in ("INDEXER_POLL_SECONDS", "PAGE_CACHE_CHECK_SECONDS"))
    assert poll + check <= 0.75  # a quarter of a second left for the apply and the request
