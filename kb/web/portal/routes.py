"""Portal pages for customers: home, search, categories, articles, votes and the sitemap.

Views stay thin: the queries live in kb.catalog, kb.feedback, kb.articles and kb.search.
"""

from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for

from kb import articles as kb_articles
from kb import catalog, feedback
from kb import search as kb_search
from kb.db import get_session
from kb.rendering import render_markdown
from kb.web.params import arg, whole_arg
from kb.web.portal import bp
from kb.web.portal.context import (ALL_LANGUAGES, chosen_language, layout_context, page_numbers,
                                   remember_language, visitor_id)
from kb.web.portal.sitemap import sitemap_xml
from kb.web.portal import feedback_links  # noqa: F401  (registers the auto-reply feedback links)

HOME_LIST_SIZE = 5

bp.before_request(remember_language)
bp.app_context_processor(layout_context)


@bp.get("/")
def home():
    """Search box, categories with counts, most viewed and most helpful articles."""
    session, lang = get_session(), chosen_language()
    most_viewed = catalog.most_viewed(session, lang, HOME_LIST_SIZE)
    # A new help centre has no views yet: show what changed last rather than nothing.
    recent = [] if most_viewed else kb_articles.published_articles(session, lang=lang, limit=HOME_LIST_SIZE)
    return render_template("portal/home.html", categories=catalog.categories(session, lang),
                           most_viewed=most_viewed, recent=recent,
                           most_helpful=catalog.most_helpful(session, lang, HOME_LIST_SIZE))


@bp.get("/search")
def search():
    """Ranked results with snippets, filters, pages, "did you mean" and a helpful zero-results page."""
    q = " ".join(arg("q").replace("\x00", " ").split())
    if not q:
        return redirect(url_for("portal.home"))
    session, lang = get_session(), chosen_language()
    page = whole_arg("page", 1, 1, kb_search.MAX_PAGE)
    category_slug = arg("category")
    category = catalog.category_by_slug(session, category_slug) if category_slug else None
    if category_slug and category is None:
        abort(400, description=f"There is no topic {category_slug[:50]!r}. Search again and choose a topic "
                               "from the list, or search all topics.")
    result = kb_search.search_articles(session, q, lang=lang, category=category, page=page,
                                       per_page=current_app.config["SEARCH_PAGE_SIZE"])
    last_page = max(1, result.pages)
    popular = [] if result.total else _popular(session, lang)
    return render_template("portal/search.html", q=q, result=result, lang=lang,
                           category=category, category_slug=category_slug if category else "",
                           categories=catalog.categories(session, lang), popular=popular,
                           last_page=last_page, pages=page_numbers(result.page, last_page),
                           all_languages=ALL_LANGUAGES)


def _popular(session, lang: str | None) -> list:
    """Articles to offer when nothing matched: the most read, else the newest."""
    articles = catalog.most_viewed(session, lang, HOME_LIST_SIZE) or catalog.most_viewed(session, None, HOME_LIST_SIZE)
    return articles or kb_articles.published_articles(session, lang=lang, limit=HOME_LIST_SIZE)


@bp.get("/categories/<slug>")
def category(slug: str):
    """The published articles of one category (in the chosen language when it has any)."""
    session, lang = get_session(), chosen_language()
    name = catalog.category_by_slug(session, slug)
    if name is None:
        abort(404, description="There is no such category. It may have been renamed.")
    articles = kb_articles.published_articles(session, lang=lang, category=name) if lang else []
    articles = articles or kb_articles.published_articles(session, category=name)
    articles.sort(key=lambda a: a.title.casefold())
    return render_template("portal/category.html", name=name, slug=slug, articles=articles)


def _published_or_404(slug: str, *, follow: bool = False):
    """The published article for ``slug``; an old slug 301s to the new URL (or is followed)."""
    session = get_session()
    article, new_slug = kb_articles.resolve_public(session, slug)
    if new_slug and follow:
        article = kb_articles.get_article(session, new_slug)
    elif new_slug:
        abort(redirect(url_for("portal.article", slug=new_slug), 301))
    if article is None:
        abort(404, description="This article does not exist or is no longer published.")
    return article


@bp.get("/articles/<slug>")
def article(slug: str):
    """The rendered article, its breadcrumb, related articles and the helpful vote form."""
    session = get_session()
    art = _published_or_404(slug)
    if request.method == "GET":
        catalog.record_view(session, art)
        session.commit()
    return render_template("portal/article.html", article=art, page_lang=art.lang,
                           body_html=render_markdown(art.body_md),
                           category_slug=catalog.category_slug(art.category) if art.category else "",
                           related=kb_search.related_articles(session, art, limit=5),
                           voted=feedback.has_voted(session, art, visitor_id()))


@bp.post("/articles/<slug>/vote")
def vote(slug: str):
    """Record "Was this helpful?" once per visitor session, then go back to the article."""
    session = get_session()
    art = _published_or_404(slug, follow=True)
    answer = request.form.get("helpful", "")
    if answer not in ("yes", "no"):
        abort(400, description="Choose Yes or No to tell us whether the article helped.")
    recorded = feedback.record_vote(session, art, visitor_id(create=True), answer == "yes",
                                    request.form.get("comment", ""))
    session.commit()
    if recorded is None:
        flash("You already told us about this article. Thank you!", "info")
    else:
        flash("Thanks for your feedback!", "success")
    return redirect(url_for("portal.article", slug=art.slug, _anchor="feedback"), 303)


@bp.get("/sitemap.xml")
def sitemap():
    """The sitemap of every public page, with absolute URLs from BASE_URL."""
    xml = sitemap_xml(catalog.sitemap_entries(get_session()), current_app.config["BASE_URL"])
    return Response(xml, mimetype="application/xml")
