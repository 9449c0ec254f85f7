"""The matcher learns from example questions: the channel, its refit, its explanations, `kb match --examples`."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from kb.autoreply import ledger
from kb.autoreply.decision import DEFAULT_RELATIVE_CUT, decide_parts, shown_count
from kb.autoreply.match_command import MatchInputError, load_examples, run_match
from kb.autoreply.matcher import Match, MatchArticle, Matcher, ModelHolder
from kb.autoreply.worker import Worker
from kb.capture import examples
from kb.cli import cli
from kb.db import session_scope
from kb.models import Article
from tests.agent_helpers import login, make_agent
from tests.conftest import SHARED
from tests.test_autoreply_worker import (FAST, articles_db, mail_app, make_email, records,  # noqa: F401
                                         running, wait_until)

ARTICLES = [
    MatchArticle("reset", "Reset your password", "Forgot your password? Use the link on the sign-in page."),
    MatchArticle("warranty", "Warranty and repairs", "Our products carry a two-year warranty. We repair "
                 "faulty goods for free, or replace them when a repair is not possible."),
    MatchArticle("refund", "When will I get my refund", "Refunds reach your card within five working days."),
    MatchArticle("delivery", "Delivery times", "Orders arrive in two to four working days."),
    MatchArticle("app", "The mobile app", "Download the app for iPhone and Android to shop on the go."),
]
QUESTION = ("Zip stuck", "The zip on my new backpack got stuck after two weeks, what can I do?")
EXAMPLE = "The zip of my backpack got stuck after a few weeks, what now?"


def with_example(article_id: str, *texts: str) -> list[MatchArticle]:
    """ARTICLES with example questions on one of them."""
    return [replace(a, examples=texts) if a.id == article_id else a for a in ARTICLES]


@pytest.fixture(scope="module")
def plain() -> Matcher:
    """The small corpus without examples."""
    return Matcher.from_articles(ARTICLES)


def test_without_examples_nothing_changes_and_unrelated_examples_touch_only_their_article(plain):
    taught = Matcher.from_articles(with_example("app", "Is there an app for my phone?"))
    for subject, body in (QUESTION, ("Password", "I forgot my password"), ("", "refund to my card?")):
        before = plain.match(body, subject, top=5)
        after = {m.article_id: m for m in taught.match(body, subject, top=5)}
        assert all(m.example == "" for m in before)
        # Every other article keeps its exact score and terms; the example's article can only rise.
        assert [(m.article_id, m.score, m.terms) for m in before if m.article_id != "app"] == [
            (m.article_id, m.score, m.terms) for m in (after[b.article_id] for b in before) if m.article_id != "app"]
        assert all(after[m.article_id].score >= m.score for m in before)
    assert plain.fingerprint != taught.fingerprint


def test_an_example_pulls_its_article_up_and_explains_it(plain):
    before = decide_parts(*QUESTION, plain, {})
    assert not before.reply and before.matches[0].article_id != "warranty"
    after = decide_parts(*QUESTION, Matcher.from_articles(with_example("warranty", EXAMPLE)), {})
    assert after.reply and after.matches[0].article_id == "warranty"
    assert after.matches[0].example == EXAMPLE and 0.5 < after.matches[0].example_score <= 1
    assert after.matches[0].score > max(m.score for m in before.matches if m.article_id == "warranty")
    assert all(m.example == "" for m in after.matches[1:])


def test_the_model_is_refitted_when_examples_change():
    holder = ModelHolder()
    assert holder.refresh(ARTICLES)
    assert not holder.refresh(ARTICLES)
    assert holder.refresh(with_example("warranty", EXAMPLE))
    assert holder.matcher.match(*reversed(QUESTION))[0].example == EXAMPLE
    assert holder.refresh(ARTICLES) and holder.matcher.match(*reversed(QUESTION))[0].example == ""


def test_the_worker_refits_on_a_new_or_forgotten_example(app, session, make_article):
    article = make_article("Warranty and repairs", body_md="Our products carry a two-year warranty.")
    worker = Worker(app, **FAST)
    assert worker.refresh_model(session) and not worker.refresh_model(session)
    row = examples.learn(session, article.id, EXAMPLE, source="editor")
    session.commit()
    assert worker.refresh_model(session)
    assert worker.holder.matcher.match(*reversed(QUESTION))[0].example == EXAMPLE
    examples.forget(session, row.id)
    session.commit()
    assert worker.refresh_model(session)
    assert worker.holder.matcher.match(*reversed(QUESTION))[0].example == ""


def test_the_explanation_is_stored_and_shown_on_agent_mail(app, client, session, make_article):
    article = make_article("Warranty and repairs")
    record = ledger.claim(session, dedupe_key="<1@x>", message_id="<1@x>", folder="INBOX", uidvalidity=1, uid=1,
                          from_addr="c@example.org", reply_to="c@example.org", subject="Zip", text="Zip broke")
    match = Match(str(article.id), 0.31, ["zip"], example="My <b>zip</b> broke", example_score=0.7708)
    ledger.record_decision(session, record, "reply", "confident: best score 0.310", [match], "en")
    assert record.matches[0]["example"] == "My <b>zip</b> broke" and record.matches[0]["example_score"] == 0.7708
    make_agent(app, "sam@example.com", role="support")
    make_agent(app, "edith@example.com", role="editor")
    login(client, "sam@example.com")
    page = client.get("/agent/mail").text
    assert "like the example “My &lt;b&gt;zip&lt;/b&gt; broke” (0.77)" in page
    editor = app.test_client()  # editors never see the customer's words, nor an example's
    login(editor, "edith@example.com")
    page = editor.get("/agent/mail").text
    assert "like an example question (0.77)" in page and "zip</b>" not in page and "My &lt;b&gt;" not in page


def write_lines(path, *lines) -> str:
    """A JSON Lines file of these lines (strings are written as they are)."""
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return str(path)


def test_examples_file_lines_become_examples_and_bad_lines_are_named(tmp_path):
    write_lines(tmp_path / "good.jsonl", {"id": 1, "subject": "Zip", "body": "broke, mail a@b.no",
                                          "answer_ids": ["warranty", "refund"]},
                "", {"id": 2, "body": "broke again", "answer_ids": ["warranty"]})
    assert load_examples(tmp_path / "good.jsonl", {"warranty", "refund"}) == {
        "warranty": ["Zip broke, mail [email]", "broke again"], "refund": ["Zip broke, mail [email]"]}
    for bad, message in (({"id": 3, "body": "x"}, '"answer_ids" must be a non-empty list'),
                         ({"id": 3, "body": "x", "answer_ids": ["nope"]}, "no article with the id 'nope'"),
                         ({"id": 3, "body": " ", "answer_ids": ["refund"]}, "the question is empty"),
                         ({"id": 3, "body": 5, "answer_ids": ["refund"]}, "must be strings"),
                         ("{not json", "not valid JSON")):
        path = tmp_path / "bad.jsonl"
        write_lines(path, {"id": 1, "body": "fine", "answer_ids": ["refund"]}, "", bad)
        with pytest.raises(MatchInputError, match=f"bad.jsonl:3: .*{message}"):
            load_examples(path, {"warranty", "refund"})


def test_kb_match_with_examples_shows_the_example_and_reports_bad_lines(tmp_path, runner):
    articles = write_lines(tmp_path / "articles.jsonl", *({"id": a.id, "title": a.title, "body": a.body}
                                                          for a in ARTICLES))
    queries = write_lines(tmp_path / "queries.jsonl", {"id": "q", "subject": QUESTION[0], "body": QUESTION[1]})
    learnt = write_lines(tmp_path / "examples.jsonl", {"id": "e", "body": EXAMPLE, "answer_ids": ["warranty"]})
    plain = runner.invoke(cli, ["match", "--articles", articles, "--queries", queries])
    taught = runner.invoke(cli, ["match", "--articles", articles, "--queries", queries, "--examples", learnt])
    assert plain.exit_code == taught.exit_code == 0, taught.output
    assert json.loads(plain.output)["reply"] is False
    line = json.loads(taught.output)
    assert line["reply"] is True and line["results"][0]["id"] == "warranty"
    assert line["results"][0]["example"] == EXAMPLE and line["results"][0]["example_score"] > 0.5
    broken = write_lines(tmp_path / "broken.jsonl", {"id": "e", "body": EXAMPLE, "answer_ids": ["warranty"]},
                         {"id": "f", "body": EXAMPLE})
    failed = runner.invoke(cli, ["match", "--articles", articles, "--queries", queries, "--examples", broken])
    assert failed.exit_code == 1 and "broken.jsonl:2:" in failed.output and "Traceback" not in failed.output


def test_a_running_worker_answers_from_a_new_example_within_seconds_and_forgets_it(
        mail_app, pymap_server, smtp_sink, running):
    worker = running(wake_seconds=20)  # a long wake-up: the new email itself must bring the refit
    wait_until(lambda: worker.waiting, what="the worker to enter IDLE")

    def ask(n: int) -> str:
        pymap_server.append(make_email(*QUESTION, sender=f"asker{n}@customer.example"))
        done = wait_until(lambda: [r for r in records(mail_app) if r.state in ("person", "replied")][n:],
                          timeout=10, what=f"email {n} decided")
        return done[0].state

    assert ask(0) == "person"
    with session_scope(mail_app) as session:
        article = session.scalar(sa.select(Article).where(Article.slug == "warranty-and-repairs"))
        row = examples.learn(session, article.id, EXAMPLE, source="answered")
        session.commit()
        example_id = row.id
    assert ask(1) == "replied"
    [reply] = smtp_sink.wait_for(1, timeout=5)
    assert b"warranty-and-repairs" in reply.data
    decided = records(mail_app)[1]
    assert decided.matches[0]["slug"] == "warranty-and-repairs" and decided.matches[0]["example"] == EXAMPLE
    with session_scope(mail_app) as session:
        examples.forget(session, example_id)
        session.commit()
    assert ask(2) == "person"


# KB_TEST_EVAL_DIR: where the shared sets are when this checkout is not beside them (a worktree).
STACKFAQ = Path(os.environ.get("KB_TEST_EVAL_DIR") or SHARED / "eval") / "stackfaq"


@pytest.mark.skipif(not STACKFAQ.exists(), reason="the shared evaluation sets are not on this machine")
def test_stackfaq_test_split_with_the_dev_queries_as_examples():
    """The issue's targets: MRR >= 0.93, replies to >= 85 % at >= 95 % precision (what a reply shows)."""
    queries = STACKFAQ / "queries-test.jsonl"
    labels = {q["id"]: set(q["answer_ids"]) for q in map(json.loads, queries.read_text().splitlines())}
    lines: list[str] = []
    run_match(STACKFAQ / "articles.jsonl", queries, lines.append, top=125, settings={},
              examples_path=STACKFAQ / "queries-dev.jsonl")
    ranks = [next((k for k, r in enumerate(line["results"]) if r["id"] in labels[line["id"]]), None)
             for line in map(json.loads, lines)]
    replies = [(json.loads(line), rank) for line, rank in zip(lines, ranks) if json.loads(line)["reply"]]
    shown = [shown_count([r["score"] for r in line["results"][:3]], DEFAULT_RELATIVE_CUT) for line, _ in replies]
    mrr = sum(0 if rank is None else 1 / (rank + 1) for rank in ranks) / len(lines)
    coverage = len(replies) / len(lines)
    precision = sum(rank is not None and rank < n for (_, rank), n in zip(replies, shown)) / len(replies)
    assert len(lines) == 641
    assert mrr >= 0.93 and coverage >= 0.85 and precision >= 0.95, (mrr, coverage, precision)
