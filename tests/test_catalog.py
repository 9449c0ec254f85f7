"""The home page's queries: categories with counts, most viewed, most helpful, sitemap entries."""

from __future__ import annotations

import sqlalchemy as sa

from kb import catalog, feedback
from kb.i18n import language_name
from kb.models import Article


def test_categories_count_published_articles_per_language(session, make_article):
    make_article("A", category="Account")
    make_article("B", category="Account")
    make_article("C", category="Account", lang="zh")
    make_article("D", category="Shipping", lang="nb")
    make_article("E", category="Account", status="draft")
    make_article("F", category="Orders", status="archived")
    make_article("G", category="")
    assert catalog.categories(session) == [("Account", "account", 3), ("Shipping", "shipping", 1)]
    assert catalog.categories(session, "zh") == [("Account", "account", 1)]
    assert catalog.categories(session, "en") == [("Account", "account", 2)]


def test_category_slugs_round_trip(session, make_article):
    make_article(category="Returns & Refunds")
    make_article(category="退款 问题", lang="zh")
    slugs = {c.name: c.slug for c in catalog.categories(session)}
    assert slugs == {"Returns & Refunds": "returns-refunds", "退款 问题": "退款-问题"}
    for name, slug in slugs.items():
        assert catalog.category_by_slug(session, slug) == name
    assert catalog.category_by_slug(session, "nope") is None


def test_record_view_and_most_viewed(session, make_article):
    read_often, read_once, never = make_article("Often"), make_article("Once"), make_article("Never")
    zh = make_article("中文", lang="zh")
    for article in (read_often, read_often, read_often, read_once, zh):
        catalog.record_view(session, article)
    session.commit()
    assert session.scalar(sa.select(Article.views).where(Article.id == read_often.id)) == 3
    assert [a.title for a in catalog.most_viewed(session)] == ["Often", "Once", "中文"]
    assert [a.title for a in catalog.most_viewed(session, "en", limit=1)] == ["Often"]
    assert never not in catalog.most_viewed(session)


def test_most_helpful_orders_by_yes_votes_and_skips_unpublished(session, make_article):
    best, mixed, unloved = make_article("Best"), make_article("Mixed"), make_article("Unloved")
    hidden = make_article("Hidden", status="draft")
    for visitor in "abc":
        feedback.record_vote(session, best, visitor, True)
        feedback.record_vote(session, hidden, visitor, True)
    feedback.record_vote(session, mixed, "a", True)
    feedback.record_vote(session, mixed, "b", False)
    feedback.record_vote(session, unloved, "a", False)
    session.commit()
    assert [a.title for a in catalog.most_helpful(session)] == ["Best", "Mixed"]
    assert catalog.most_helpful(session, "zh") == []


def test_sitemap_entries_cover_public_pages_only(session, make_article):
    make_article("Public", category="Account", slug="public")
    make_article("Draft", category="Secret", status="draft", slug="draft")
    entries = catalog.sitemap_entries(session)
    assert [(e.kind, e.slug, e.lang) for e in entries] == [("home", "", None), ("category", "account", "en"),
                                                          ("article", "public", "en")]
    assert all(e.lastmod is not None for e in entries)


def test_language_names_are_native():
    assert [language_name(c) for c in ("en", "zh", "nb", "de", "xx")] == ["English", "中文", "Norsk bokmål", "Deutsch", "xx"]


def _query_plans(session, call) -> list[str]:
    """SQLite's plan of each statement ``call`` runs (kb's own SQL, caught as it is sent)."""
    sent = []
    engine = session.get_bind()

    def catch(_conn, _cursor, statement, parameters, _context, _many):
        sent.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", catch)
    try:
        call()
    finally:
        sa.event.remove(engine, "before_cursor_execute", catch)
    connection = session.connection()
    return [" / ".join(row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + s, p)) for s, p in sent]


def test_the_portal_lists_read_an_index_not_every_article(session, make_article):
    for k in range(30):
        make_article(f"Article {k}", category=f"Topic {k % 4}", lang="en" if k % 3 else "nb")
    session.commit()
    for call in (lambda: catalog.most_viewed(session, "en"), lambda: catalog.recently_updated(session, "en"),
                 lambda: catalog.most_helpful(session, "en"), lambda: catalog.topics(session, "en")):
        plans = _query_plans(session, call)
        assert plans and all("SCAN articles" not in p for p in plans), plans
    recent, = _query_plans(session, lambda: catalog.recently_updated(session, "en"))
    assert "TEMP B-TREE" not in recent, recent  # read in index order: no sort of the language's articles
    topics, = _query_plans(session, lambda: catalog.topics(session, "en"))
    assert "COVERING INDEX" in topics, topics  # the counts never read the wide rows
