"""Insights query cost: every insights page, its CSV tables and its charts on a year of a busy shop.

Run:  .venv/bin/python benchmarks/insights.py                     (build, then time; SQLite)
      .venv/bin/python benchmarks/insights.py --reuse             (time again on the database built before)
      .venv/bin/python benchmarks/insights.py --purge --reuse     (also time the retention purge: SQLite on a
                                                                   copy, PostgreSQL in place, then rebuild)
      .venv/bin/python benchmarks/insights.py --database-url postgresql+psycopg://kb@127.0.0.1:PORT/postgres

The database holds 1,000,000 search-log rows over 365 days (a Zipf-like spread over a few thousand
distinct queries in en, zh and nb, grouped by stems), 100,000 mail records (email and contact form,
with outcomes, categories and senders who write again), and portal visits, votes and views per
article and day in proportion. It is bulk-inserted (executemany on SQLite, COPY on PostgreSQL) and
kept in --folder for --reuse (on PostgreSQL: the database itself); the past days are then rolled
up (kb.insights.rollup) as the daily job would have. The pages are then fetched
through the Flask test client as an admin, with the default 30 days and with days=90: each page,
(the dashboard and the search page also with a custom 365-day period), then every CSV link
and chart image the page shows, --runs times each after one warm-up; the
median is printed with "ok" when under 300 ms. A page the app does not have prints "missing".
"""

from __future__ import annotations

import argparse
import html
import json
import random
import re
import shutil
import sqlite3
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import click
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.insights_rows import (CHUNK, DAYS, day_rows, mail_rows, search_rows, visit_rows,  # noqa: E402
                                      vote_rows)
from kb import agents, content, retention  # noqa: E402
from kb.autoreply.models import MailRecord  # noqa: E402
from kb.db import get_db, session_scope  # noqa: E402
from kb.insights import rollup  # noqa: E402
from kb.insights.models import ArticleDay, PortalVisit  # noqa: E402
from kb.models import Article, SearchLog, Vote, utcnow  # noqa: E402
from kb.web import create_app  # noqa: E402

PAGES = ("/agent/insights", "/agent/insights/search", "/agent/insights/articles", "/agent/insights/team")
LONG_PAGES = ("/agent/insights", "/agent/insights/search")  # also timed on a custom 365-day period
BUDGET_MS = 300
ADMIN = "bench-admin@example.com"
def insert(connection, table: sa.Table, rows: Iterable[dict[str, Any]], tick: Callable[[int], None]) -> int:
    """Bulk-insert ``rows``: COPY on PostgreSQL, executemany in chunks elsewhere; how many."""
    done, chunk = 0, []
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.dbapi_connection.cursor()
        rows = iter(rows)
        first = next(rows, None)
        if first is None:
            return 0
        # COPY skips SQLAlchemy's Python-side defaults: write the plain ones the rows leave out.
        defaults = {c.name: c.default.arg for c in table.c
                    if c.name not in first and c.default is not None and c.default.is_scalar}
        names = list(first) + list(defaults)
        jsons = {name for name in names if isinstance(getattr(table.c[name].type, "impl", table.c[name].type), sa.JSON)}
        with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in _chain(first, rows):
                row = {**row, **defaults}
                copy.write_row([json.dumps(row[k]) if k in jsons else row[k] for k in names])
                done += 1
                if done % CHUNK == 0:
                    tick(CHUNK)
        tick(done % CHUNK)
        return done
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            connection.execute(table.insert(), chunk)
            done, chunk = done + len(chunk), []
            tick(CHUNK)
    if chunk:
        connection.execute(table.insert(), chunk)
        tick(len(chunk))
    return done + len(chunk)


def _chain(first, rest) -> Iterator[Any]:
    """``first``, then the rest."""
    yield first
    yield from rest


def make_app(folder: Path, url: str):
    """An app on the benchmark database: no indexer thread, no job runner."""
    return create_app({"SECRET_KEY": "bench-secret-key-long-enough-0123456789abcdef", "INSTANCE_DIR": str(folder),
                       "DATABASE_URL": url, "INDEX_DIR": str(folder / "index"), "INDEXER": False,
                       "JOBS_RUNNER": False, "SAMPLE_DATA": False})


def build(app, searches: int, mails: int, now: datetime | None = None, progress: bool = False) -> dict[str, int]:
    """Fill an empty database: starter articles, an admin, and the rows in proportion; the counts."""
    now = (now or utcnow()).replace(tzinfo=None)
    content.bootstrap(app)
    with session_scope(app) as session:
        admin = agents.create_agent(session, email=ADMIN, name="Bench admin", role="admin", password="bench-password-1")
        session.flush()
        admin_id = admin.id
        articles = {a.slug: a for a in session.scalars(sa.select(Article))}
    rng = random.Random(10)
    visits, votes = searches * 7 // 10, searches // 50
    plan = ((SearchLog, lambda: search_rows(rng, searches, now, articles)),
            (PortalVisit, lambda: visit_rows(rng, visits, now, searches // 3)),
            (MailRecord, lambda: mail_rows(rng, mails, now, articles, admin_id)),
            (Vote, lambda: vote_rows(rng, votes, now, articles)), (ArticleDay, lambda: day_rows(rng, now, articles)))
    total = searches + visits // DAYS * DAYS + mails + votes + len(articles) * DAYS
    bar = click.progressbar(length=total, label="Building", file=sys.stderr) if progress else None
    counts = {}
    with get_db(app).engine.begin() as connection:
        if bar is not None:
            bar.__enter__()
        for model, rows in plan:
            counts[model.__tablename__] = insert(connection, model.__table__, rows(),
                                                 bar.update if bar is not None else lambda n: None)
    if bar is not None:
        bar.__exit__(None, None, None)
    with session_scope(app) as session:  # the past days' roll-up, as the daily job would have built it
        rollup.roll_up(session, now.replace(tzinfo=timezone.utc), limit=DAYS + 2)
    with get_db(app).engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("ANALYZE"))  # what autovacuum would have done by now
    return counts


def log_in(app, client) -> None:
    """Make the test client's session the benchmark admin's."""
    with session_scope(app) as session:
        admin = agents.get_agent_by_email(session, ADMIN)
        agent_id, version = admin.id, admin.session_version
    with client.session_transaction() as cookie:
        cookie.update(agent_id=agent_id, agent_version=version, agent_since=int(time.time()))


def links(page: str, body: str) -> list[str]:
    """The CSV links and chart images a page shows, on its own insights URLs."""
    found = re.findall(r'(?:href|src)="([^"]+)"', body)
    wanted = [html.unescape(u) for u in found if "format=csv" in u or "/chart/" in u]
    return sorted({u for u in wanted if u.startswith("/agent/insights")})


def time_url(client, url: str, runs: int) -> tuple[int, float]:
    """(status, median milliseconds) of ``runs`` requests after one warm-up."""
    status = client.get(url).status_code
    spent = []
    for _ in range(runs):
        started = time.perf_counter()
        status = client.get(url).status_code
        spent.append((time.perf_counter() - started) * 1000)
    return status, statistics.median(spent)


def time_pages(app, runs: int, out: Callable[[str], None] = print) -> list[tuple[str, int, float | None]]:
    """Time each page (30 and 90 days; LONG_PAGES also 365), its CSV tables and charts; (url, status, median ms)."""
    results = []
    today = utcnow().date()
    year = f"?from={(today - timedelta(days=364)).isoformat()}&to={today.isoformat()}"
    with app.test_client() as client:
        log_in(app, client)
        for page in PAGES:
            for query in ("", "?days=90") + ((year,) if page in LONG_PAGES else ()):
                first = client.get(page + query)
                if first.status_code == 404:
                    results.append((page + query, 404, None))
                    out(f"{'missing':>10}          {page + query}")
                    continue
                for url in [page + query] + links(page, first.get_data(as_text=True)):
                    status, median = time_url(client, url, runs)
                    verdict = "ok" if status == 200 and median < BUDGET_MS else ("SLOW" if status == 200 else
                                                                                f"error {status}")
                    results.append((url, status, median))
                    out(f"{median:8.1f} ms  {verdict:<7} {url}")
    return results


def time_purge(folder: Path, url: str) -> None:
    """Time the retention purge of all but the last day's rows (a year at once), then the daily run after it."""
    if url.startswith("sqlite"):
        copy = folder / "purge.sqlite3"
        copy.unlink(missing_ok=True)
        with sqlite3.connect(folder / "kb.sqlite3") as source, sqlite3.connect(copy) as target:
            source.backup(target)  # the write-ahead log's pages too, unlike a file copy
        url = f"sqlite:///{copy}"
    app = make_app(folder, url)
    now = utcnow()
    for label, before, since in (("a year at once", now - timedelta(days=1), None),
                                 ("the next day's run", now + timedelta(minutes=1), now - timedelta(days=2))):
        started = time.perf_counter()
        with session_scope(app) as session:
            counts = retention.purge(session, before, since=since)
        print(f"purge, {label}: {time.perf_counter() - started:.1f} s, {dict(counts)}")


def main() -> None:
    """Build (or reuse) the database, then time the pages."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="", help="default: SQLite in --folder")
    parser.add_argument("--folder", default="/tmp/kb-bench-insights", type=Path)
    parser.add_argument("--reuse", action="store_true", help="time the database built before")
    parser.add_argument("--searches", type=int, default=1_000_000)
    parser.add_argument("--mails", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--purge", action="store_true", help="also time the retention purge (SQLite: on a copy)")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{args.folder / 'kb.sqlite3'}"
    marker = args.folder / "built.json"
    wanted = {"url": url, "searches": args.searches, "mails": args.mails}
    if not (args.reuse and marker.exists() and json.loads(marker.read_text()) == wanted):
        if args.database_url:
            print("building into", args.database_url.split("@")[-1], "(it must be empty)")
        else:
            shutil.rmtree(args.folder, ignore_errors=True)
        args.folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        counts = build(make_app(args.folder, url), args.searches, args.mails, progress=True)
        print(f"built in {time.perf_counter() - started:.0f} s: {counts}")
        marker.write_text(json.dumps(wanted))
    app = make_app(args.folder, url)
    print(f"median of {args.runs} runs, budget {BUDGET_MS} ms")
    time_pages(app, args.runs)
    if args.purge:
        time_purge(args.folder, url)
        if args.database_url:  # purged in place: its searches lost their words, so --reuse may not time it again
            marker.unlink()


if __name__ == "__main__":
    main()
