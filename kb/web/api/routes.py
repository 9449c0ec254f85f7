"""The public JSON API: a stable contract that other tools rely on. Keep the shapes exactly.

- GET /api/search?q=&lang=&limit=&page= -> {query, total, page, per_page, pages, results: [...], suggestion, corrected}
- GET /api/articles/<slug>              -> {slug, title, lang, category, tags, body_markdown, body_html, updated_at}
- GET /api/suggest?q=&lang=&limit=      -> {query, suggestions: [{title, slug, url}]}

While the search index is being built (a new host, or after an upgrade), search answers from what
it has and adds ``notice``: a sentence, in the request's language, saying results may be missing.

``suggestion`` is the query with its typos corrected (or null); ``corrected`` says the results
already include matches for it, so a client shows "Showing results for ..." rather than asking
"Did you mean ...?". ``limit`` (also called ``per_page``) is 1..50, ``page`` 1..100; ``pages`` is how many pages there
are to fetch. Anything else (``page=abc``, ``-1``, ``1.5``, a parameter given twice, an unknown
``lang``) is a 400 with ``{"error"}`` saying what to send, so a typo never silently returns other
results than the ones asked for.
"""

from __future__ import annotations

from flask import abort, current_app, redirect, url_for
from flask_babel import gettext as _

from kb import articles as kb_articles
from kb import render_cache
from kb import search as kb_search
from kb.config import configured_languages
from kb.db import get_session
from kb.models import Article
from kb.web import pagecache
from kb.web.api import bp
from kb.web.i18n import offered_language
from kb.web.params import arg, one_of_args, whole_arg
from kb.web.portal.context import canonical_article_url

DEFAULT_LIMIT, MAX_LIMIT = 10, 50
DEFAULT_SUGGESTIONS, MAX_SUGGESTIONS = 8, 20


def _query_arg() -> str:
    """The ``q`` argument, NUL bytes and surrounding blanks removed."""
    return arg("q").replace("\x00", " ").strip()


def _lang_arg() -> str | None:
    """The ``lang`` argument as an offered code, None if absent; 400 if the portal doesn't offer it."""
    raw = arg("lang").strip()
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
    """Ranked search results with snippets, paging and an optional "did you mean" suggestion."""
    q, lang = _query_arg(), _lang_arg()
    per_page = whole_arg(one_of_args("limit", "per_page"), DEFAULT_LIMIT, 1, MAX_LIMIT)
    page = whole_arg("page", 1, 1, kb_search.MAX_PAGE)
    if not q:
        return {"query": "", "total": 0, "page": page, "per_page": per_page, "pages": 0, "results": [],
                "suggestion": None, "corrected": False}
    where = pagecache.entry(personal=False)
    kept = pagecache.get(where)
    if kept is not None:  # the same address at the same version: the same answer, logged again
        kb_search.log_search(get_session(), *kept.facts)
        return kept.body
    found = kb_search.search_articles(get_session(), q, lang=lang, page=page, per_page=per_page)
    results = [{"slug": r.article.slug, "title": r.article.title, "url": article_url(r.article),
                "snippet": r.snippet_html, "score": float(r.score), "lang": r.article.lang,
                "category": r.article.category} for r in found.results]
    answer = {"query": q, "total": int(found.total), "page": found.page, "per_page": found.per_page,
              "pages": found.pages, "results": results, "suggestion": found.suggestion, "corrected": found.corrected}
    if found.building:
        answer["notice"] = building_notice()
    else:
        pagecache.keep(where, answer, (q, found.lang, int(found.total), found.page))
    return answer


def building_notice() -> str:
    """What to tell a customer while the search index is being built."""
    return _("The search index is being built, so some articles may be missing from these results. "
             "Try again in a few minutes.")


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
    limit = whole_arg("limit", DEFAULT_SUGGESTIONS, 1, MAX_SUGGESTIONS)
    found = kb_search.suggest_titles(get_session(), q, lang=lang, limit=limit) if q else []
    return {"query": q, "suggestions": [{"title": a.title, "slug": a.slug, "url": article_url(a)} for a in found]}
