"""Search benchmark: full reindex time and /api/search latency per backend at 1,000 and 10,000 articles.

Run:  .venv/bin/python benchmarks/search.py            (Whoosh, both sizes, 200 queries each)
      .venv/bin/python benchmarks/search.py --sizes 1000 --queries 100
      .venv/bin/python benchmarks/search.py --backend both --sizes 1000,10000,100000

Articles are real English prose (docstrings of the installed Python code, see corpus.py), built
without network. Each backend and size gets its own empty database (SQLite in a temporary folder
for ``whoosh``; a fresh database on a throwaway PostgreSQL cluster for ``postgres``), filled in bulk
as published articles, then indexed with ``kb.search.rebuild`` (the reindex figure). Latencies are
per query, in process (Flask test client for the API; for Whoosh also the same query objects on a
bare searcher, "raw", reading only the top 10), with the result cache off unless the row says
otherwise. Three query sets: 1-3 words from titles, the same with typos, and whole-sentence
questions built from the articles' sentences (corpus.py). Each is timed on the fresh index and again
after PUBLISHES edits saved one by one (a Whoosh index then has several segments). "found" counts
the queries whose source article (the one the query was drawn from) is on the first page. In the
same run SQLite FTS5 and tantivy (optional: ``pip install -e '.[bench]'``) answer the same queries
on the same articles (engines.py), with kb's ratio to each.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import backends  # noqa: E402
import engines  # noqa: E402
from bulk import load  # noqa: E402
from corpus import build_articles, sample_sentences, sample_targets  # noqa: E402
from kb import search  # noqa: E402

BACKEND_CHOICES = ("whoosh", "postgres", "both")
PUBLISHES = 20
SET_LABELS = {"short": "1-3 words", "typo": "1-3 words with typos", "sentence": "whole sentences"}


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


def time_api(client, queries: list[str], wanted: list[str] | None = None) -> tuple[list[float], int]:
    """Seconds per GET /api/search for each query, and how many found their ``wanted`` slug on the page."""
    times, found = [], 0
    for k, q in enumerate(queries):
        start = time.perf_counter()
        response = client.get(f"/api/search?q={quote(q)}&limit=10")
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.data
        if wanted is not None:
            found += wanted[k] in {hit["slug"] for hit in response.get_json()["results"]}
    return times, found


def time_raw(app, queries: list[str]) -> list[float]:
    """Seconds per bare Whoosh search of the same query objects kb builds (top 10, no snippets).

    Only the top 10 are read: ``list(results)`` or ``len(results)`` would count every match again.
    """
    from kb.search.analysis import GROUPS, group_for
    from kb.search.querying import build

    service = app.extensions["kb.search"]
    times = []
    with service.store.searcher() as (_gen, searcher):
        plans = [build(searcher.reader(), q, list(GROUPS), group_for("en")) for q in queries]
        for plan in plans:
            start = time.perf_counter()
            if plan.query is not None:
                [hit.docnum for hit in searcher.search(plan.query, limit=10)[:10]]
            times.append(time.perf_counter() - start)
    return times


def reindex(app, n: int) -> float:
    """Seconds for ``kb.search.rebuild`` of the whole database, with progress on stderr."""
    def progress(done: int, total: int) -> None:
        if done and done * 10 // total != (done - 1) * 10 // total:  # every tenth
            print(f"    reindexed {done:,} / {total:,}", file=sys.stderr, flush=True)

    start = time.perf_counter()
    indexed = search.rebuild(app, progress)
    took = time.perf_counter() - start
    if indexed != n:
        raise SystemExit(f"the rebuild indexed {indexed:,} articles of {n:,}: the benchmark's articles are not all "
                         "searchable, so its figures would mean nothing")
    return took


def publish(app, slugs: list[str], count: int = PUBLISHES) -> None:
    """Edit and publish ``count`` articles one at a time, each indexed at once, as agents' saves are.

    A fresh rebuild is one tidy segment; after publishes a Whoosh index has several, and some
    work (typo correction above all) grows with them. Searches must be measured in that state too.
    """
    from kb.articles import ArticleDraft, get_article, update_article
    from kb.db import session_scope

    for k in range(count):
        with session_scope(app) as session:
            article = get_article(session, slugs[k * len(slugs) // count])
            draft = ArticleDraft(article.title, f"{article.body_md}\n\nEdited ({k}).", article.lang, article.category,
                                 list(article.tags or []))
            update_article(session, article, draft)
            session.commit()
        search.process_outbox(app)


def time_sets(app, client, sets: dict, prefix: str = "") -> dict:
    """API (and for Whoosh raw) latencies and pages found for each query set, keys prefixed by ``prefix``."""
    figures = {}
    for name, (queries, wanted) in sets.items():
        suffix = "" if name == "short" else f"_{name}"
        figures[f"{prefix}api{suffix}"], figures[f"{prefix}found{suffix}"] = time_api(client, queries, wanted)
        if app.extensions["kb.search"].name == "whoosh":
            figures[f"{prefix}raw{suffix}"] = time_raw(app, queries)
    return figures


def query_sets(articles: list[dict], n_queries: int) -> dict[str, tuple[list[str], list[int]]]:
    """The query sets, each (texts, source article positions): short, the same with typos, sentences."""
    targets = sample_targets(articles, n_queries)
    short, sources = [q for q, _ in targets], [s for _, s in targets]
    sentences = sample_sentences(articles, n_queries)
    return {"short": (short, sources), "typo": (with_typos(short), sources),
            "sentence": ([q for q, _ in sentences], [s for _, s in sentences])}


def measure(app, n: int, articles: list[dict], n_queries: int) -> dict:
    """Load ``articles``, reindex, time the query sets, publish PUBLISHES edits, time them again."""
    positions = query_sets(articles, n_queries)
    slugs = load(app, articles)
    sets = {name: (queries, [slugs[p] for p in sources]) for name, (queries, sources) in positions.items()}
    figures = {"backend": app.extensions["kb.search"].name, "n": n, "queries": n_queries}
    figures["reindex"] = reindex(app, n)
    client = app.test_client()
    time_api(client, sets["short"][0][:20])  # warm up: jieba, searchers, connections, caches of the OS
    figures.update(time_sets(app, client, sets))
    publish(app, slugs)
    time_api(client, sets["short"][0][:20])
    figures.update(time_sets(app, client, sets, "pub_"))
    cache = getattr(app.extensions["kb.search"], "cache", None)
    if cache is not None and hasattr(cache, "size"):  # the Whoosh backend's per-process result cache
        cache.size = 512
        time_api(client, sets["short"][0])
        figures["cached"] = time_api(client, sets["short"][0])[0]
    return figures


def run_size(backend: str, n: int, n_queries: int, cluster=None) -> dict:
    """Benchmark one backend at one corpus size in a fresh database; the raw figures."""
    articles = build_articles(n)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        url = stack.enter_context(backends.database(cluster)) if backend == "postgres" else f"sqlite:///{tmp}/kb.sqlite3"
        app = backends.create_search_app(backend, {
            "SECRET_KEY": "benchmark-secret-key-0123456789-abcdefghij", "INSTANCE_DIR": tmp,
            "DATABASE_URL": url, "INDEX_DIR": f"{tmp}/index", "INDEXER": False, "JOBS_RUNNER": False, "SEARCH_CACHE_SIZE": 0,
            "PAGE_CACHE_SIZE": 0,  # else the warm-up's queries come back as kept answers in the timed sets
            "STARTER_ARTICLES_DIR": f"{tmp}/none"})
        try:
            return measure(app, n, articles, n_queries)
        finally:
            backends.close_app(app)


def run_engines(n: int, n_queries: int) -> dict:
    """SQLite FTS5 and tantivy (if installed) on the same articles and query sets: latencies and pages found."""
    articles = build_articles(n)
    out: dict = {}
    for engine in engines.engines(articles, sys.stderr):
        figures = {"build": engine.build_seconds}
        for name, (queries, sources) in query_sets(articles, n_queries).items():
            figures[name], figures[f"found_{name}"] = engines.time_engine(engine, queries, sources)
        out[engine.name] = figures
    return out


def p(values: list[float]) -> str:
    """p50 / p95 of ``values`` (seconds) in milliseconds."""
    return f"{percentile(values, 50):.1f} / {percentile(values, 95):.1f} ms"


def ratio(a: list[float], b: list[float]) -> str:
    """Median of ``a`` over median of ``b``, then p95 over p95."""
    return (f"{statistics.median(a) / max(statistics.median(b), 1e-9):.1f}x / "
            f"{percentile(a, 95) / max(percentile(b, 95), 1e-6):.1f}x")


def rows_of(f: dict) -> list[tuple[str, str]]:
    """Table rows (label, figure) of one backend and size, as the README shows them."""
    n, q = f["n"], f["queries"]
    rows = [(f"{n:,} articles: full reindex (`kb reindex`)", f"{f['reindex']:.1f} s ({n / f['reindex']:,.0f} articles/s)")]
    for prefix, state in (("", "fresh index"), ("pub_", f"after {PUBLISHES} publishes")):
        for name, label in SET_LABELS.items():
            suffix = "" if name == "short" else f"_{name}"
            api, raw = f[f"{prefix}api{suffix}"], f.get(f"{prefix}raw{suffix}")
            rows.append((f"{n:,}, {state}: /api/search p50 / p95, {label}", p(api)))
            if raw is not None:
                rows.append((f"{n:,}, {state}: raw Whoosh p50 / p95, {label}; API / raw", f"{p(raw)}; {ratio(api, raw)}"))
    found = " / ".join(str(f[f"pub_found{'' if name == 'short' else '_' + name}"]) for name in SET_LABELS)
    rows.append((f"{n:,}: source article on the first page (after publishes), {' / '.join(SET_LABELS.values())}",
                 f"{found} of {q} each"))
    if "cached" in f:
        rows.append((f"{n:,}: /api/search repeated queries (cache on) p50 / p95", p(f["cached"])))
    return rows


def engine_rows(n: int, others: dict, kb: dict[str, dict]) -> list[tuple[str, ...]]:
    """Rows (engine, query set, p50 / p95, found, then each kb backend's ratio) for one size."""
    rows = []
    for engine, figures in others.items():
        for name, label in SET_LABELS.items():
            suffix = "" if name == "short" else f"_{name}"
            ratios = [ratio(f[f"pub_api{suffix}"], figures[name]) for f in kb.values()]
            rows.append((f"{n:,}", engine, label, p(figures[name]), f"{figures['found_' + name]}", *ratios))
    return rows


def comparison(whoosh: dict, postgres: dict) -> list[tuple[str, str, str, str]]:
    """Rows (measure, whoosh, postgres, postgres / whoosh) for one size: medians, p95s and the reindex."""
    rows = [("full reindex", f"{whoosh['reindex']:.1f} s", f"{postgres['reindex']:.1f} s",
             f"{postgres['reindex'] / whoosh['reindex']:.2f}x")]
    keys = [("api", "/api/search"), ("api_typo", "/api/search with typos"), ("api_sentence", "/api/search sentences"),
            ("pub_api", f"/api/search after {PUBLISHES} publishes"),
            ("pub_api_typo", f"/api/search with typos after {PUBLISHES} publishes"),
            ("pub_api_sentence", f"/api/search sentences after {PUBLISHES} publishes")]
    for key, label in keys:
        for pct, name in ((50, "p50 (median)"), (95, "p95")):
            w, g = percentile(whoosh[key], pct), percentile(postgres[key], pct)
            rows.append((f"{label} {name}", f"{w:.1f} ms", f"{g:.1f} ms", f"{g / max(w, 1e-6):.2f}x"))
    for key, label in (("found", "source article on page 1"), ("found_typo", "source article on page 1, typos"),
                       ("found_sentence", "source article on page 1, sentences")):
        rows.append((label, f"{whoosh[key]} / {whoosh['queries']}", f"{postgres[key]} / {postgres['queries']}",
                     f"{postgres[key] / max(whoosh[key], 1):.2f}x"))
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: ``--backend``, ``--sizes`` (space- or comma-separated) and ``--queries``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default="whoosh",
                        help="the search backend to measure, or both (one after the other, same articles and queries)")
    parser.add_argument("--sizes", nargs="+", default=["1000", "10000"], metavar="N",
                        help="article counts, e.g. 1000 10000 or 1000,10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(part) for item in args.sizes for part in item.split(",") if part.strip()]
    except ValueError:
        parser.error(f"--sizes takes whole numbers of articles, e.g. 1000,10000; got {' '.join(args.sizes)!r}")
    if not args.sizes or min(args.sizes) < 1 or args.queries < 1:
        parser.error("--sizes and --queries must be at least 1")
    args.backends = ["whoosh", "postgres"] if args.backend == "both" else [args.backend]
    return args


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run each backend at each size and print Markdown tables."""
    args = parse_args(argv)
    for backend in args.backends:
        backends.check_backend(backend)  # before minutes of loading: a missing backend fails at once
    cluster = backends.start_cluster() if "postgres" in args.backends else None
    results: dict[str, dict[int, dict]] = {}
    others: dict[int, dict] = {}
    try:
        for backend in args.backends:
            for n in args.sizes:
                print(f"... {backend}: {n:,} articles", file=sys.stderr, flush=True)
                results.setdefault(backend, {})[n] = run_size(backend, n, args.queries, cluster)
        for n in args.sizes:
            print(f"... SQLite FTS5, tantivy: {n:,} articles", file=sys.stderr, flush=True)
            others[n] = run_engines(n, args.queries)
    finally:
        if cluster is not None:
            backends.stop(cluster)
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    for backend, by_size in results.items():
        print(f"\n{backend}\n\n| measure ({args.queries} queries a set) | result |\n|---|---|")
        for figures in by_size.values():
            for label, figure in rows_of(figures):
                print(f"| {label} | {figure} |")
    heads = " | ".join(f"kb {b} (after publishes) / it, p50 / p95" for b in results)
    print(f"\nThe same articles and queries in other libraries (OR of the words, best 10, no typo correction)\n\n"
          f"| articles | library | queries | p50 / p95 | source on page 1 | {heads} |\n|---" + "|---" * (5 + len(results)) + "|")
    for n in args.sizes:
        if not any(n in by_size for by_size in results.values()):
            continue
        for row in engine_rows(n, others[n], {b: by_size[n] for b, by_size in results.items()}):
            print("| " + " | ".join(row) + " |")
    if len(results) == 2:
        print("\n| articles | measure | whoosh | postgres | postgres / whoosh |\n|---|---|---|---|---|")
        for n in args.sizes:
            for row in comparison(results["whoosh"][n], results["postgres"][n]):
                print(f"| {n:,} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
