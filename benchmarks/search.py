"""Search benchmark: full reindex time, /api/search and raw Whoosh latency at 1,000 and 10,000 articles.

Run:  .venv/bin/python benchmarks/search.py            (both sizes, 200 queries each)
      .venv/bin/python benchmarks/search.py --sizes 1000 --queries 100

Articles are real English prose (docstrings of the installed Python code, see corpus.py), built
without network. Each size gets its own temporary SQLite database and index. Latencies are per
query, in process (Flask test client for the API, the same query objects on a bare Whoosh
searcher for "raw"), with the result cache off unless the row says otherwise.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from corpus import build_articles, sample_queries  # noqa: E402
from kb import search  # noqa: E402
from kb.articles import ArticleDraft, create_article  # noqa: E402
from kb.db import session_scope  # noqa: E402
from kb.models import IndexChange  # noqa: E402
from kb.search.analysis import GROUPS, group_for  # noqa: E402
from kb.search.querying import build  # noqa: E402
from kb.web import create_app  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``, in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def with_typos(queries: list[str], seed: int = 7) -> list[str]:
    """The same queries with one letter dropped from each word of five letters or more."""
    rng = random.Random(seed)
    out = []
    for q in queries:
        words = []
        for w in q.split():
            if len(w) >= 5:
                i = rng.randrange(1, len(w) - 1)
                w = w[:i] + w[i + 1:]
            words.append(w)
        out.append(" ".join(words))
    return out


def load(app, articles: list[dict]) -> None:
    """Insert the articles as published through the domain code, then drop the index queue."""
    with session_scope(app) as session:
        for i, a in enumerate(articles):
            draft = ArticleDraft(title=a["title"], body_md=a["body"], lang="en", category=a["category"])
            create_article(session, draft, status="published")
            if i % 500 == 499:
                session.commit()
        session.execute(sa.delete(IndexChange))


def time_api(client, queries: list[str]) -> list[float]:
    """Seconds per GET /api/search for each query."""
    times = []
    for q in queries:
        start = time.perf_counter()
        response = client.get(f"/api/search?q={quote(q)}&limit=10")
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.data
    return times


def time_raw(app, queries: list[str]) -> list[float]:
    """Seconds per bare Whoosh search of the same query objects kb builds (top 10, no snippets)."""
    service = app.extensions["kb.search"]
    times = []
    with service.store.searcher() as (_gen, searcher):
        plans = [build(searcher.reader(), q, list(GROUPS), group_for("en")) for q in queries]
        for plan in plans:
            start = time.perf_counter()
            if plan.query is not None:
                list(searcher.search(plan.query, limit=10))
            times.append(time.perf_counter() - start)
    return times


def run_size(n: int, n_queries: int) -> list[tuple[str, str]]:
    """Benchmark one corpus size; returns table rows (label, figures)."""
    articles = build_articles(n)
    queries = sample_queries(articles, n_queries)
    typos = with_typos(queries)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SECRET_KEY": "benchmark-secret-key-0123456789-abcdefghij", "INSTANCE_DIR": tmp,
                          "DATABASE_URL": f"sqlite:///{tmp}/kb.sqlite3", "INDEX_DIR": f"{tmp}/index",
                          "INDEXER": False, "SEARCH_CACHE_SIZE": 0, "STARTER_ARTICLES_DIR": f"{tmp}/none"})
        load(app, articles)
        start = time.perf_counter()
        search.rebuild(app)
        took = time.perf_counter() - start
        rows.append((f"{n:,} articles: full reindex (`kb reindex`)", f"{took:.1f} s ({n / took:,.0f} articles/s)"))
        client = app.test_client()
        time_api(client, queries[:20])  # warm up: jieba, searcher, caches of the OS
        api, raw = time_api(client, queries), time_raw(app, queries)
        api_typo, raw_typo = time_api(client, typos), time_raw(app, typos)
        rows.append((f"{n:,}: /api/search p50 / p95", f"{percentile(api, 50):.1f} / {percentile(api, 95):.1f} ms"))
        rows.append((f"{n:,}: raw Whoosh p50 / p95 (same queries)", f"{percentile(raw, 50):.1f} / {percentile(raw, 95):.1f} ms"))
        rows.append((f"{n:,}: /api/search with typos p50 / p95", f"{percentile(api_typo, 50):.1f} / {percentile(api_typo, 95):.1f} ms"))
        rows.append((f"{n:,}: raw Whoosh with typos p50 / p95", f"{percentile(raw_typo, 50):.1f} / {percentile(raw_typo, 95):.1f} ms"))
        rows.append((f"{n:,}: ratio API / raw (median)", f"{statistics.median(api) / max(statistics.median(raw), 1e-9):.1f}x"))
        app.extensions["kb.search"].cache.size = 512
        time_api(client, queries)
        cached = time_api(client, queries)
        rows.append((f"{n:,}: /api/search repeated queries (cache on) p50 / p95", f"{percentile(cached, 50):.1f} / {percentile(cached, 95):.1f} ms"))
        app.extensions["kb.search"].close()
    return rows


def main() -> None:
    """Parse arguments, run each size and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        print(f"... {n:,} articles", file=sys.stderr, flush=True)
        rows += run_size(n, args.queries)
    print(f"| measure ({args.queries} queries of 1-3 words) | result |\n|---|---|")
    for label, figure in rows:
        print(f"| {label} | {figure} |")


if __name__ == "__main__":
    main()
