"""Start-up benchmark: how long ``create_app`` takes with a fresh, a stale and a missing Whoosh index.

Run:  nice .venv/bin/python benchmarks/startup.py                 (10,000 articles)
      nice .venv/bin/python benchmarks/startup.py --sizes 1000,100000

Each size gets its own SQLite database, filled in bulk with published articles of real prose
(bulk.py, corpus.py, as benchmarks/search.py does), and an index built once with
``kb.search.rebuild``. Then an app with the indexer thread on (as ``kb serve`` and gunicorn run it)
is created three times: on that fresh index; on a stale one (one article added behind the change
feed's back, as a restore or a hand edit would); and with the index folder deleted. "create_app"
is the time until the app can serve; "index ready" the time until the index is fresh again (the
background rebuild done and switched in), measured by polling every 50 ms. Those starts run in
this process, which has imported kb already; before each, ``--runs`` new processes start as a
gunicorn worker does (kb's imports, then create_app, then they end at once, leaving a rebuild they
began unfinished and the index as it was): their rows give the whole time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bulk import load  # noqa: E402
from corpus import build_articles  # noqa: E402
from kb import search  # noqa: E402
from kb.db import get_db  # noqa: E402
from kb.web import create_app  # noqa: E402


def settings(tmp: str, indexer: bool) -> dict:
    """An app on the benchmark's database and index folder."""
    return {"SECRET_KEY": "benchmark-secret-key-0123456789-abcdefghij", "INSTANCE_DIR": tmp,
            "DATABASE_URL": f"sqlite:///{tmp}/kb.sqlite3", "INDEX_DIR": f"{tmp}/index", "INDEXER": indexer,
            "INDEXER_POLL_SECONDS": 0.05, "JOBS_RUNNER": False, "STARTER_ARTICLES_DIR": f"{tmp}/none"}


def close(app) -> None:
    """Stop the app's threads and release its database."""
    service = app.extensions.get("kb.search")
    if service is not None:
        service.close()
    get_db(app).engine.dispose()


def settled(app) -> bool:
    """Whether the app's index is fresh: its indexer thread's start-up work is done (at once on older kb)."""
    service = app.extensions["kb.search"]
    thread = getattr(service, "thread", None)
    building = getattr(service, "building", lambda: False)()
    return not building and not getattr(thread, "unsettled", False) and service.store.current() is not None


def start(tmp: str, limit: float) -> tuple[float, float]:
    """(seconds create_app took, seconds until the index was fresh) for one start."""
    began = time.perf_counter()
    app = create_app(settings(tmp, indexer=True))
    created = time.perf_counter() - began
    try:
        while not settled(app) and time.perf_counter() - began < limit:
            time.sleep(0.05)
        return created, time.perf_counter() - began
    finally:
        close(app)


# A gunicorn worker starts as a new process: it pays kb's imports and create_app, nothing loaded before.
CHILD = """
import json, sys, time
began, cpu = time.perf_counter(), time.process_time()
from kb.web import create_app
imported = time.perf_counter() - began
app = create_app(json.loads(sys.argv[1]))
print(json.dumps([imported, time.perf_counter() - began, time.process_time() - cpu]), flush=True)
time.sleep(3600)  # killed with its process group: a rebuild it began aside is left unfinished
"""


def new_process(tmp: str, runs: int) -> list[tuple[float, float, float]]:
    """(imports, imports and create_app, CPU seconds) of ``runs`` new processes starting on the index as it is."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    figures = []
    for _ in range(runs):
        child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(settings(tmp, indexer=True))], cwd=tmp,
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                 start_new_session=True)
        try:
            line = child.stdout.readline()
        finally:  # the whole group: a rebuild's worker processes too, as a worker killed with its helpers
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            child.stdout.close()
        if not line:
            raise SystemExit(f"a new process did not start (exit {child.returncode}); run it by hand to see why")
        figures.append(tuple(json.loads(line)))
    return figures


def run_size(n: int, limit: float, runs: int = 3) -> dict[str, tuple[float, float]]:
    """Each start case at ``n`` articles."""
    items = build_articles(n)
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(settings(tmp, indexer=False))
        try:
            load(app, items[:n])
            began = time.perf_counter()
            search.rebuild(app)
            built = time.perf_counter() - began
            print(f"  {n:,} articles loaded; rebuild {built:.1f} s", file=sys.stderr, flush=True)
        finally:
            close(app)
        figures = {}
        timed(figures, "fresh index", tmp, limit, runs)
        app = create_app(settings(tmp, indexer=False))
        try:
            extra = {"title": "Zeppelin mooring for the benchmark", "body": items[0]["body"], "category": ""}
            load(app, [extra])  # behind the feed's back: no change row
        finally:
            close(app)
        timed(figures, "stale index (1 article added behind the feed)", tmp, limit, runs)
        shutil.rmtree(f"{tmp}/index")
        timed(figures, "index folder missing", tmp, limit, runs)
        return figures


def timed(figures: dict, case: str, tmp: str, limit: float, runs: int) -> None:
    """New processes' starts on the index as it is (each leaves it so: it ends before a rebuild it began), then one in this process."""
    for k, (imported, started, cpu) in enumerate(new_process(tmp, runs), 1):
        figures[f"{case}, new process {k} (imports {imported:.2f} s of it, {cpu:.2f} s CPU)"] = (started, float("nan"))
    figures[case] = start(tmp, limit)


def main(argv: list[str] | None = None) -> None:
    """Run every size and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000", help="comma-separated article counts (default 10000)")
    parser.add_argument("--limit", type=float, default=1800, help="give up waiting for the index after this many seconds")
    parser.add_argument("--runs", type=int, default=3, help="new processes started on the fresh index (default 3)")
    args = parser.parse_args(argv)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        for case, (created, ready) in run_size(n, args.limit, args.runs).items():
            rows.append(f"| {n:,} | {case} | {created:.2f} s | {'-' if ready != ready else f'{ready:.2f} s'} |")
    print("| articles | start | create_app | index ready |")
    print("|---:|---|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
