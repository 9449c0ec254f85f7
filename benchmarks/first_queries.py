"""A fresh process's first searches: what a new gunicorn worker pays before its per-segment arrays exist.

Run:  .venv/bin/python benchmarks/reindex.py --prepare 100000     (once: the database and its index)
      .venv/bin/python benchmarks/first_queries.py 100000 [--runs 5]

Each run is a new Python process on the prepared folder (benchmarks/.cache/reindex-N): it creates
the app (no indexer thread, result cache off) and sends the queries in order through Flask's test
client, as one worker would; then its peak resident memory. The first query opens the index; the
first typo query reads each segment's vocabulary (kb.search.spelling); "refnd" is the first one
that needs two edits (Whoosh's automaton over the terms). Medians and ranges over the runs.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpus import CACHE  # noqa: E402

QUERIES = ["reset password", "pasword", "shipping adress", "refnd policy",
           "how do I change the billing address on my account"]


def one(folder: Path, queries: list[str]) -> dict:
    """Times (ms) of app creation and each query in this process, and its peak memory (MB)."""
    from reindex import make_app
    started = time.perf_counter()
    app = make_app(folder)
    times = {"create_app": 1000 * (time.perf_counter() - started)}
    client = app.test_client(use_cookies=False)
    for text in queries:
        started = time.perf_counter()
        answer = client.get(f"/api/search?q={quote(text)}")
        if answer.status_code != 200:
            raise SystemExit(f"/api/search?q={text} answered {answer.status_code}")
        times[text] = 1000 * (time.perf_counter() - started)
    times["peak memory MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return times


def main(argv: list[str] | None = None) -> None:
    """Parse arguments; run the fresh processes; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="articles (prepared first with benchmarks/reindex.py --prepare N)")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes (default 3)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a run's own process
    args = parser.parse_args(argv)
    folder = CACHE / f"reindex-{args.n}"
    if not (folder / "kb.sqlite3").exists():
        raise SystemExit(f"no prepared folder for {args.n:,} articles: run benchmarks/reindex.py --prepare {args.n}")
    if args.one:
        print(json.dumps(one(folder, QUERIES)))
        return
    runs = []
    for k in range(args.runs):
        out = subprocess.run([sys.executable, __file__, str(args.n), "--one"], capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"run {k + 1} failed:\n{out.stderr[-2000:]}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"run {k + 1} of {args.runs} done", file=sys.stderr)
    print(f"{args.n:,} articles, {args.runs} fresh processes, {time.strftime('%Y-%m-%d %H:%M')}\n")
    print("| step | median | range |\n|---|---|---|")
    for name in runs[0]:
        values = [run[name] for run in runs]
        unit = "" if name.endswith("MB") else " ms"
        print(f"| {name} | {statistics.median(values):,.0f}{unit} | {min(values):,.0f}-{max(values):,.0f}{unit} |")


if __name__ == "__main__":
    main()
