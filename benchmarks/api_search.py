"""What an /api/search request costs beyond Whoosh, on a kept site: latencies, or a profile of the request.

Run:  .venv/bin/python benchmarks/api_search.py                      (10,000 articles in /tmp/kb-api-bench)
      .venv/bin/python benchmarks/api_search.py --data /tmp/kb-api-bench --sets short,sentence --rounds 3
      .venv/bin/python benchmarks/api_search.py --profile short       (cProfile of the short queries' requests)
      .venv/bin/python benchmarks/api_search.py --rebuild --sets short --rounds 2   (a fresh index; each round's p50)
      .venv/bin/python benchmarks/api_search.py --rebuild --phases short  (where each request's time goes)

benchmarks/search.py builds a fresh database each run, so comparing two versions of the code costs
minutes of loading a time. Here the site (benchmarks/corpus.py's articles, loaded with bulk.py,
indexed with ``kb.search.rebuild``, then PUBLISHES edits saved one by one as search.py does) is made
once in ``--data`` and reused, so old and new code can be run in turn on the same database and
index (the old code from a copy of its tree: ``python /tmp/old/benchmarks/api_search.py``). Each
round times every query of each set through the Flask test client, the result cache off, and the
same query objects on a bare Whoosh searcher ("raw", search.py's ``time_raw``); the figures are
over all rounds. ``--profile SET`` prints where one round of that set's requests spends its time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backends import close_app  # noqa: E402
from bulk import load  # noqa: E402
from corpus import build_articles  # noqa: E402
from search import SET_LABELS, p, publish, query_sets, time_api, time_raw  # noqa: E402

SECRET = "api-benchmark-secret-key-0123456789-abcdefgh"


def settings(folder: Path) -> dict:
    """The app's settings for a site in ``folder``: SQLite, no threads, the result cache off."""
    return {"DATABASE_URL": f"sqlite:///{folder / 'kb.sqlite3'}", "INDEX_DIR": str(folder / "index"),
            "INSTANCE_DIR": str(folder / "instance"), "SECRET_KEY": SECRET, "STARTER_ARTICLES_DIR": "",
            "INDEXER": False, "JOBS_RUNNER": False, "SEARCH_CACHE_SIZE": 0,
            "PAGE_CACHE_SIZE": 0}  # kept answers would make every round after the first a cache hit


def build_site(folder: Path, n: int, n_queries: int) -> dict:
    """The site of ``n`` articles in ``folder`` (made once, then reused) and its query sets."""
    manifest = folder / "site.json"
    if manifest.exists():
        site = json.loads(manifest.read_text())
        if site["n"] != n or site["queries"] != n_queries:
            raise SystemExit(f"{folder} holds {site['n']:,} articles and {site['queries']} queries a set: "
                             "give those, or another --data folder")
        return site
    from kb import search
    from kb.web import create_app

    folder.mkdir(parents=True, exist_ok=True)
    articles = build_articles(n)
    positions = query_sets(articles, n_queries)
    print(f"... loading {n:,} articles into {folder}", file=sys.stderr, flush=True)
    app = create_app(settings(folder))
    try:
        slugs = load(app, articles)
        search.rebuild(app)
        publish(app, slugs)
    finally:
        close_app(app)
    sets = {name: [queries, [slugs[i] for i in sources]] for name, (queries, sources) in positions.items()}
    site = {"n": n, "queries": n_queries, "sets": sets}
    manifest.write_text(json.dumps(site))
    return site


def measure(app, site: dict, names: list[str], rounds: int) -> None:
    """Print p50 / p95 of the API and of raw Whoosh for each set, over ``rounds`` rounds, and their ratio."""
    client = app.test_client()
    time_api(client, site["sets"]["short"][0][:20])  # warm up: searchers, connections, caches of the OS
    print(f"| set ({site['n']:,} articles, {site['queries']} queries x {rounds}) | /api/search p50 / p95 "
          "| raw Whoosh p50 / p95 | API / raw, medians | API p50 by round | source on page 1 |\n"
          "|---|---|---|---|---|---|")
    for name in names:
        queries, wanted = site["sets"][name]
        api, raw, found, by_round = [], [], 0, []
        for _ in range(rounds):
            times, found = time_api(client, queries, wanted)
            api += times
            by_round.append(f"{1000 * statistics.median(times):.2f}")
            raw += time_raw(app, queries)
        ratio = statistics.median(api) / max(statistics.median(raw), 1e-9)
        print(f"| {SET_LABELS[name]} | {p(api)} | {p(raw)} | {ratio:.1f}x | {', '.join(by_round)} ms | {found} |",
              flush=True)


def profile(app, site: dict, name: str, top: int) -> None:
    """Print the functions one round of ``name``'s requests spends most time in (own time, then cumulative)."""
    client = app.test_client()
    queries, _wanted = site["sets"][name]
    time_api(client, queries[:20])
    profiler = cProfile.Profile()
    profiler.enable()
    time_api(client, queries)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


# (module, attribute, phase): what --phases times inside each request, outermost last
PHASES = (("kb.search.service", "build", "planning"), ("kb.search.service", "_ranked", "Whoosh search and ranking"),
          ("kb.search.service", "snippet", "snippets"), ("kb.search.service:SearchService", "_query", "index (all above)"),
          ("kb.search", "search_articles", "index and article rows"))


def phases(app, site: dict, name: str) -> None:
    """Print where each request of ``name``'s set spends its time, the first time and again, beside raw Whoosh."""
    import importlib
    import time

    spent: dict[str, float] = {}  # phase -> seconds in this request

    def timed(real, phase):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                spent[phase] = spent.get(phase, 0.0) + time.perf_counter() - start
        return run

    originals = []
    for where, attribute, phase in PHASES:
        module, _, cls = where.partition(":")
        owner = getattr(importlib.import_module(module), cls) if cls else importlib.import_module(module)
        originals.append((owner, attribute, getattr(owner, attribute)))
        setattr(owner, attribute, timed(getattr(owner, attribute), phase))
    try:
        _time_phases(app, site, name, spent)
    finally:
        for owner, attribute, real in originals:
            setattr(owner, attribute, real)


def _time_phases(app, site: dict, name: str, spent: dict[str, float]) -> None:
    """Ask each query of the set twice over, with ``spent`` filled by the wrapped phases; print the tables."""
    client = app.test_client()
    client.get("/api/search?q=warm+up")  # the app's own first request, not a query's
    queries, _wanted = site["sets"][name]
    labels = [phase for _, _, phase in PHASES] + ["request (Flask, JSON, the rest)", "whole request"]
    for when in ("first time", "again"):
        rows: dict[str, list[float]] = {label: [] for label in labels}
        for query in queries:
            spent.clear()
            whole = time_api(client, [query])[0][0]
            for _, _, phase in PHASES:
                rows[phase].append(spent.get(phase, 0.0))
            rows["request (Flask, JSON, the rest)"].append(whole - spent.get(PHASES[-1][2], 0.0))
            rows["whole request"].append(whole)
        raw = time_raw(app, queries)
        print(f"\n{SET_LABELS[name]}, {when} ({len(queries)} queries): ms a request\n| phase | mean | p50 |\n|---|---|---|")
        for label in labels:
            print(f"| {label} | {1000 * statistics.mean(rows[label]):.2f} | {1000 * statistics.median(rows[label]):.2f} |")
        print(f"| raw Whoosh, the same query objects (after) | {1000 * statistics.mean(raw):.2f} | "
              f"{1000 * statistics.median(raw):.2f} |", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/kb-api-bench"),
                        help="the folder that keeps the site between runs (made on the first run)")
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=100, help="queries a set")
    parser.add_argument("--sets", default="short,typo,sentence", help="which query sets, comma-separated")
    parser.add_argument("--rounds", type=int, default=1, help="times each set is run (figures over all)")
    parser.add_argument("--profile", choices=list(SET_LABELS), help="profile one round of this set instead")
    parser.add_argument("--top", type=int, default=35, help="functions the profile lists")
    parser.add_argument("--phases", choices=list(SET_LABELS),
                        help="time the phases of this set's requests (the first time, then again) instead")
    parser.add_argument("--rebuild", action="store_true",
                        help="rebuild the kept site's index first (one segment: search.py's fresh index)")
    args = parser.parse_args(argv)
    args.sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = set(args.sets) - set(SET_LABELS)
    if unknown or not args.sets:
        parser.error(f"--sets takes some of {', '.join(SET_LABELS)}")
    if args.articles < 1 or args.queries < 1 or args.rounds < 1:
        parser.error("--articles, --queries and --rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    """Make or reuse the site, then time or profile the requests."""
    args = parse_args(argv)
    site = build_site(args.data, args.articles, args.queries)
    from kb.web import create_app

    app = create_app(settings(args.data))
    try:
        if args.rebuild:
            from kb import search

            search.rebuild(app)  # one segment, as search.py's "fresh index"
        if args.phases:
            phases(app, site, args.phases)
        elif args.profile:
            profile(app, site, args.profile, args.top)
        else:
            measure(app, site, args.sets, args.rounds)
    finally:
        close_app(app)


if __name__ == "__main__":
    main()
