"""HTTP load benchmark: kb under gunicorn (4 workers, 127.0.0.1 only) driven by concurrent keep-alive clients.

Run:  .venv/bin/python benchmarks/load.py                    (10,000 articles, 1,000 requests a scenario)
      .venv/bin/python benchmarks/load.py --articles 1000 --requests 300
      .venv/bin/python benchmarks/load.py --data /tmp/kb-load  (keep the database and index there; reuse them)

The articles are benchmarks/corpus.py's real prose, loaded with benchmarks/bulk.py and indexed with
``kb.search.rebuild`` (as benchmarks/search.py does), in SQLite. Then ``gunicorn -w 4`` serves
``kb.web:create_app()`` on a free port of 127.0.0.1 and the client threads of this process (stdlib
http.client, one connection each, reopened when the server closes it) send a fixed number of GETs per
scenario, each scenario also bounded in time. Distinct scenarios run with the result cache off
and the page cache off (SEARCH_CACHE_SIZE=0, PAGE_CACHE_SIZE=0) and every request asks something not
asked before; the repeated mix runs on a restarted server with both on (their defaults) and no kept
pages in the host's page file (as after a new release); ``--only restart`` runs it again after a
restart that keeps them. The clients share the machine's cores with the server:
their CPU time is printed beside the server's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lean_client  # noqa: E402
from bulk import load  # noqa: E402
from corpus import build_articles, sample_queries  # noqa: E402
from tests import polling  # noqa: E402

HOST = "127.0.0.1"  # never anything else: this benchmark only ever talks to itself
SECRET = "load-benchmark-secret-key-0123456789-abcdefgh"
GUNICORN = Path(sys.executable).with_name("gunicorn")
GOALS = {"api": 300, "search": 300, "article": 300, "mix": 1500}  # req/s, issue 12
MIX_P95_GOAL_MS = 100
# --only names of the warm runs: one kind of the mix's requests (by path prefix), or /healthz, the floor
PAGE_FILE = "pagecache.sqlite3"  # kb.web.pagestore's file in the instance folder, with its -wal and -shm
WARM = {"warm-api": "/api/search", "warm-search": "/en/search", "warm-article": "/en/articles", "healthz": "/healthz"}
START_SECONDS = 180


def distinct_queries(articles: list[dict], n: int) -> list[str]:
    """At least ``n`` different queries drawn from the titles (more draws until enough are unique)."""
    seen: dict[str, None] = {}
    for seed in range(42, 142):
        for q in sample_queries(articles, n, seed=seed):
            seen.setdefault(q)
        if len(seen) >= n:
            break
    return list(seen)


def build_site(folder: Path, n: int) -> dict:
    """The database and index of ``n`` articles in ``folder`` (made once, reused); the slugs and queries."""
    manifest = folder / "site.json"
    if manifest.exists():
        site = json.loads(manifest.read_text())
        if site["n"] == n:
            return site
        raise SystemExit(f"{folder} holds {site['n']:,} articles, not {n:,}: give another --data folder")
    from backends import close_app
    from kb import search
    from kb.web import create_app
    articles = build_articles(n)
    print(f"... loading {n:,} articles into {folder}", file=sys.stderr, flush=True)
    app = create_app(settings(folder) | {"INDEXER": False, "JOBS_RUNNER": False})
    try:
        slugs = load(app, articles)
        search.rebuild(app)
    finally:
        close_app(app)
    site = {"n": n, "slugs": slugs, "queries": distinct_queries(articles, 6000)}
    manifest.write_text(json.dumps(site))
    return site


def settings(folder: Path) -> dict:
    """The app's settings (without the KB_ prefix) for a site in ``folder``."""
    return {"DATABASE_URL": f"sqlite:///{folder / 'kb.sqlite3'}", "INDEX_DIR": str(folder / "index"),
            "INSTANCE_DIR": str(folder / "instance"), "SECRET_KEY": SECRET, "STARTER_ARTICLES_DIR": ""}


def worker_pids(arbiter: int) -> list[int]:
    """The gunicorn arbiter's worker processes."""
    try:
        return [int(p) for p in Path(f"/proc/{arbiter}/task/{arbiter}/children").read_text().split()]
    except OSError:
        return []


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` (from /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


@contextmanager
def gunicorn(folder: Path, workers: int, caches: bool, max_requests: int = 0, port: int = 0):
    """A gunicorn serving the site on ``port`` or a free port of 127.0.0.1, kb's caches on (their defaults) or off; yields (port, arbiter pid).

    ``max_requests``: gunicorn starts each worker again after that many requests (0: never). The
    port is part of the site's address (BASE_URL), so a restart that should meet its pages keeps it.
    """
    if not port:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env |= {f"KB_{k}": v for k, v in settings(folder).items()}
    env |= {"KB_BASE_URL": f"http://{HOST}:{port}"}
    if not caches:  # the result cache and the page cache (kb.web.pagecache)
        env |= {"KB_SEARCH_CACHE_SIZE": "0", "KB_PAGE_CACHE_SIZE": "0"}
    log = open(folder / "gunicorn.log", "ab")
    recycle = ["--max-requests", str(max_requests)] if max_requests else []
    proc = subprocess.Popen([str(GUNICORN), "-w", str(workers), "-b", f"{HOST}:{port}", "--timeout", "60", *recycle,
                             "kb.web:create_app()"], env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not serve within {START_SECONDS} s; see {folder / 'gunicorn.log'}")
            time.sleep(0.2)
        yield port, proc.pid
    finally:
        polling.end(proc, 30)
        log.close()


def _answers(port: int) -> bool:
    """Whether the server answers a search with 200."""
    try:
        conn = HTTPConnection(HOST, port, timeout=5)
        conn.request("GET", "/api/search?q=start")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


@dataclass
class Run:
    """What one scenario measured."""

    name: str
    clients: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    wall: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    first_error: str = ""
    rendered: int | None = None  # pages the host rendered and kept in its page file since its start (None: not counted)

    @property
    def done(self) -> int:
        """Requests answered (with any status) or failed."""
        return len(self.latencies) + self.errors


def drive(port: int, paths: list[str], clients: int, seconds: float, name: str, arbiter: int, client: str) -> Run:
    """Send each path once, ``clients`` at a time, stopping early after ``seconds``; the server's and clients' CPU."""
    run = Run(name, clients)
    cpu0, server0, wall0 = _own_cpu(), cpu_seconds(worker_pids(arbiter)), time.perf_counter()
    if client == "threads":  # --client: the first one; else benchmarks/lean_client.py
        _drive_threads(run, port, paths, clients, seconds)
    else:
        outcome = lean_client.drive(HOST, port, paths, clients, seconds)
        run.latencies, run.errors, run.first_error = outcome.latencies, outcome.errors, outcome.first_error
    run.wall = time.perf_counter() - wall0
    run.client_cpu, run.server_cpu = _own_cpu() - cpu0, cpu_seconds(worker_pids(arbiter)) - server0
    return run


def _drive_threads(run: Run, port: int, paths: list[str], clients: int, seconds: float) -> None:
    """The first client: ``clients`` threads with http.client connections (kept alive when the server allows)."""
    lock, nxt = threading.Lock(), iter(range(len(paths)))
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = HTTPConnection(HOST, port, timeout=30)
        while time.monotonic() < deadline:
            with lock:
                i = next(nxt, None)
            if i is None:
                break
            start = time.perf_counter()
            try:
                conn.request("GET", paths[i])
                response = conn.getresponse()
                response.read()
                took, status = time.perf_counter() - start, response.status
                if response.will_close:
                    conn.close()  # the next request reconnects
            except OSError as exc:
                conn.close()
                took, status = None, repr(exc)
            with lock:
                if took is not None and status < 400:
                    run.latencies.append(took)
                else:
                    run.errors += 1
                    run.first_error = run.first_error or f"{paths[i]}: {status}"
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)


def _own_cpu() -> float:
    """CPU seconds this process (the clients) used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def zipf_mix(queries: list[str], slugs: list[str], n: int, seed: int = 5) -> list[str]:
    """``n`` requests: API search, search page and article page, each Zipf (s=1) over 300 items (fewer on a small site)."""
    rng = random.Random(seed)
    asked, read = queries[:300], slugs[:300]
    zipf = {len(items): [1 / rank for rank in range(1, len(items) + 1)] for items in (asked, read)}
    kinds = [lambda q, s: f"/api/search?q={quote(q)}&limit=10", lambda q, s: f"/en/search?q={quote(q)}",
             lambda q, s: f"/en/articles/{s}"]
    out = []
    for _ in range(n):
        q, s = rng.choices(asked, zipf[len(asked)])[0], rng.choices(read, zipf[len(read)])[0]
        out.append(rng.choices(kinds, (4, 3, 3))[0](q, s))
    return out


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``, in milliseconds (nan for none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def row(run: Run, goal: float) -> str:
    """One Markdown table row for a run."""
    rate = len(run.latencies) / run.wall if run.wall else 0.0
    ps = " / ".join(f"{percentile(run.latencies, p):.0f}" for p in (50, 95, 99))
    per = lambda cpu: f"{1000 * cpu / max(run.done, 1):.1f}"  # noqa: E731
    # What the cores could serve if the server had them to itself: the steadier figure on a busy machine.
    bound = (os.cpu_count() or 1) * run.done / max(run.server_cpu + run.client_cpu, 1e-9)
    return (f"| {run.name} | {run.clients} | {run.done:,} | {rate:,.0f} | {rate / goal:.2f}x | {ps} | {run.errors} | "
            f"{per(run.server_cpu)} | {per(run.client_cpu)} | {bound:,.0f} |")


def scenarios(site: dict, requests: int) -> dict[str, list[str]]:
    """The distinct scenarios' paths: each query or article used once, none shared between scenarios."""
    queries, slugs = site["queries"], site["slugs"]
    rng = random.Random(3)
    picked = rng.sample(slugs, min(len(slugs), requests + 100))
    api, page = queries[300:300 + requests + 100], queries[300 + requests + 100:300 + 2 * (requests + 100)]
    return {"api": [f"/api/search?q={quote(q)}&limit=10" for q in api],
            "search": [f"/en/search?q={quote(q)}" for q in page],
            "article": [f"/en/articles/{s}" for s in picked]}


def parse_args(argv=None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=1000, help="requests per distinct scenario")
    parser.add_argument("--mix-requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients in the distinct scenarios")
    parser.add_argument("--mix-clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=90, help="time bound of each scenario")
    parser.add_argument("--max-requests", type=int, default=0,
                        help="gunicorn's --max-requests in the mix runs: each worker is started again after that many "
                             "requests (0: never; the server CPU column then misses the workers that ended)")
    parser.add_argument("--only", default="api,search,article,mix",
                        help="scenarios to run, comma-separated; also restart (the mix again after a restart, with the "
                             "pages the first mix kept), warm-api, warm-search, warm-article (one kind of "
                             "the mix's requests, each address sent 8 times before to fill every worker's caches) and "
                             "healthz (the floor)")
    parser.add_argument("--data", type=Path, help="folder to keep (and reuse) the database and index in")
    parser.add_argument("--client", choices=("lean", "threads"), default="lean",
                        help="lean: one thread, non-blocking sockets (benchmarks/lean_client.py); threads: a thread "
                             "and an http.client connection per client, the first client (0.2 ms or more of CPU a request)")
    args = parser.parse_args(argv)
    if min(args.articles, args.requests, args.mix_requests, args.clients, args.mix_clients, args.workers) < 1:
        parser.error("every count must be at least 1")
    if args.max_requests < 0:
        parser.error("--max-requests must be 0 (never) or more")
    if args.requests + 100 > args.articles or 2 * (args.requests + 100) + 300 > 6000:
        parser.error("--requests must leave 100 more articles than requests, and at most 2,600")
    return args


def main(argv=None) -> None:
    """Build (or reuse) the site, run the scenarios against gunicorn, print a Markdown table."""
    args = parse_args(argv)
    only = set(args.only.split(","))
    folder = args.data or Path(tempfile.mkdtemp(prefix="kb-load-"))
    folder.mkdir(parents=True, exist_ok=True)
    runs: list[tuple[Run, float]] = []
    try:
        site = build_site(folder, args.articles)
        paths = scenarios(site, args.requests)
        labels = {"api": "/api/search, distinct queries", "search": "portal search page, distinct queries",
                  "article": "article page, distinct articles"}
        distinct = [name for name in ("api", "search", "article") if name in only]
        with gunicorn(folder, args.workers, caches=False) if distinct else nullcontext((0, 0)) as (port, arbiter):
            for name in distinct:
                if name in only:
                    print(f"... {labels[name]}", file=sys.stderr, flush=True)
                    drive(port, paths[name][:100], args.clients, args.seconds, "warm-up", arbiter, args.client)
                    run = drive(port, paths[name][100:], args.clients, args.seconds, labels[name], arbiter, args.client)
                    runs.append((run, GOALS[name]))
        if "mix" in only or "restart" in only:
            runs += mix_runs(site, args, folder, only)
        warm = [name for name in WARM if name in only]
        if warm:
            runs += warm_runs(site, args, folder, warm)
    finally:
        if args.data is None:
            shutil.rmtree(folder, ignore_errors=True)
    report(args, runs)


def mix_runs(site: dict, args, folder: Path, only: set[str]) -> list[tuple[Run, float]]:
    """The repeated mix on a host with no kept pages (as after a new release), then, for ``restart``, the same
    mix again on the host started again with the pages its first run kept (kb.web.pagestore's file)."""
    mix = zipf_mix(site["queries"], site["slugs"], args.mix_requests + 300)
    for path in (folder / "instance").glob(PAGE_FILE + "*"):
        path.unlink()
    runs, port, kept = [], 0, 0
    labels = [("mix", "repeated mix (Zipf), cache on"), ("restart", "repeated mix again after a restart, pages kept")]
    for name, label in labels[:2 if "restart" in only else 1]:
        with gunicorn(folder, args.workers, caches=True, max_requests=args.max_requests, port=port) as (port, arbiter):
            print(f"... {label}", file=sys.stderr, flush=True)
            drive(port, mix[:300], args.mix_clients, args.seconds, "warm-up", arbiter, args.client)
            run = drive(port, mix[300:], args.mix_clients, args.seconds, label, arbiter, args.client)
            now = kept_pages(folder)
            run.rendered, kept = (now - kept if now >= kept else now), now  # fewer: the start emptied the file
        if name in only:
            runs.append((run, GOALS["mix"]))
    return runs


def kept_pages(folder: Path) -> int:
    """How many pages the site's host has put in its page file so far (the newest row's number; 0 for none)."""
    try:
        with closing(sqlite3.connect(folder / "instance" / PAGE_FILE)) as db:
            return db.execute("SELECT coalesce(max(rowid), 0) FROM pages").fetchone()[0]
    except sqlite3.Error:
        return 0


def warm_runs(site: dict, args, folder: Path, names: list[str]) -> list[tuple[Run, float]]:
    """Each kind of the mix's requests on its own, every worker's caches filled first."""
    mix = zipf_mix(site["queries"], site["slugs"], args.mix_requests)
    runs = []
    with gunicorn(folder, args.workers, caches=True) as (port, arbiter):
        for name in names:
            paths = ["/healthz"] * args.mix_requests if name == "healthz" else [p for p in mix if p.startswith(WARM[name])]
            print(f"... {name}, warm", file=sys.stderr, flush=True)
            # each distinct address 8 times: every worker most likely has it (a worker takes any request)
            drive(port, list(dict.fromkeys(paths)) * 8, args.mix_clients, args.seconds, "warm-up", arbiter, args.client)
            label = "healthz: the floor (no page work)" if name == "healthz" else f"{name}: the mix's, caches warm"
            runs.append((drive(port, paths, args.mix_clients, args.seconds, label, arbiter, args.client), GOALS["mix"]))
    return runs


def report(args, runs: list[tuple[Run, float]]) -> None:
    """Print the table and what it means."""
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"{args.articles:,} articles, SQLite, gunicorn -w {args.workers} (sync workers), {os.cpu_count()} cores "
          "shared by server and clients, "
          f"{args.client} client\n")
    print("| scenario | clients | requests | req/s | of goal | p50 / p95 / p99 ms | errors | server CPU ms/req "
          "| client CPU ms/req | CPU-bound req/s |\n|---|---|---|---|---|---|---|---|---|---|")
    for run, goal in runs:
        print(row(run, goal))
    print(f"\ngoals (issue 12): >= 300 req/s for API, search page and article page; the repeated mix >= 1,500 req/s "
          f"with 0 errors and p95 < {MIX_P95_GOAL_MS} ms at 50 clients. The clients run in this process on the "
          "same cores: their CPU time is taken from the server's. CPU-bound req/s = cores / (server + client CPU "
          "seconds per request): what the cores would serve with nothing else running, an estimate.")
    for run, _goal in runs:
        if run.first_error:
            print(f"first error in {run.name}: {run.first_error}")
        if run.rendered is not None:
            print(f"{run.name}: {run.rendered:,} pages rendered and put in the host's page file, warm-up included")
        if run.done < args.requests and not run.name.startswith(("repeated", "warm", "healthz")):
            print(f"{run.name}: stopped by the {args.seconds:.0f} s bound after {run.done:,} requests")


if __name__ == "__main__":
    main()
