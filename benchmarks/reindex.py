"""Reindex benchmark: one full ``kb.search.rebuild`` of a prepared database, nothing else.

Run:  .venv/bin/python benchmarks/reindex.py --prepare 10000     (once: database and index under .cache)
      .venv/bin/python benchmarks/reindex.py 10000               (one rebuild; prints its seconds)
      add --join 5 to both for articles five times as long (five of corpus.py's articles each),
      or --zh for Chinese articles (corpus.chinese_articles: words of jieba's dictionary)

It prints the seconds of the rebuild and the peak memory (resident set) of this process, before
and after the rebuild, and of its largest child (a rebuild's worker process, sampled from /proc).

The database (SQLite, benchmarks/.cache/reindex-N) holds N published articles of corpus.py's
prose, loaded in bulk as benchmarks/search.py loads them. Each run starts kb on it (the index is
fresh, so start-up does not rebuild) and then times one rebuild, so the whole process's time and
peak memory are the rebuild's plus a constant start-up.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import backends  # noqa: E402
from bulk import load  # noqa: E402
from corpus import CACHE, chinese_articles, joined_articles  # noqa: E402
from kb import search  # noqa: E402


def make_app(folder: Path):
    """The benchmark's app on the prepared folder (no indexer thread, no jobs)."""
    return backends.create_search_app("whoosh", {
        "SECRET_KEY": "benchmark-secret-key-0123456789-abcdefghij", "INSTANCE_DIR": str(folder),
        "DATABASE_URL": f"sqlite:///{folder}/kb.sqlite3", "INDEX_DIR": f"{folder}/index", "INDEXER": False,
        "JOBS_RUNNER": False, "SEARCH_CACHE_SIZE": 0, "STARTER_ARTICLES_DIR": f"{folder}/none"})


def prepare(n: int, folder: Path, join: int = 1, zh: bool = False) -> None:
    """A new database of ``n`` published articles (each ``join`` corpus articles long, or Chinese), and its index, in ``folder``."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    app = make_app(folder)
    try:
        load(app, chinese_articles(n) if zh else joined_articles(n, join))
        search.rebuild(app)
    finally:
        backends.close_app(app)


def peak_mb() -> float:
    """The peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ChildPeaks(threading.Thread):
    """Samples the peak resident memory (VmHWM) of this process's children, e.g. a rebuild's workers."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.stopping = 0.0, threading.Event()

    def run(self) -> None:
        """Look every 0.2 s until stopped."""
        me = str(os.getpid())
        while not self.stopping.wait(0.2):
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    if stat.read_text().rsplit(")", 1)[1].split()[1] != me:
                        continue
                    status = (stat.parent / "status").read_text()
                except (OSError, IndexError):
                    continue  # it ended meanwhile
                hwm = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
                if hwm:
                    self.peak = max(self.peak, int(hwm[0]) / 1024)


def run(n: int, folder: Path, quiet: bool) -> tuple[float, float, float]:
    """(seconds, peak MB before it, largest child's peak MB) of one rebuild of the prepared database.

    Progress goes to stderr unless ``quiet``.
    """
    app = make_app(folder)
    before = peak_mb()
    children = ChildPeaks()
    children.start()
    step = max(n // 10, 1)

    def progress(done: int, total: int) -> None:
        if not quiet and (done % step == 0 or done == total):
            print(f"    reindexed {done:,} / {total:,}", file=sys.stderr, flush=True)

    try:
        started = time.perf_counter()
        indexed = search.rebuild(app, progress)
        took = time.perf_counter() - started
    finally:
        children.stopping.set()
        backends.close_app(app)
    if indexed != n:
        raise SystemExit(f"the rebuild indexed {indexed:,} articles of {n:,}")
    return took, before, children.peak


def main(argv: list[str] | None = None) -> None:
    """Parse arguments; prepare the database, or time one rebuild of it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="articles (the database for it must be prepared first)")
    parser.add_argument("--prepare", action="store_true", help="make the database and its index, then stop")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--join", type=int, default=1, metavar="K",
                        help="each article K of the corpus's in a row (longer articles; default 1)")
    parser.add_argument("--zh", action="store_true", help="Chinese articles (words of jieba's dictionary)")
    args = parser.parse_args(argv)
    if args.join < 1 or (args.zh and args.join > 1):
        parser.error("--join must be 1 or more, and 1 with --zh")
    kind = "-zh" if args.zh else (f"-x{args.join}" if args.join > 1 else "")
    folder = CACHE / f"reindex-{args.n}{kind}"
    if args.prepare:
        prepare(args.n, folder, args.join, args.zh)
        return
    if not (folder / "kb.sqlite3").exists():
        again = " --zh" if args.zh else (f" --join {args.join}" if args.join > 1 else "")
        raise SystemExit(f"no prepared database for {args.n:,} articles: run with --prepare {args.n}{again} first")
    took, before, workers = run(args.n, folder, args.quiet)
    print(f"reindex of {args.n:,} articles: {took:.1f} s ({args.n / took:,.0f} articles/s); peak memory: "
          f"{peak_mb():.0f} MB in this process ({before:.0f} MB before the rebuild), {workers:.0f} MB in its largest "
          "child (sampled)")


if __name__ == "__main__":
    main()
