"""Full rebuilds in worker processes and in several segments index exactly what one process does."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from kb import search
from kb.articles import ArticleDraft, create_article
from kb.db import session_scope
from kb.models import Article
from kb.search import build

TITLES = ["Reset your password", "Passwords and two-factor sign-in", "Refund a paid invoice",
          "Invoices for your company", "Change the billing email", "Export invoices as PDF",
          "Delete your account", "Account locked after failed sign-ins", "Billing cycles explained",
          "Refunds take five days", "Tilbakebetaling av faktura", "如何申请退款"]
LANGS = {"Tilbakebetaling av faktura": "nb", "如何申请退款": "zh"}
QUERIES = ["password", "refund invoice", "billing", "account sign-in", "faktura", "退款", "passwrd reset",
           "how do I get my money back for an invoice"]


def publish_all(app) -> None:
    """The articles of TITLES, published; several share words so the scores differ and tie."""
    with session_scope(app) as session:
        for n, title in enumerate(TITLES):
            body = f"{title}. Step {n}: open Settings, then Billing or Account. Invoice refund password help."
            create_article(session, ArticleDraft(title, body, lang=LANGS.get(title, "en"), tags=[f"t{n % 3}"]),
                           status="published")


def snapshot(app) -> tuple[list, list]:
    """The stored documents in index order, and every query's hits with their scores."""
    service = app.extensions["kb.search"]
    with service.store.searcher() as (_gen, searcher):
        stored = list(searcher.all_stored_fields())
    with app.app_context():
        hits = [[(h.article_id, round(h.score, 9), h.snippet_html) for h in search.query_index(q).hits] for q in QUERIES]
    return stored, hits


def segment_count(app) -> int:
    """How many segments the current generation has."""
    store = app.extensions["kb.search"].store
    return len(store.index(store.current())._segments())


@pytest.fixture
def kb_app(app_factory):
    """A Whoosh app with the articles published and indexed in this process (the reference)."""
    app = app_factory()
    publish_all(app)
    assert search.rebuild(app) == len(TITLES)
    assert segment_count(app) == 1
    return app


def text_of_published(app) -> int:
    """Characters of the published articles' titles and cached text, counted in Python."""
    with session_scope(app) as session:
        published = session.scalars(sa.select(Article).where(Article.status == "published"))
        return sum(len(article.title) + len(article.body_text) for article in published)


@pytest.mark.parametrize("limits, segments", [
    ({"ONE_SEGMENT_TEXT": 0}, 1),  # 0 is replaced by the articles' own size: the boundary holds one segment
    ({"ONE_SEGMENT_UP_TO": 0}, 3),
    ({"ONE_SEGMENT_TEXT": -1}, 3),  # one character fewer than the articles have: their postings would not fit
], ids=["one segment", "past the article count: a segment per worker", "past the text size: a segment per worker"])
def test_a_rebuild_in_worker_processes_matches_one_in_process(kb_app, monkeypatch, limits, segments):
    before = snapshot(kb_app)
    monkeypatch.setattr(build, "CHUNK", 2)  # three parts of two-article chunks, sent round robin
    monkeypatch.setattr(build, "worker_count", lambda articles: 3)
    for name, value in limits.items():
        monkeypatch.setattr(build, name, value + text_of_published(kb_app) if name == "ONE_SEGMENT_TEXT" else value)
    assert search.rebuild(kb_app) == len(TITLES)
    assert segment_count(kb_app) == segments
    assert snapshot(kb_app) == before


def test_the_text_size_counts_published_titles_and_text_only(kb_app):
    with session_scope(kb_app) as session:
        create_article(session, ArticleDraft("A draft", "Not yet public. " * 100), status="draft")
        assert build.text_size(session) == text_of_published(kb_app) > 0


def test_a_full_buffer_starts_another_segment_and_changes_no_result(kb_app, monkeypatch):
    before = snapshot(kb_app)
    monkeypatch.setattr(build, "CHUNK", 5)
    monkeypatch.setattr(build, "LIMIT_MB", 0.001)  # every chunk fills it
    assert search.rebuild(kb_app) == len(TITLES)
    assert segment_count(kb_app) == 3
    assert snapshot(kb_app) == before


def test_a_worker_that_fails_says_why(kb_app):
    store = kb_app.extensions["kb.search"].store
    workers = build._Workers(str(store.folder(store.create_generation())), 1)
    try:
        workers.send(0, [{"no_such_field": "x"}])
        with pytest.raises(RuntimeError, match="(?s)worker 0 failed.*UnknownFieldError"):
            workers.finish(lambda done: None)
    finally:
        workers.kill()
