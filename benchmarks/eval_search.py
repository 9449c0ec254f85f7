"""Measure the portal's search on a labelled set: the articles become a knowledge base, the queries searches.

    .venv/bin/python benchmarks/eval_search.py stackfaq dev       # tune on this
    .venv/bin/python benchmarks/eval_search.py stackfaq test      # report this
    .venv/bin/python benchmarks/eval_search.py stackfaq test --synonyms none   # kb's default synonyms off
    .venv/bin/python benchmarks/eval_search.py stackfaq dev --show 20   # queries whose answer ranked worst
    .venv/bin/python benchmarks/eval_search.py aiabde-pt all --lang pt  # Portuguese, never tuned on
    .venv/bin/python benchmarks/eval_search.py stackfaq test --examples dev   # dev queries as example questions
    .venv/bin/python benchmarks/eval_search.py stackfaq dev --examples dev    # halves: tune the examples' weight on this
    .venv/bin/python benchmarks/eval_search.py stackfaq test --backend postgres   # PostgreSQL full-text search

The set is read in place from shared/eval/<name>/ (articles.jsonl, queries-<split>.jsonl with
"answer_ids"); nothing is copied. Each article is published in a throwaway kb and every query goes
through the same search the portal runs (``kb.search.query_index``, first page of 10, result cache
off). ``--backend whoosh`` (the default) keeps SQLite and a Whoosh index in a temporary folder;
``--backend postgres`` starts a throwaway PostgreSQL cluster and searches with SEARCH_BACKEND
postgres. Publishing, indexing (``kb.search.process_outbox``) and scoring are the same code for both.
Prints:

- P@1: share of queries whose first result is a right article;
- top3: share of queries with a right article among the first three results;
- MRR@10: mean reciprocal rank of the first right article on the first page (0 if not there);
- found: share of queries whose right article is among all the results (what a cut tail can lose);
- results: mean number of results (the "N results" a customer sees); empty: share with none.

With ``--examples SPLIT`` that split's queries are first kept as example questions (source
"import") of the articles they name, as if customers had asked them before. When SPLIT is the split
scored, its queries are halved by a fixed seed: examples from one half, scored on the other, and
the reverse (both printed), so no query is ever its own example.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from kb import search  # noqa: E402
from kb.capture.models import SynonymSet  # noqa: E402
from kb.capture.synonyms import load_defaults  # noqa: E402
from kb.articles import ArticleDraft, create_article  # noqa: E402
from kb.capture import examples as kb_examples  # noqa: E402
from kb.capture.models import ExampleQuestion  # noqa: E402
from kb.db import session_scope  # noqa: E402

import backends  # noqa: E402

PER_PAGE = 10


def eval_dir() -> Path:
    """The shared evaluation folder: the nearest shared/eval above this file."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "eval").is_dir():
            return parent / "shared" / "eval"
    raise SystemExit("no shared/eval folder above this checkout: pass --eval-dir")


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a JSON Lines file."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def build_kb(folder: Path, articles: list[dict], synonyms: str = "default", backend: str = "whoosh",
             database_url: str | None = None):
    """A throwaway app with every article published and indexed; (app, {article id: set's id}).

    ``synonyms`` "default" keeps kb's shipped default sets on, as a fresh kb has them; "none"
    switches every one off. ``database_url`` defaults to SQLite in ``folder``.
    """
    app = backends.create_search_app(backend, {
        "TESTING": True, "SECRET_KEY": "eval-" + "x" * 40, "INSTANCE_DIR": str(folder / "instance"),
        "DATABASE_URL": database_url or f"sqlite:///{folder / 'kb.sqlite3'}", "INDEX_DIR": str(folder / "index"),
        "INDEXER": False, "JOBS_RUNNER": False, "SEARCH_CACHE_SIZE": 0})
    ids: dict[int, str] = {}
    with session_scope(app) as session:
        for item in articles:
            # kb refuses titles over 300 characters; a few sets have longer ones.
            title = " ".join(item["title"].split())[:300]
            article = create_article(session, ArticleDraft(title, item["body"], item.get("lang", "en")),
                                     status="published")
            session.flush()
            ids[article.id] = item["id"]
        if synonyms == "none":
            load_defaults(session)
            for row in session.scalars(sa.select(SynonymSet)):
                row.active = False
    search.process_outbox(app)
    return app, ids


def load_examples(app, ids: dict[int, str], queries: list[dict], lang: str) -> int:
    """Keep each query as an example question of the articles it names; the examples kept."""
    kb_id = {set_id: article_id for article_id, set_id in ids.items()}
    kept = 0
    with session_scope(app) as session:
        for item in queries:
            for set_id in item["answer_ids"]:
                if set_id in kb_id:
                    kb_examples.learn(session, kb_id[set_id], query_text(item)[:1000], source="import", lang=lang)
                    kept += 1
    search.process_outbox(app)
    return kept


def clear_examples(app) -> None:
    """Forget every example question (between the two halves)."""
    with session_scope(app) as session:
        for example_id in list(session.scalars(sa.select(ExampleQuestion.id))):
            kb_examples.forget(session, example_id)
    search.process_outbox(app)


def halves(queries: list[dict], seed: int = 9) -> tuple[list[dict], list[dict]]:
    """The queries split in two by a fixed seed."""
    order = list(range(len(queries)))
    random.Random(seed).shuffle(order)
    cut = len(order) // 2
    return [queries[i] for i in sorted(order[:cut])], [queries[i] for i in sorted(order[cut:])]


def query_text(item: dict) -> str:
    """What the customer typed: the subject and the body of a labelled query."""
    return " ".join(part for part in (item.get("subject", ""), item["body"]) if part)


def evaluate(app, ids: dict[int, str], queries: list[dict]) -> tuple[dict, list[tuple]]:
    """The figures over all queries, and (rank or None, total, query) per query."""
    rows = []
    with app.app_context():
        for item in queries:
            page = search.query_index(query_text(item), per_page=PER_PAGE)
            first = search.query_index(query_text(item), per_page=max(page.total, 1)) if page.total > PER_PAGE else page
            ranked = [ids[hit.article_id] for hit in first.hits]
            answers = set(item["answer_ids"])
            rank = next((k for k, found in enumerate(ranked) if found in answers), None)
            rows.append((rank, page.total, query_text(item)))
    n = len(rows) or 1
    figures = {
        "queries": len(rows),
        "P@1": sum(rank == 0 for rank, _t, _q in rows) / n,
        "top3": sum(rank is not None and rank < 3 for rank, _t, _q in rows) / n,
        "MRR@10": sum(1 / (rank + 1) for rank, _t, _q in rows if rank is not None and rank < PER_PAGE) / n,
        "found": sum(rank is not None for rank, _t, _q in rows) / n,
        "results": statistics.fmean(total for _r, total, _q in rows) if rows else 0.0,
        "median results": statistics.median(total for _r, total, _q in rows) if rows else 0.0,
        "empty": sum(total == 0 for _r, total, _q in rows) / n,
    }
    return figures, rows


def main(argv: list[str] | None = None) -> None:
    """Build the throwaway kb, run every query of the split and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", nargs="?", default="stackfaq")
    parser.add_argument("split", nargs="?", default="dev",
                        help="dev (tune on it) or test (report it); 'all' for a set with one queries.jsonl")
    parser.add_argument("--lang", default="en", help="language code of the set's articles (e.g. pt)")
    parser.add_argument("--eval-dir", type=Path, help="folder holding the datasets (default: the nearest shared/eval)")
    parser.add_argument("--synonyms", choices=("default", "none"), default="default",
                        help="kb's default synonym sets on (as in a fresh kb) or all off")
    parser.add_argument("--show", type=int, default=0, help="also list this many queries whose answer ranked worst")
    parser.add_argument("--examples", metavar="SPLIT", help="first keep this split's queries as example questions")
    parser.add_argument("--backend", choices=("whoosh", "postgres"), default="whoosh",
                        help="the search backend (postgres: on a throwaway PostgreSQL cluster)")
    args = parser.parse_args(argv)
    backends.check_backend(args.backend)  # before anything starts: a missing backend says so at once
    folder = (args.eval_dir or eval_dir()) / args.dataset
    articles = read_jsonl(folder / "articles.jsonl")
    queries = read_jsonl(folder / ("queries.jsonl" if args.split == "all" else f"queries-{args.split}.jsonl"))
    articles = [{"lang": args.lang, **item} for item in articles]
    with tempfile.TemporaryDirectory(prefix="kb-eval-search-") as tmp, ExitStack() as stack:
        started = time.perf_counter()
        url = None
        if args.backend == "postgres":
            cluster = backends.start_cluster()
            stack.callback(backends.stop, cluster)
            url = stack.enter_context(backends.database(cluster))
        app, ids = build_kb(Path(tmp), articles, args.synonyms, args.backend, url)
        try:
            runs = plan_runs(args, folder, queries)
            for label, taught, scored in runs:
                if taught:
                    clear_examples(app)
                    print(f"{label}: {load_examples(app, ids, taught, args.lang)} example questions")
                figures, rows = evaluate(app, ids, scored)
                print(f"{folder.name} {args.split}{label}: {len(articles)} articles, {figures.pop('queries')} queries, "
                      f"synonyms {args.synonyms}, backend {args.backend}, {time.perf_counter() - started:.1f} s")
                print("  ".join(f"{key} {value:.3f}" for key, value in figures.items()))
        finally:
            backends.close_app(app)
    worst = sorted(rows, key=lambda row: (-(row[0] if row[0] is not None else 10**6), row[2]))
    for rank, total, text in worst[:args.show]:
        print(f"  rank {'-' if rank is None else rank + 1:>3} of {total:>3}: {text}")


def plan_runs(args, folder: Path, queries: list[dict]) -> list[tuple[str, list[dict], list[dict]]]:
    """(label, queries kept as examples, queries scored) of each run the arguments ask for."""
    if not args.examples:
        return [("", [], queries)]
    if args.examples == args.split:
        first, second = halves(queries)
        return [(" (examples: half A, scored: half B)", first, second),
                (" (examples: half B, scored: half A)", second, first)]
    taught = read_jsonl(folder / ("queries.jsonl" if args.examples == "all" else f"queries-{args.examples}.jsonl"))
    return [(f" (examples: {args.examples})", taught, queries)]


if __name__ == "__main__":
    main()
