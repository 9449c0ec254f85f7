"""The rows of benchmarks/insights.py: a year of a busy shop, generated from a seeded random.Random.

Naive UTC times (what the database stores), oldest first so ids follow time as they do in life.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any, Iterable, Iterator

from kb.insights import sample_data
from kb.insights.searchlog import group_key

DAYS = 365
CHUNK = 20_000  # rows per executemany, and per weighted draw
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
            yield {"visitor": f"v{visitor}", "day": today - timedelta(days=days_ago),
                   "lang": rng.choice(("en", "nb", "zh")),
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
