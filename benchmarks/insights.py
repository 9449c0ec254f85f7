"""Insights query cost: every insights page, its CSV tables and its charts on a year of a busy shop.

Run:  .venv/bin/python benchmarks/insights.py                     (build, then time; SQLite)
      .venv/bin/python benchmarks/insights.py --reuse             (time again on the database built before)
      .venv/bin/python benchmarks/insights.py --purge --reuse     (also time the retention purge, on a copy)
      .venv/bin/python benchmarks/insights.py --database-url postgresql+psycopg://kb@127.0.0.1:PORT/postgres

The database holds 1,000,000 search-log rows over 365 days (a Zipf-like spread over a few thousand
distinct queries in en, zh and nb, grouped by stems), 100,000 mail records (email and contact form,
with outcomes, categories and senders who write again), and portal visits, votes and views per
article and day in proportion. It is bulk-inserted (executemany on SQLite, COPY on PostgreSQL) and
kept in --folder for --reuse (on PostgreSQL: the database itself). The pages are then fetched
through the Flask test client as an admin, with the default 30 days and with days=90: each page,
then every CSV link and chart image the page shows, --runs times each after one warm-up; the
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
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import click
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kb import agents, content, retention  # noqa: E402
from kb.autoreply.models import MailRecord  # noqa: E402
from kb.db import get_db, session_scope  # noqa: E402
from kb.insights import sample_data  # noqa: E402
from kb.insights.models import ArticleDay, PortalVisit  # noqa: E402
from kb.insights.sample import group_key  # noqa: E402
from kb.models import Article, SearchLog, Vote, utcnow  # noqa: E402
from kb.web import create_app  # noqa: E402

PAGES = ("/agent/insights", "/agent/insights/search", "/agent/insights/articles", "/agent/insights/team")
BUDGET_MS = 300
DAYS = 365
CHUNK = 20_000
ADMIN = "bench-admin@example.com"
MODIFIERS = {"en": ("", "please", "help", "jacket", "boots", "backpack", "tent", "online", "app", "norway",
                    "sweden", "today", "again", "status", "not working", "how long", "kids", "women", "men",
                    "store", "member", "gift", "sale", "urgent", "europe", "uk", "germany", "email", "phone",
                    "number", "week", "days", "order", "refund", "size", "colour", "black", "blue", "red",
                    "wool", "down", "shoes", "ski", "hiking", "running", "rain", "winter", "summer", "2nd time"),
             "nb": ("", "hjelp", "jakke", "sko", "sekk", "app", "butikk", "i dag", "igjen", "barn", "dame",
                    "herre", "medlem", "ull", "vinter", "sommer", "telt", "ski", "tur", "regn"),
             "zh": ("", "怎么办", "多久", "查询", "帮助", "外套", "鞋子", "背包", "今天", "还没有")}


def queries(rng: random.Random) -> list[tuple[str, str, str | None, str]]:
    """The distinct queries (lang, query, starter slug or None, group key), most searched first."""
    found = [(lang, f"{query} {extra}".strip(), slug) for lang, query, slug, _ in sample_data.QUERIES
             for extra in MODIFIERS[lang]]
    rng.shuffle(found)
    return [(lang, query, slug, group_key(query, lang)) for lang, query, slug in found]


def moments(rng: random.Random, n: int, now: datetime) -> Iterator[datetime]:
    """``n`` naive UTC moments spread over the last DAYS days, oldest first (ids follow time, as in life)."""
    start, step = now - timedelta(days=DAYS), timedelta(days=DAYS) / max(n, 1)
    for i in range(n):
        yield start + step * i + timedelta(seconds=rng.uniform(0, step.total_seconds()))


def search_rows(rng, n, now, articles) -> Iterator[dict[str, Any]]:
    """Search-log rows: Zipf-like queries, a third of the visitors come back, clicks at 1-5, contact."""
    found = queries(rng)
    weights = [1 / (rank + 1) ** 1.07 for rank in range(len(found))]
    cumulative = list(_accumulate(weights))
    ids, visitors = [a.id for a in articles.values()], max(1, n // 3)
    for at, (lang, query, slug, key) in zip(moments(rng, n, now), _choices(rng, found, cumulative, n)):
        results = rng.randint(1, 12) if slug in articles else 0
        position = rng.choices((1, 2, 3, 4, 5), (55, 20, 12, 8, 5))[0] if results and rng.random() < 0.6 else None
        clicked = None if position is None else (articles[slug].id if position == 1 else rng.choice(ids))
        yield {"query": query, "lang": lang, "results": results, "created_at": at,
               "updated_at": at + timedelta(seconds=rng.randint(0, 8)), "visitor": f"v{rng.randrange(visitors)}",
               "group_key": key, "clicked_article_id": clicked, "click_position": position,
               "contacted": rng.random() < (0.15 if results == 0 else 0.04)}


def _accumulate(values: Iterable[float]) -> Iterator[float]:
    """Running sums."""
    total = 0.0
    for value in values:
        total += value
        yield total


def _choices(rng, population, cumulative, n) -> Iterator[Any]:
    """``n`` weighted picks, drawn a chunk at a time."""
    for done in range(0, n, CHUNK):
        yield from rng.choices(population, cum_weights=cumulative, k=min(CHUNK, n - done))


def visit_rows(rng, n, now, visitors) -> Iterator[dict[str, Any]]:
    """Portal visits: one row per visitor and day, the day's share of ``n``."""
    today = now.date()
    per_day = max(1, n // DAYS)
    for days_ago in range(DAYS, 0, -1):
        for visitor in rng.sample(range(max(visitors, per_day)), per_day):
            searched = rng.random() < 0.7
            yield {"visitor": f"v{visitor}", "day": today - timedelta(days=days_ago), "lang": rng.choice(("en", "nb", "zh")),
                   "searched": searched, "viewed": rng.random() < 0.6, "contacted": rng.random() < 0.05,
                   "sample": False}


def mail_rows(rng, n, now, articles, admin_id) -> Iterator[dict[str, Any]]:
    """Mail records: 70 % email, 30 % contact form; answered ones with outcomes; senders write again."""
    slugs = list(articles)
    for i, at in enumerate(moments(rng, n, now)):
        article = articles[rng.choice(slugs)]
        answered, person = rng.random() < 0.85, rng.random() < 0.5
        outcome = rng.choices(("confirmed", "assumed", "reopened"), (34, 50, 16))[0] if answered else None
        outcome_at = at + {"confirmed": timedelta(hours=3), "assumed": timedelta(hours=72),
                           "reopened": timedelta(days=2), None: timedelta()}[outcome]
        outcome, outcome_at = (outcome, outcome_at) if outcome and outcome_at < now else (None, None)
        sender = f"c{rng.randrange(max(1, n // 10) if rng.random() < 0.6 else n)}@example.com"  # regulars
        yield {"dedupe_key": f"bench:{i}", "from_addr": sender, "reply_to": sender, "sender_key": sender,
               "subject": "Question about my order", "text": "Where is my parcel? It has been a week.",
               "lang": article.lang, "state": "replied" if answered else ("answered" if person else "person"),
               "channel": "email" if rng.random() < 0.7 else "web_form", "marked": True, "handling_attempts": 1,
               "matches": [{"article_id": article.id, "slug": article.slug, "title": article.title, "score": 0.4,
                            "terms": []}], "reply_message_id": f"<bench-reply-{i}@kb.invalid>" if answered else None,
               "answered_by": admin_id if person and not answered else None,
               "answered_at": at + timedelta(hours=2) if person and not answered else None,
               "outcome": outcome, "outcome_at": outcome_at, "category": article.category if answered else "",
               "created_at": at, "updated_at": at}


def vote_rows(rng, n, now, articles) -> Iterator[dict[str, Any]]:
    """Votes, a quarter "No" with a reason and a comment."""
    ids = [a.id for a in articles.values()]
    for i, at in enumerate(moments(rng, n, now)):
        helpful = rng.random() < 0.75
        reason, comment = ("", "") if helpful else rng.choice(sample_data.NO_VOTES)
        yield {"article_id": rng.choice(ids), "visitor": f"bv{i}", "helpful": helpful, "reason": reason,
               "comment": comment, "created_at": at}


def day_rows(rng, now, articles) -> Iterator[dict[str, Any]]:
    """Views of every article on every day."""
    for article in articles.values():
        for days_ago in range(DAYS, 0, -1):
            yield {"article_id": article.id, "day": now.date() - timedelta(days=days_ago),
                   "views": rng.randint(3, 120), "sample": False}


def insert(connection, table: sa.Table, rows: Iterable[dict[str, Any]], tick: Callable[[int], None]) -> int:
    """Bulk-insert ``rows``: COPY on PostgreSQL, executemany in chunks elsewhere; how many."""
    done, chunk = 0, []
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.dbapi_connection.cursor()
        rows = iter(rows)
        first = next(rows, None)
        if first is None:
            return 0
        names = list(first)
        jsons = {name for name in names if isinstance(table.c[name].type, sa.JSON)}
        with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in _chain(first, rows):
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
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("ANALYZE"))  # what autovacuum would have done by now
    if bar is not None:
        bar.__exit__(None, None, None)
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
    """Time each page (30 and 90 days), its CSV tables and charts; (url, status, median ms or None)."""
    results = []
    with app.test_client() as client:
        log_in(app, client)
        for page in PAGES:
            for query in ("", "?days=90"):
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
    """Time the retention purge of every row (a year at once), then of nothing left (the daily run after)."""
    if url.startswith("sqlite"):
        copy = folder / "purge.sqlite3"
        copy.unlink(missing_ok=True)
        with sqlite3.connect(folder / "kb.sqlite3") as source, sqlite3.connect(copy) as target:
            source.backup(target)  # the write-ahead log's pages too, unlike a file copy
        url = f"sqlite:///{copy}"
    app = make_app(folder, url)
    for label in ("a year at once", "again, nothing left"):
        started = time.perf_counter()
        with session_scope(app) as session:
            counts = retention.purge(session, utcnow() + timedelta(days=1))
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


if __name__ == "__main__":
    main()
