"""benchmarks/search.py and benchmarks/eval_search.py on tiny sizes, so their builders, timing and arguments cannot rot."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from benchmarks import eval_search
from benchmarks import search as bench
from kb.db import session_scope
from kb.models import Article, IndexChange, Revision


def test_backend_and_sizes_arguments():
    default = bench.parse_args([])
    assert (default.backends, default.sizes, default.queries) == (["whoosh"], [1000, 10000], 200)
    both = bench.parse_args(["--backend", "both", "--sizes", "1000,10000", "100000", "--queries", "50"])
    assert (both.backends, both.sizes, both.queries) == (["whoosh", "postgres"], [1000, 10000, 100000], 50)
    assert bench.parse_args(["--backend", "postgres", "--sizes", "1000,"]).backends == ["postgres"]
    for wrong in (["--backend", "elastic"], ["--sizes", "1k"], ["--sizes", "0"], ["--queries", "0"]):
        with pytest.raises(SystemExit):
            bench.parse_args(wrong)
    args = ["stackfaq", "test", "--backend", "elastic"]
    with pytest.raises(SystemExit):
        eval_search.main(args)


def test_a_tiny_whoosh_run_loads_in_bulk_indexes_everything_and_prints_every_row(app_factory, tmp_path, capsys):
    app = app_factory(SEARCH_CACHE_SIZE=0, STARTER_ARTICLES_DIR=str(tmp_path / "none"))
    articles = bench.build_articles(40)
    figures = bench.measure(app, 40, articles, 6)
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Article).where(
            Article.status == "published", Article.body_html.is_not(None), Article.index_error == "")) == 40
        assert session.scalar(sa.select(sa.func.count()).select_from(IndexChange)) == bench.PUBLISHES  # the edits; bulk loading queues none
    assert figures["backend"] == "whoosh" and figures["reindex"] > 0
    keys = [f"{state}{kind}{suffix}" for state in ("", "pub_") for kind in ("api", "raw")
            for suffix in ("", "_typo", "_sentence")]
    assert all(len(figures[key]) == 6 for key in [*keys, "cached"])
    # queries are words of an article's own title (or one of its sentences): most find it on page 1
    assert 3 <= figures["found"] <= 6 and 0 <= figures["found_typo"] <= 6 and 3 <= figures["pub_found_sentence"] <= 6
    with session_scope(app) as session:  # the publishes were saved as edits, one revision each
        assert session.scalar(sa.select(sa.func.count()).select_from(Revision)) == 40 + bench.PUBLISHES
    labels = [label for label, _ in bench.rows_of(figures)]
    assert labels[0] == "40 articles: full reindex (`kb reindex`)" and len(labels) == 15
    rows = bench.comparison(figures, {**figures, "reindex": figures["reindex"] * 2})
    assert rows[0][3] == "2.00x" and all(row[3] == "1.00x" for row in rows[1:])

    bench.main(["--sizes", "25", "--queries", "3"])
    out = capsys.readouterr().out
    assert "\nwhoosh\n" in out and "| 25, fresh index: /api/search p50 / p95, whole sentences |" in out
    assert "postgres / whoosh" not in out and "| 25 | SQLite FTS5 | whole sentences |" in out


def test_other_engines_answer_the_same_queries_on_the_same_articles():
    articles = bench.build_articles(40)
    texts = [a["title"] for a in articles[:5]]
    for engine in bench.engines.engines(articles, None):
        times, found = bench.engines.time_engine(engine, texts, list(range(5)))
        assert len(times) == 5 and found >= 4, engine.name  # its own title finds an article
        assert engine.search("the and of") == [] and engine.search('"AND" OR NOT (') == []


def test_eval_search_scores_top3_and_mrr_on_a_labelled_set(tmp_path, capsys):
    folder = tmp_path / "tiny"
    folder.mkdir()
    articles = [{"id": "refund", "title": "Getting a refund", "body": "Ask for your money back within 30 days."},
                {"id": "password", "title": "Resetting your password", "body": "Use the link on the sign-in page."},
                {"id": "shipping", "title": "Shipping times", "body": "Parcels arrive in three to five days."}]
    queries = [{"subject": "refund", "body": "can I get a refund", "answer_ids": ["refund"]},
               {"body": "I forgot my password", "answer_ids": ["password"]},
               {"body": "zebra xylophone", "answer_ids": ["shipping"]}]
    for name, rows in (("articles.jsonl", articles), ("queries-test.jsonl", queries)):
        (folder / name).write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    eval_search.main(["tiny", "test", "--eval-dir", str(tmp_path), "--backend", "whoosh"])
    out = capsys.readouterr().out
    assert "3 articles, 3 queries" in out and "backend whoosh" in out
    assert "P@1 0.667  top3 0.667  MRR@10 0.667  found 0.667" in out


def test_the_api_benchmark_keeps_its_site_and_prints_a_row_a_set_and_a_profile(tmp_path, capsys):
    from benchmarks import api_search

    data = tmp_path / "site"
    api_search.main(["--data", str(data), "--articles", "40", "--queries", "4", "--sets", "short,sentence"])
    out = capsys.readouterr().out
    assert "| 1-3 words |" in out and "| whole sentences |" in out and "with typos" not in out
    site = json.loads((data / "site.json").read_text())
    assert (site["n"], len(site["sets"]["short"][0]), len(site["sets"]["typo"][1])) == (40, 4, 4)
    api_search.main(["--data", str(data), "--articles", "40", "--queries", "4", "--profile", "typo", "--top", "5"])
    assert "function calls" in capsys.readouterr().out
    assert json.loads((data / "site.json").read_text()) == site  # reused, not built again
    from kb.search import service

    ranked = service._ranked
    api_search.main(["--data", str(data), "--articles", "40", "--queries", "4", "--phases", "short"])
    out = capsys.readouterr().out
    assert "1-3 words, first time (4 queries)" in out and "1-3 words, again (4 queries)" in out
    assert out.count("| whole request |") == 2 and out.count("| raw Whoosh, the same query objects (after) |") == 2
    for phase in ("planning", "Whoosh search and ranking", "snippets", "index (all above)"):
        assert f"| {phase} | 0.00 |" not in out  # each wrapped function is the one the request calls
    assert service._ranked is ranked  # the timers are taken off again
    with pytest.raises(SystemExit):
        api_search.main(["--data", str(data), "--articles", "50", "--queries", "4"])
    for wrong in (["--sets", "long"], ["--rounds", "0"], ["--profile", "all"], ["--phases", "all"]):
        with pytest.raises(SystemExit):
            api_search.parse_args(wrong)


def test_the_benchmarks_join_corpus_articles_into_longer_ones():
    from benchmarks.corpus import build_articles, joined_articles

    corpus, joined = build_articles(6), joined_articles(3, 2)
    assert [a["body"] for a in joined] == [f"{corpus[i]['body']}\n\n{corpus[i + 1]['body']}" for i in (0, 2, 4)]
    assert len({a["title"] for a in joined}) == 3 and joined[1]["category"] == corpus[2]["category"]
    assert joined_articles(4, 1) == build_articles(4)


def test_the_page_memory_benchmark_serves_every_page_within_its_budget(capfd):
    from benchmarks import page_memory

    page_memory.main(["--articles", "4", "--joins", "2", "--mb", "0.1"])
    out = capfd.readouterr().out
    assert out.startswith("4 article pages,") and "the page cache keeps" in out
    assert float(out.split("keeps ")[1].split(" pages, ")[1].split(" MB")[0]) <= 0.1


def test_the_reindex_benchmark_prepares_and_rebuilds_chinese_articles(tmp_path, monkeypatch, capsys):
    from benchmarks import reindex
    from benchmarks.corpus import chinese_articles

    articles = chinese_articles(3)
    assert all(a["lang"] == "zh" and 150 < len(a["body"]) and a["body"].endswith("。") for a in articles)
    assert chinese_articles(3) == articles and len({a["title"] for a in articles}) == 3  # the same every run
    monkeypatch.setattr(reindex, "CACHE", tmp_path)
    with pytest.raises(SystemExit, match="--prepare 30 --zh"):
        reindex.main(["30", "--zh"])
    reindex.main(["--prepare", "30", "--zh"])
    reindex.main(["30", "--zh", "--quiet"])
    assert "reindex of 30 articles:" in capsys.readouterr().out
    assert (tmp_path / "reindex-30-zh" / "kb.sqlite3").exists()


def test_the_startup_benchmark_times_starts_in_this_process_and_in_new_ones(capsys):
    from benchmarks import startup

    startup.main(["--sizes", "30", "--runs", "2"])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| 30 |")]
    cases = [row[1].split(" (imports")[0] for row in rows]
    assert cases == [f"{case}{suffix}" for case in ("fresh index", "stale index (1 article added behind the feed)",
                                                    "index folder missing")
                     for suffix in (", new process 1", ", new process 2", "")]
    for row in rows:
        assert float(row[2].rstrip(" s")) > 0
    for row in rows[2::3]:  # in this process, the index was fresh again (rebuilt for the last two)
        assert float(row[3].rstrip(" s |")) > 0
