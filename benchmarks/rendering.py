"""Rendering benchmark: poison Markdown render times, and article page views per second.

Run:  .venv/bin/python benchmarks/rendering.py                (both parts)
      .venv/bin/python benchmarks/rendering.py --views-only   (only the page views)
      .venv/bin/python benchmarks/rendering.py --cap 60       (give up on one poison input after 60 s)
      .venv/bin/python benchmarks/rendering.py --import 1000  (also time `kb import` of 1,000 files)

Each poison input is rendered with ``kb.rendering.render_markdown`` in a child process of this
script, killed after ``--cap`` seconds, so a hang or a crash is a figure and not the end of the
run (after one untimed warm-up render, so kb's own renderer process is already running). Page views go through the Flask test client on the starter articles in a temporary SQLite
database (each view also counts the view in the database, as in production), one thread, and on
one long article (the README five times, about 200 KB of Markdown).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REPO = Path(__file__).resolve().parent.parent

POISON = {
    "2,000 * + x + 2,000 * (4 KB)": "*" * 2000 + "x" + "*" * 2000,
    "list nested 300 levels": "".join("    " * i + "- a\n" for i in range(300)),
    "blockquotes nested 1,000 lines": "".join(">" * i + " x\n" for i in range(1, 1000)),
    "15 KB of [": "[" * 15000,
    "500 KB of <div>": "<div>" * 100000,
    "links nested 5,000": "[" * 5000 + "x" + "](y)" * 5000,
    "30,000 thematic breaks in one block": "- - -\n" * 30000,
    "5,000 identical headings": "# h\n" * 5000,
    "reference links 10,000": "".join(f"[r{i}]: http://x/{i}\n" for i in range(10000))
                              + "".join(f"[a][r{i}] " for i in range(10000)),
}


def _render_in_child(text: str, queue) -> None:
    """Render once and report (outcome, seconds) to the parent."""
    from kb.rendering import render_markdown

    render_markdown("warm *up*")  # kb's renderer process is running before the clock starts
    started = time.perf_counter()
    try:
        render_markdown(text)
        outcome = "ok"
    except BaseException as exc:  # noqa: BLE001 - the figure is what happened
        outcome = type(exc).__name__
    queue.put((outcome, time.perf_counter() - started))


def poison_times(cap: float) -> None:
    """Print the time each poison input takes to render (or that it was killed at ``cap``)."""
    print(f"{'poison input':40s} {'size':>9s} {'seconds':>8s}  outcome")
    for name, text in POISON.items():
        queue = multiprocessing.Queue()
        child = multiprocessing.Process(target=_render_in_child, args=(text, queue))
        child.start()
        child.join(cap)
        if child.is_alive():
            child.kill()
            child.join()
            print(f"{name:40s} {len(text):>9,d} {'>' + str(int(cap)):>8s}  killed")
        else:
            outcome, seconds = queue.get()
            print(f"{name:40s} {len(text):>9,d} {seconds:8.3f}  {outcome}")


def page_views(seconds: float) -> None:
    """Print article page views per second through the Flask test client."""
    from kb.web import create_app

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"TESTING": True, "SECRET_KEY": "x" * 40, "INSTANCE_DIR": f"{tmp}/instance",
                          "DATABASE_URL": f"sqlite:///{tmp}/kb.sqlite3", "INDEX_DIR": f"{tmp}/index",
                          "INDEXER": False, "STARTER_ARTICLES_DIR": str(REPO / "articles")})
        from kb.content import bootstrap

        bootstrap(app)
        from kb.articles import ArticleDraft, create_article
        from kb.db import session_scope

        with session_scope(app) as session:  # a long article: the README five times (about 200 KB)
            readme = (REPO / "README.md").read_text(encoding="utf-8")
            create_article(session, ArticleDraft("Long article", "\n\n".join([readme] * 5), slug="long-article"),
                           status="published")
        client = app.test_client()
        for slug in ("refund-timelines", "reset-password", "long-article"):
            url = f"/articles/{slug}"
            assert client.get(url).status_code == 200, url
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                client.get(url)
                count += 1
            elapsed = time.perf_counter() - started
            print(f"GET {url}: {count / elapsed:.1f} views/s ({count} views in {elapsed:.1f} s)")
        app.extensions["kb.search"].close()


def import_time(count: int) -> None:
    """Print how long importing ``count`` article files of real prose takes, then indexing them."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from corpus import build_articles
    from kb import search
    from kb.content import import_path
    from kb.db import session_scope
    from kb.web import create_app

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp, "files")
        folder.mkdir()
        for n, article in enumerate(build_articles(count)):
            title = json.dumps(f"{n} {article['title']}")  # JSON strings are valid YAML
            (folder / f"a{n}.md").write_text(f"---\ntitle: {title}\nslug: a{n}\n---\n{article['body']}\n")
        app = create_app({"TESTING": True, "SECRET_KEY": "x" * 40, "INSTANCE_DIR": f"{tmp}/instance",
                          "DATABASE_URL": f"sqlite:///{tmp}/kb.sqlite3", "INDEX_DIR": f"{tmp}/index",
                          "INDEXER": False, "STARTER_ARTICLES_DIR": ""})
        started = time.perf_counter()
        with session_scope(app) as session:
            report = import_path(session, folder)
        imported = time.perf_counter() - started
        search.process_outbox(app)
        indexed = time.perf_counter() - started - imported
        print(f"kb import of {count:,} files: {imported:.1f} s ({count / imported:.0f} files/s), "
              f"then indexing {indexed:.1f} s; created {report.created}, failed {report.failed}")
        app.extensions["kb.search"].close()


def main() -> None:
    """Parse the arguments and run the parts asked for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=float, default=60.0, help="seconds before a poison render is killed")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of page views per article")
    parser.add_argument("--views-only", action="store_true")
    parser.add_argument("--import", dest="import_count", type=int, default=0, metavar="N",
                        help="also time importing N article files")
    args = parser.parse_args()
    if not args.views_only:
        poison_times(args.cap)
    page_views(args.seconds)
    if args.import_count:
        import_time(args.import_count)


if __name__ == "__main__":
    main()
