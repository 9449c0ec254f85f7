"""The public JSON API: a stable contract that other tools rely on. Keep the shapes exactly.

- GET /api/search?q=&lang=&limit=&page= -> {query, total, results: [...], suggestion}
- GET /api/articles/<slug>              -> {slug, title, lang, category, tags, body_markdown, body_html, updated_at}
- GET /api/suggest?q=&lang=             -> {query, suggestions: [{title, slug, url}]}

Bad ``limit``/``page`` values fall back to the defaults (limit is clamped to 1..50); an
unknown ``lang`` is a 400 with ``{"error"}``, so a typo does not silently search everything.
"""

from __future__ import annotations

from flask import abort, current_app, redirect, request, url_for
from flask_babel import gettext as _

from kb import articles as kb_articles
from kb import render_cache
from kb import search as kb_search
from kb.config import configured_languages
from kb.db import get_session
from kb.models import Article
from kb.web.api import bp
from kb.web.i18n import offered_language
from kb.web.portal.context import canonical_article_url

DEFAULT_LIMIT, MAX_LIMIT = 10, 50
DEFAULT_SUGGESTIONS, MAX_SUGGESTIONS = 8, 20
MAX_PAGE = 1000


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    """An integer query argument clamped to [low, high]; missing or not a number gives ``default``."""
    raw = request.args.get(name, "").strip()
    try:
        value = int(raw)
    except ValueError:
        return default
    return min(max(value, low), high)


def _query_arg() -> str:
    """The ``q`` argument, NUL bytes and surrounding blanks removed."""
    return request.args.get("q", "").replace("\x00", " ").strip()


def _lang_arg() -> str | None:
    """The ``lang`` argument as an offered code, None if absent; 400 if the portal doesn't offer it."""
    raw = request.args.get("lang", "").strip()
    if not raw:
        return None
    lang = offered_language(raw)
    if lang is None:
        offered = ", ".join(configured_languages(current_app.config))
        abort(400, description=_("Unknown language \"%(lang)s\": use one of %(offered)s, or leave lang out.",
                                 lang=raw[:20], offered=offered))
    return lang


def article_url(article: Article) -> str:
    """The article's absolute portal URL in its own language, from BASE_URL."""
    return canonical_article_url(article)


@bp.get("/search")
def search():
    """Ranked search results with snippets and an optional "did you mean" suggestion."""
    q, lang = _query_arg(), _lang_arg()
    limit = _int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    page = _int_arg("page", 1, 1, MAX_PAGE)
    if not q:
        return {"query": "", "total": 0, "results": [], "suggestion": None}
    session = get_session()
    found = kb_search.search_articles(session, q, lang=lang, page=page, per_page=limit)
    results = [{"slug": r.article.slug, "title": r.article.title, "url": article_url(r.article),
                "snippet": r.snippet_html, "score": float(r.score), "lang": r.article.lang,
                "category": r.article.category} for r in found.results]
    return {"query": q, "total": int(found.total), "results": results, "suggestion": found.suggestion}


@bp.get("/articles/<slug>")
def article(slug: str):
    """One published article as Markdown and sanitised HTML; an old slug redirects to the new one."""
    session = get_session()
    found, new_slug = kb_articles.resolve_public(session, slug)
    if new_slug:
        return redirect(url_for("api.article", slug=new_slug), 301)
    if found is None:
        abort(404, description=_("No published article has the slug \"%(slug)s\".", slug=slug[:200]))
    body_html = render_cache.article_html(session, found)  # cached: no Markdown rendering per request
    session.commit()
    return {"slug": found.slug, "title": found.title, "lang": found.lang, "category": found.category,
            "tags": list(found.tags or []), "body_markdown": found.body_md,
            "body_html": body_html, "updated_at": found.updated_at.isoformat()}


@bp.get("/suggest")
def suggest():
    """Published titles matching what the customer has typed so far, for instant search."""
    q, lang = _query_arg()[:100], _lang_arg()
    limit = _int_arg("limit", DEFAULT_SUGGESTIONS, 1, MAX_SUGGESTIONS)
    found = kb_search.suggest_titles(get_session(), q, lang=lang, limit=limit) if q else []
    return {"query": q, "suggestions": [{"title": a.title, "slug": a.slug, "url": article_url(a)} for a in found]}
