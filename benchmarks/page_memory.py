"""Memory of kept pages: one process serves every article page of a site of long articles once.

Run:  .venv/bin/python benchmarks/page_memory.py [--articles 400] [--joins 60] [--mb 64]

The articles are corpus.py's, each ``--joins`` of them in a row (60: about 7,700 words, a page of
about 70 KB), loaded into a throwaway SQLite database once per run. One process (the Flask test
client, cookies off: every view is a new visitor's, so every page may be kept) then opens each
article page once and prints its resident memory before and after, and what the page cache holds:
the pages' size against KB_PAGE_CACHE_MB (``--mb``). Each page costs its render once either way.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bulk import load  # noqa: E402
from corpus import CACHE  # noqa: E402
from corpus import joined_articles  # noqa: E402

SECRET = "page-memory-benchmark-secret-0123456789-abcdef"


def rss_mb() -> float:
    """This process's resident memory now, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_app(folder: Path, mb: float):
    """The site's app: no threads, the page cache of ``mb`` MB in this process only."""
    from kb.web import create_app

    return create_app({"DATABASE_URL": f"sqlite:///{folder}/kb.sqlite3", "INDEX_DIR": str(folder / "index"),
                       "INSTANCE_DIR": str(folder), "SECRET_KEY": SECRET, "STARTER_ARTICLES_DIR": "",
                       "INDEXER": False, "JOBS_RUNNER": False, "PAGE_CACHE_MB": mb, "PAGE_CACHE_SHARED": False})


def prepare(folder: Path, articles: int, joins: int) -> None:
    """The site in ``folder``: ``articles`` published articles of ``joins`` corpus articles each, indexed."""
    from kb import search

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    app = make_app(folder, 64)
    print(f"... loading {articles} articles of {joins} corpus articles each into {folder}", file=sys.stderr)
    load(app, joined_articles(articles, joins))
    search.rebuild(app)
    (folder / "ready").write_text("")


def serve(folder: Path, mb: float) -> None:
    """Open every article page once in this (new) process; print memory and the cache's contents."""
    import sqlalchemy as sa

    from kb.web import pagecache

    app = make_app(folder, mb)
    with app.app_context():
        from kb.db import get_session
        from kb.models import Article
        slugs = list(get_session().scalars(sa.select(Article.slug).order_by(Article.id)))
    client = app.test_client(use_cookies=False)
    client.get(f"/en/articles/{slugs[0]}")  # templates, imports, the index: not the pages' memory
    before, started, served = rss_mb(), time.perf_counter(), 0
    for slug in slugs:
        response = client.get(f"/en/articles/{slug}")
        assert response.status_code == 200, response.status_code
        served += len(response.data)
    took = time.perf_counter() - started
    cache = app.extensions[pagecache.KEY]
    held = getattr(cache, "bytes", None)  # not counted before KB_PAGE_CACHE_MB
    print(f"{len(slugs)} article pages, {served / len(slugs) / 1024:.0f} KB each on average, served once in "
          f"{took:.1f} s: resident memory {before:.0f} -> {rss_mb():.0f} MB; the page cache keeps "
          f"{len(cache.items)} pages" + (f", {held / 2**20:.1f} MB (KB_PAGE_CACHE_MB={mb:g})" if held is not None else ""))


def main(argv: list[str] | None = None) -> None:
    """Prepare the site once, then measure in a new process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--joins", type=int, default=60, help="corpus articles in each article (its length)")
    parser.add_argument("--mb", type=float, default=64, help="KB_PAGE_CACHE_MB")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the measuring child
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.mb)
        return
    folder = CACHE / f"pages-{args.articles}-x{args.joins}"
    if not (folder / "ready").exists():
        prepare(folder, args.articles, args.joins)
    subprocess.run([sys.executable, __file__, "--serve", str(folder), "--mb", str(args.mb)], check=True)


if __name__ == "__main__":
    main()
