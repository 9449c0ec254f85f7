"""The page cache shared by one host's processes (kb.web.pagestore): a page one worker rendered is
served by the others with their visitors' own token and search id, a change anywhere empties it,
another release or configuration never shares it, and a broken file only costs the sharing."""

from __future__ import annotations

import logging
import secrets
import sqlite3

import pytest

from kb import articles as kb_articles
from kb import search
from kb.web import pagecache, pagestore
from tests.conftest import close_app, csrf_token_from
from tests.test_page_cache import logged, renders, search_ids, shop  # noqa: F401 - fixtures

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"}


@pytest.fixture
def other_process(monkeypatch):
    """Make the next requests run as another process would: with holes of its own."""
    def switch():
        monkeypatch.setattr(pagecache, "CSRF_HOLE", f"kb-csrf-{secrets.token_hex(12)}")
        monkeypatch.setattr(pagecache, "SEARCH_ID_HOLE", f"kb-search-{secrets.token_hex(12)}")
    return switch


def test_a_page_one_process_rendered_is_served_by_another(app, app_factory, shop, session, renders, other_process):
    worker = app_factory()  # same database, index and instance folder: a second gunicorn worker
    url = f"/en/articles/{shop[0].slug}"
    first = app.test_client().get("/en/search?q=refund").get_data(as_text=True)
    page1 = app.test_client().get(url).get_data(as_text=True)
    api1 = app.test_client().get("/api/search?q=refund").get_json()
    other_process()
    second = worker.test_client().get("/en/search?q=refund").get_data(as_text=True)
    visitor = worker.test_client()
    page2 = visitor.get(url).get_data(as_text=True)
    assert worker.test_client().get("/api/search?q=refund").get_json() == api1
    assert renders == {"search": 2, "article": 1}  # the page and the API answer each searched once
    (id1, _), (id2, _) = logged(session)
    assert second == first.replace(f"search={id1}", f"search={id2}") and search_ids(second) == {str(id2)}
    token1, token2 = csrf_token_from(page1), csrf_token_from(page2)
    assert token1 != token2 and page2 == page1.replace(token1, token2)
    for body in (second, page2):
        assert "kb-csrf-" not in body and "kb-search-" not in body
    vote = visitor.post(f"{url}/vote", data={"helpful": "yes", "csrf_token": token2}, headers=BROWSER)
    assert vote.status_code == 303  # the token filled in by the second process works for its visitor


def test_a_change_made_through_one_process_shows_in_the_others(app, app_factory, shop, renders):
    app.config["PAGE_CACHE_CHECK_SECONDS"] = 0  # ask at once (tests/test_content_clock.py: within the seconds)
    worker = app_factory()
    assert "Refund a card payment" in app.test_client().get("/en/search?q=refund").get_data(as_text=True)
    with worker.app_context():
        from kb.db import get_session
        session = get_session()
        article = session.merge(shop[0])
        kb_articles.update_article(session, article, kb_articles.ArticleDraft(
            title="Refund a credit card payment", body_md=article.body_md, category="Billing"))
        session.commit()
    for served_by in (worker, app):
        html = served_by.test_client().get("/en/search?q=refund").get_data(as_text=True)
        assert "Refund a credit card payment" in html
    assert renders["search"] == 2  # rendered once after the change, then shared


def test_processes_of_another_configuration_render_their_own(app, app_factory, shop, renders):
    narrow = app_factory(SEARCH_PAGE_SIZE=1)  # its pages list one result: it must not serve the others'
    assert app.test_client().get("/en/search?q=refund").get_data(as_text=True).count('class="result"') == 2
    html = narrow.test_client().get("/en/search?q=refund").get_data(as_text=True)
    assert renders["search"] == 2 and html.count('class="result"') == 1


def test_sharing_off_keeps_pages_per_process(app_factory, shop, renders):
    one, two = app_factory(PAGE_CACHE_SHARED=False), app_factory(PAGE_CACHE_SHARED=False)
    for served_by in (one, two, one):
        served_by.test_client().get("/en/search?q=refund")
    assert renders["search"] == 2


def test_an_unusable_file_costs_only_the_sharing(app_factory, tmp_path, caplog, renders):
    (tmp_path / "instance").mkdir(parents=True, exist_ok=True)
    (tmp_path / "instance" / pagestore.FILE_NAME).write_bytes(b"not a database " * 300)
    with caplog.at_level(logging.WARNING, logger="kb.web.pagestore"):
        app = app_factory()
    assert "Delete the file" in caplog.text and str(tmp_path / "instance" / pagestore.FILE_NAME) in caplog.text
    with app.app_context():
        from kb.db import get_session
        session = get_session()
        kb_articles.create_article(session, kb_articles.ArticleDraft(title="Refund", body_md="Refund."),
                                   status="published")
        session.commit()
    search.process_outbox(app)
    for _ in range(2):
        assert app.test_client().get("/en/search?q=refund").status_code == 200
    assert renders["search"] == 1  # still kept in this process's memory


def test_the_file_stays_near_its_size_and_drops_other_versions(tmp_path):
    store = pagestore.PageStore(tmp_path / "pages.sqlite3", 5, "stamp")
    for n in range(3):
        store.put("v1", ("/old", str(n)), {"body": "old"})
    last = 2 * pagestore.SWEEP_EVERY - 3  # the 101st put in all, which sweeps (as the 1st and 51st did)
    for n in range(last + 1):
        store.put("v2", ("/page", str(n)), {"body": n})
    rows = sqlite3.connect(tmp_path / "pages.sqlite3").execute("SELECT key FROM pages").fetchall()
    assert len(rows) == 5 and store.get("v1", ("/old", "0")) is None
    assert [store.get("v2", ("/page", str(n))) for n in range(last - 4, last + 1)] == [
        {"body": n} for n in range(last - 4, last + 1)]  # the newest five
    assert store.get("v3", ("/page", str(last))) is None  # another version: not this entry


def test_a_file_another_process_holds_for_writing_never_delays_a_page_long(tmp_path):
    store = pagestore.PageStore(tmp_path / "pages.sqlite3", 5, "stamp")
    store.put("v", ("/a", ""), {"body": "a"})
    holder = sqlite3.connect(tmp_path / "pages.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        store.put("v", ("/b", ""), {"body": "b"})  # given up after BUSY_SECONDS, not an error
        assert store.get("v", ("/a", "")) == {"body": "a"}  # readers never wait (WAL)
        assert not store.broken
    finally:
        holder.execute("ROLLBACK")
    store.put("v", ("/b", ""), {"body": "b"})
    assert store.get("v", ("/b", "")) == {"body": "b"}


def test_processes_on_different_synonyms_never_share_a_page(app, app_factory, make_article, renders):
    make_article("Refund a card payment", category="Billing", body_md="How to get a refund by card.")
    make_article("Travel reimbursement", category="Billing", body_md="Claim travel costs back.")
    search.process_outbox(app)
    worker = app_factory()
    assert app.test_client().get("/en/search?q=refund").status_code == 200  # app has read the sets: none
    with worker.app_context():
        from kb.capture import synonyms
        from kb.db import get_session
        synonyms.add_set(get_session(), "en", "refund, reimbursement")
        get_session().commit()
    # The worker reads the new sets on its first search; app goes on with its own for up to a second:
    # both processes are at their first epoch, with other sets, and the pages differ.
    html = worker.test_client().get("/en/search?q=refund").get_data(as_text=True)
    assert "Travel reimbursement" in html and renders["search"] == 2


def test_a_stored_value_that_is_not_a_kept_page_is_rendered_instead(app, shop, renders):
    app.test_client().get("/en/search?q=refund")
    app.test_client().get("/api/search?q=refund")
    db = sqlite3.connect(app.config["INSTANCE_DIR"] + "/" + pagestore.FILE_NAME, isolation_level=None)
    for n, value in enumerate(('{"body": 1, "facts": [], "holes": ["a", "b"]}', '[1, 2]', '{"body": "x"}')):
        db.execute("UPDATE pages SET value = ?", (value,))
        other = pagecache.VersionedCache(10)  # a process whose own memory has nothing yet
        app.extensions[pagecache.KEY] = other
        assert app.test_client().get("/en/search?q=refund").status_code == 200
        assert app.test_client().get("/api/search?q=refund").get_json()["total"] == 2
        assert renders["search"] == 2 * n + 4
    db.execute("UPDATE pages SET value = 'not json'")
    app.extensions[pagecache.KEY] = pagecache.VersionedCache(10)
    assert app.test_client().get("/en/search?q=refund").status_code == 200
    assert app.extensions[pagecache.SHARED_KEY].broken  # given up, with the warning the other test reads


def test_a_worker_started_later_serves_the_pages_kept_before_it(app, app_factory, shop, renders):
    page = app.test_client().get("/en/search?q=refund").get_data(as_text=True)
    api = app.test_client().get("/api/search?q=refund").get_json()
    later = app_factory()  # gunicorn starts a worker again (--max-requests, a crash) or the host restarts
    assert later.test_client().get("/api/search?q=refund").get_json() == api
    again = later.test_client().get("/en/search?q=refund").get_data(as_text=True)
    assert search_ids(again) and again.count('class="result"') == page.count('class="result"') == 2
    assert renders["search"] == 2  # each searched once, before the start: the start left them kept
    assert app.test_client().get("/api/search?q=refund").get_json() == api and renders["search"] == 2


def test_workers_that_saw_more_synonym_changes_share_pages_with_a_new_one(app, app_factory, shop, renders):
    app.config["PAGE_CACHE_CHECK_SECONDS"] = 0  # ask at once
    assert app.test_client().get("/en/search?q=refund").status_code == 200  # app reads the sets: none
    with app.app_context():
        from kb.capture import synonyms
        from kb.db import get_session
        synonyms.add_set(get_session(), "en", "refund, reimbursement")
        get_session().commit()
    search._service(app).synonyms.expire()
    app.test_client().get("/en/search?q=refund")  # app's second set of sets; a worker started now has its first
    later = app_factory()
    html = later.test_client().get("/en/search?q=refund").get_data(as_text=True)
    assert renders["search"] == 2 and search_ids(html)  # app's page after the change, not a render


def test_a_database_made_anew_never_meets_the_pages_kept_for_the_old_one(app_factory, tmp_path):
    def site(title: str, **where):
        """An app on a database made anew with one article: the feed's head has the same id each time."""
        (tmp_path / "kb.sqlite3").unlink(missing_ok=True)
        made = app_factory(**where)
        with made.app_context():
            from kb.db import get_session
            kb_articles.create_article(get_session(), kb_articles.ArticleDraft(title=title, body_md="How to."),
                                       status="published")
            get_session().commit()
        search.process_outbox(made)
        return made

    old = site("Refund a card payment")
    assert "Refund a card payment" in old.test_client().get("/en/search?q=refund").get_data(as_text=True)
    close_app(old)
    # The new database is made and filled elsewhere, then served with the old index, which kb finds
    # as far along the feed and as full as the database: its version is the old one's.
    close_app(site("Refund a bank transfer", INDEX_DIR=str(tmp_path / "elsewhere"), INSTANCE_DIR=str(tmp_path / "i2")))
    new = app_factory()
    assert search._service(new).version() == search._service(old).version()
    html = new.test_client().get("/en/search?q=refund").get_data(as_text=True)
    assert "Refund a bank transfer" in html and "Refund a card payment" not in html
