"""Synonyms agents edit: the data files, the sets' rules, search and the matcher applying them.

The admin page has its own file (test_synonyms_admin.py); the worker's end-to-end case is there
with the other real-server tests (test_synonyms_mail.py).
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from kb import search
from kb.autoreply import synonym_expansion
from kb.autoreply.decision import decide_parts
from kb.autoreply.matcher import MatchArticle, Matcher, ModelHolder
from kb.capture import synonyms
from kb.capture.models import SynonymSet
from kb.db import session_scope
from kb.errors import FieldError
from tests.conftest import close_app, make_config

SETTINGS = {"DEFAULT_LANGUAGE": "en"}


def found(q: str, **kw) -> list[str]:
    """The titles search finds for ``q`` (first page)."""
    from kb.db import get_session
    from kb.models import Article

    ids = [hit.article_id for hit in search.query_index(q, **kw).hits]
    return [get_session().get(Article, i).title for i in ids]


# --- the data files and the rules of a set ------------------------------------------------------------


def test_the_shipped_files_parse_with_stable_unique_keys_per_language():
    for lang in synonyms.DEFAULT_LANGS:
        sets = synonyms.read_defaults(lang)
        assert len(sets) >= 15, lang
        assert len({d.key for d in sets}) == len(sets) and all(d.key.startswith(f"{lang}:") for d in sets)
    refund = {d.key: d for d in synonyms.read_defaults("en")}["en:refund"]
    assert refund.kind == "equivalent" and "money back" in refund.terms
    parcel = {d.key: d for d in synonyms.read_defaults("en")}["en:parcel"]
    assert parcel.kind == "expansion" and parcel.terms[0] == "parcel"
    assert synonyms.read_defaults("xx") == [] and synonyms.read_defaults("../en") == []


def test_a_broken_data_file_names_its_line(tmp_path):
    (tmp_path / "en.txt").write_text("# notes\nok: a, b\nok: c, d\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"en.txt:3"):
        synonyms.read_defaults("en", tmp_path)


@pytest.mark.parametrize("line, message", [
    ("refund", "at least two"), ("a => b => c", "once"), ("a, b => c", "exactly one"), ("=> a, b", "exactly one"),
    ("refund, Refund", "only once"), ("a\x00b, c", "control"), ("x" * 81 + ", y", "under 80"),
    (", ".join(f"t{n}" for n in range(21)), "20 terms"), ("!!!, ???", "no letters"), ("", "at least two"),
])
def test_a_bad_line_is_refused_with_a_clear_message(line, message):
    with pytest.raises(FieldError) as refused:
        synonyms.parse_line(line)
    assert message in refused.value.errors["terms"]


def test_lines_parse_in_every_language():
    assert synonyms.parse_line(" refund ,  money   back,reimburse ") == ("equivalent", ["refund", "money back", "reimburse"])
    assert synonyms.parse_line("parcel => package, shipment") == ("expansion", ["parcel", "package", "shipment"])
    assert synonyms.parse_line("退款，退钱、返还货款") == ("equivalent", ["退款", "退钱", "返还货款"])
    assert synonyms.written("expansion", ["pakke", "sending"]) == "pakke => sending"


def test_defaults_load_idempotently_and_switched_off_stays_off_across_restarts(app_factory):
    app = app_factory()
    with session_scope(app) as session:
        assert synonyms.load_defaults(session) == len(synonyms.all_defaults())
        session.commit()
        assert synonyms.load_defaults(session) == 0
        refund = session.scalar(sa.select(SynonymSet).where(SynonymSet.default_key == "en:refund"))
        before = synonyms.version(session)
        synonyms.set_active(session, refund.id, False)
        session.commit()
        assert synonyms.version(session) != before
        assert ("en", ("refund", "money back")) not in [(s.lang, s.terms[:2]) for s in synonyms.active_sets(session)]
    close_app(app)
    again = app_factory()  # a restart on the same database: defaults load again, the choice is kept
    with session_scope(again) as session:
        assert synonyms.load_defaults(session) == 0
        row = session.scalar(sa.select(SynonymSet).where(SynonymSet.default_key == "en:refund"))
        assert row.active is False
        assert all("money back" not in s.terms for s in synonyms.active_sets(session) if s.lang == "en")
        with pytest.raises(FieldError):
            synonyms.remove_set(session, row.id)  # a default is switched off, never removed
        with pytest.raises(FieldError):
            synonyms.update_set(session, row.id, "refund, cashback")


def test_an_upgrade_that_changes_a_default_keeps_the_switch(app, session, monkeypatch, tmp_path):
    (tmp_path / "en.txt").write_text("refund: refund, money back\ngone: old, older\n", encoding="utf-8")
    monkeypatch.setattr(synonyms, "DATA", tmp_path)
    synonyms.load_defaults(session)
    refund = session.scalar(sa.select(SynonymSet).where(SynonymSet.default_key == "en:refund"))
    synonyms.set_active(session, refund.id, False)
    session.commit()
    (tmp_path / "en.txt").write_text("refund: refund, money back, cashback\n", encoding="utf-8")
    synonyms._file_cache.clear()
    assert synonyms.load_defaults(session) == 2  # terms updated, "gone" removed
    session.commit()
    session.refresh(refund)
    assert refund.terms == ["refund", "money back", "cashback"] and refund.active is False
    assert session.scalar(sa.select(SynonymSet).where(SynonymSet.default_key == "en:gone")) is None


def test_agents_sets_are_added_edited_switched_and_removed(session):
    row = synonyms.add_set(session, "en", "canoe, kayak")
    with pytest.raises(FieldError, match="already"):
        synonyms.add_set(session, "en", "Kayak, canoe")
    with pytest.raises(FieldError):
        synonyms.add_set(session, "../../etc", "a, b")
    assert synonyms.add_set(session, "no", "kano, kajakk").lang == "nb"
    synonyms.update_set(session, row.id, "canoe => kayak")
    assert (row.kind, row.terms) == ("expansion", ["canoe", "kayak"])
    session.commit()
    assert synonyms.Synonyms("en", "expansion", ("canoe", "kayak")) in synonyms.active_sets(session)
    synonyms.set_active(session, row.id, False)
    assert synonyms.Synonyms("en", "expansion", ("canoe", "kayak")) not in synonyms.active_sets(session)
    before = synonyms.version(session)
    synonyms.remove_set(session, row.id)
    assert synonyms.version(session) != before and session.get(SynonymSet, row.id) is None


# --- portal search ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def search_app(tmp_path_factory):
    """One app with articles in three languages, indexed; its sets change per test and are reset."""
    from kb.web import create_app
    from kb import articles as kb_articles

    app = create_app(make_config(tmp_path_factory.mktemp("synonym-search")))
    items = [("Borrowing a kayak", "Members borrow a kayak at the harbour for a day.", "en"),
             ("Your package is on its way", "Follow the shipment online.", "en"),
             ("Where is my parcel", "Parcels travel with the post.", "en"),
             ("Getting your money back", "Tell us and we pay you back within five days.", "en"),
             ("如何申请退款", "在订单页面点击退款按钮。", "zh"),
             ("Slik får du refusjon", "Vi betaler tilbake innen fem dager.", "nb")]
    with session_scope(app) as session:
        for title, body, lang in items:
            kb_articles.create_article(session, kb_articles.ArticleDraft(title, body, lang), status="published")
        session.commit()
    search.process_outbox(app)
    yield app
    close_app(app)


@pytest.fixture
def ctx(search_app):
    """A request context on the search app; its agent sets are removed afterwards and defaults switched back on."""
    with search_app.test_request_context():
        yield search_app
    with session_scope(search_app) as session:
        session.execute(sa.delete(SynonymSet).where(SynonymSet.source == "agent"))
        session.execute(sa.update(SynonymSet).values(active=True))
        session.commit()
    search_app.extensions["kb.search"].synonyms.expire()


def change(app, fn) -> None:
    """Change the sets in a session of their own, as the admin page does, and let search see it now."""
    with session_scope(app) as session:
        fn(session)
        session.commit()
    app.extensions["kb.search"].synonyms.expire()


def test_a_synonym_makes_a_paraphrase_findable_and_switching_it_off_takes_it_back(ctx):
    assert found("canoe") == []
    change(ctx, lambda s: synonyms.add_set(s, "en", "canoe, kayak"))
    assert found("can I borrow a canoe") == ["Borrowing a kayak"]
    assert found("refunds") == ["Getting your money back"]  # a default: "money back" as a phrase
    change(ctx, lambda s: [synonyms.load_defaults(s), synonyms.set_active(s, s.scalar(
        sa.select(SynonymSet.id).where(SynonymSet.default_key == "en:refund")), False)])
    assert found("refunds") == []


def test_a_one_way_expansion_is_one_way(ctx):
    titles = found("parcel")
    assert titles[0] == "Where is my parcel" and "Your package is on its way" in titles
    assert found("package") == ["Your package is on its way"]
    assert found("shipment") == ["Your package is on its way"]  # no way back to "parcel"


def test_chinese_and_norwegian_synonyms_in_search(ctx):
    assert found("我想退钱") == ["如何申请退款"]
    assert found("pengene tilbake") == ["Slik får du refusjon"]
    assert found("tilbakebetaling", lang="nb") == ["Slik får du refusjon"]


def test_a_new_set_is_searched_within_seconds_with_the_indexer_thread_on(app_factory):
    app = app_factory(INDEXER=True, INDEXER_POLL_SECONDS=0.2)
    from kb import articles as kb_articles

    with session_scope(app) as session:
        kb_articles.create_article(session, kb_articles.ArticleDraft("Borrowing a kayak", "At the harbour.", "en"),
                                   status="published")
        session.commit()
    with app.test_request_context():
        assert wait_for(lambda: found("kayak"), 10) and found("canoe") == []
        with session_scope(app) as session:  # the admin page's commit: nothing tells search directly
            synonyms.add_set(session, "en", "canoe, kayak")
            session.commit()
        assert wait_for(lambda: found("canoe"), 5) == ["Borrowing a kayak"]


def wait_for(fn, seconds: float):
    """Poll ``fn`` until it returns something truthy (the issue's bound: within seconds)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.05)
    return fn()


# --- the matcher ------------------------------------------------------------------------------------


ARTICLES = [MatchArticle("kayak", "Borrowing a kayak", "Members borrow a kayak at the harbour for a day.", "en"),
            MatchArticle("address", "Change your address", "Edit the delivery address in your settings.", "en"),
            MatchArticle("refund", "How refunds work", "We refund within five days to your card.", "en"),
            MatchArticle("zh", "如何申请退款", "在订单页面点击退款按钮，五天内到账。", "zh"),
            MatchArticle("nb", "Slik får du refusjon", "Vi betaler tilbake innen fem dager etter returen.", "nb")]


@pytest.fixture(scope="module")
def matcher():
    """The matcher over ARTICLES, without synonyms."""
    return Matcher.from_articles(ARTICLES)


def sets(*lines: tuple[str, str]) -> synonym_expansion.Expansion:
    """Compiled sets from (lang, line) pairs."""
    parsed = []
    for lang, line in lines:
        kind, terms = synonyms.parse_line(line)
        parsed.append(synonyms.Synonyms(lang, kind, tuple(terms)))
    return synonym_expansion.Expansion.from_sets(parsed, "test")


def test_a_synonym_makes_an_email_matchable(matcher):
    before = decide_parts("Canoe", "Can I rent a canoe on Saturday?", matcher, SETTINGS)
    assert not before.reply
    expanded = matcher.with_synonyms(sets(("en", "canoe, kayak"), ("en", "rent => borrow")))
    after = decide_parts("Canoe", "Can I rent a canoe on Saturday?", expanded, SETTINGS)
    assert after.reply and after.matches[0].article_id == "kayak"
    assert expanded.fingerprint != matcher.fingerprint and expanded.fitted == matcher.fitted


def test_a_one_way_expansion_is_one_way_in_the_matcher(matcher):
    one_way = matcher.with_synonyms(sets(("en", "canoe => kayak")))
    assert one_way.match("canoe")[0].article_id == "kayak"
    assert one_way.synonyms.added_terms("kayak", "en") == []
    assert one_way.match("kayak") == matcher.match("kayak")


def test_expansion_never_lowers_a_score(matcher):
    expanded = matcher.with_synonyms(synonym_expansion.defaults())
    for text in ("How do I change my delivery address?", "I want my money back for the order", "kayak"):
        plain = {m.article_id: m.score for m in matcher.match(text, top=5)}
        for m in expanded.match(text, top=5):
            assert m.score >= plain.get(m.article_id, 0.0), (text, m)


def test_chinese_and_norwegian_emails_match_through_the_defaults(matcher):
    defaults = matcher.with_synonyms(synonym_expansion.defaults())
    zh, nb = "我想退钱，可以吗？", "Hvordan får jeg pengene tilbake?"
    for text, article in ((zh, "zh"), (nb, "nb")):
        plain = {m.article_id: m.score for m in matcher.match(text, top=5)}
        best = defaults.match(text)[0]
        assert best.article_id == article and best.score > plain.get(article, 0.0), (text, plain)
    # Stop words count: "received" alone is not "not received", "logged in" is "log in".
    assert synonym_expansion.defaults().added_terms("I received it", "en") == []
    assert "login" in synonym_expansion.defaults().added_terms("I logged in twice", "en")


def test_the_holder_takes_new_sets_without_a_refit_and_keeps_them_across_refits(app, session):
    holder = ModelHolder()
    holder.refresh(ARTICLES)
    fitted = holder.matcher
    seen = synonym_expansion.refresh(holder, session, None)
    assert holder.matcher.fitted == fitted.fitted and holder.matcher.synonyms  # the defaults, no refit
    assert synonym_expansion.refresh(holder, session, seen) == seen
    synonyms.add_set(session, "en", "canoe, kayak")
    session.commit()
    assert synonym_expansion.refresh(holder, session, seen) != seen
    assert holder.matcher.match("canoe")[0].article_id == "kayak"
    assert holder.refresh(ARTICLES[:-1]) and holder.matcher.match("canoe")[0].article_id == "kayak"


def test_two_processes_loading_the_defaults_at_once_keep_one_row_per_default(app_factory, shared_db_url):
    from tests.concurrency import at_once

    app = app_factory(DATABASE_URL=shared_db_url)
    results = at_once(app, [synonyms.load_defaults, synonyms.load_defaults])
    with session_scope(app) as session:
        rows = session.scalar(sa.select(sa.func.count()).select_from(SynonymSet))
    assert sum(results) == rows == len(synonyms.all_defaults())
