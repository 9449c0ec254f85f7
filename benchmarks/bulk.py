"""Published articles in bulk for the benchmarks: what ``create_article`` stores, a thousand rows a statement.

``create_article`` checks the slug, renders, flushes and queues each article on its own, which
makes 100,000 articles take most of an hour. Here the same rows (the article with its rendered
body, its first revision) go in with multi-row INSERTs on SQLite and PostgreSQL alike, and no
index change is queued: the benchmark indexes everything with one ``kb.search.rebuild``.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kb import render_cache  # noqa: E402
from kb.articles import ArticleDraft, slugify  # noqa: E402
from kb.db import session_scope  # noqa: E402
from kb.models import Article, Revision, utcnow  # noqa: E402
from kb.rendering import PRERENDER_THREADS  # noqa: E402

CHUNK = 1000


def article_row(index: int, item: dict, now) -> Article:
    """The column values of one published article, validated and rendered as ``create_article`` would."""
    draft = ArticleDraft(title=item["title"], body_md=item["body"], lang=item.get("lang", "en"),
                         category=item.get("category", "")).clean()
    # The index makes every slug unique, so no per-article lookup is needed.
    article = Article(slug=f"{slugify(draft.title)[:60] or 'article'}-{index}", title=draft.title,
                      body_md=draft.body_md, lang=draft.lang, category=draft.category, tags=draft.tags,
                      status="published", views=0, created_at=now, updated_at=now, published_at=now)
    return article


def _values(article: Article) -> dict:
    """The article's columns as an INSERT parameter set (every row the same keys: one statement a chunk)."""
    names = ("slug", "title", "body_md", "lang", "category", "tags", "status", "views", "created_at", "updated_at",
             "published_at", "body_html", "body_text", "render_key", "render_error")
    return {**{name: getattr(article, name) for name in names}, "index_error": ""}


def load(app, items: list[dict], out=sys.stderr) -> list[str]:
    """Insert ``items`` ({"title", "body", "category"}) as published articles; their slugs, in order."""
    now = utcnow()
    slugs: list[str] = []
    with ThreadPoolExecutor(max_workers=PRERENDER_THREADS, thread_name_prefix="bench-render") as pool:
        for start in range(0, len(items), CHUNK):
            articles = [article_row(start + k, item, now) for k, item in enumerate(items[start:start + CHUNK])]
            list(pool.map(render_cache.refresh, articles))  # the renderer runs in child processes
            with session_scope(app) as session:
                ids = session.scalars(sa.insert(Article).returning(Article.id, sort_by_parameter_order=True),
                                      [_values(a) for a in articles]).all()
                session.execute(sa.insert(Revision), [
                    {"article_id": article_id, "number": 1, "title": a.title, "body_md": a.body_md, "lang": a.lang,
                     "category": a.category, "tags": list(a.tags), "slug": a.slug, "status": a.status,
                     "pending": False, "note": "Created", "created_at": now} for article_id, a in zip(ids, articles)])
            slugs += [a.slug for a in articles]
            if len(items) > 10 * CHUNK and (start // CHUNK) % 10 == 9:
                print(f"    loaded {start + len(articles):,} / {len(items):,}", file=out, flush=True)
    return slugs
