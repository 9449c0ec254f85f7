"""Portal pages for customers, each under its language: /<lang>/, search, categories, articles, votes.

Views stay thin: the queries live in kb.catalog, kb.feedback, kb.articles and kb.search. The
page's language (the URL's) is the interface language; which articles a search covers is a
separate, per-search filter (``?lang=``), never remembered.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from kb import articles as kb_articles
from kb import catalog, feedback, render_cache
from kb import search as kb_search
from kb.db import get_session
from kb.errors import ValidationError
from kb.followup import sources
from kb.followup.models import VOTE_REASONS
from kb.web import pagecache
from kb.web.i18n import LANGUAGE_ARG, current_language, offered_language
from kb.web.params import arg, whole_arg
from kb.web.portal import bp
from kb.web.portal import counting, listings
from kb.web.portal.context import canonical_article_url, layout_context, page_numbers, visitor_id

HOME_LIST_SIZE = 5
PAGE = "/<lang:lang_code>"  # every page's address starts with its language

bp.app_context_processor(layout_context)


@bp.url_value_preprocessor
def _drop_language(_endpoint, values) -> None:
    """The views read the language from Flask-Babel, not from an argument."""
    if values:
        values.pop(LANGUAGE_ARG, None)


@bp.get(PAGE + "/")
def home():
    """Search box, topics with counts, most viewed and most helpful articles, in the page's language first."""
    session, lang = get_session(), current_language()
    lists = catalog.home_lists(session, lang, HOME_LIST_SIZE)
    return render_template("portal/home.html", topics=catalog.topics(session, lang), most_viewed=lists.most_viewed,
                           recent=lists.recent, most_helpful=lists.most_helpful)


@bp.get(PAGE + "/search")
def search():
    """Ranked results with snippets, filters, pages, "did you mean" and a helpful zero-results page."""
    q = " ".join(arg("q").replace("\x00", " ").split())
    if not q:
        return redirect(url_for("portal.home"))
    where = pagecache.entry()
    kept = pagecache.get(where)
    if kept is not None:  # this address at this version: only the logging and the links' search id are new
        search_id = counting.note_search(*kept.facts)
        if search_id is not None:
            return pagecache.fill(kept.body, search_id)
    # Not kept, or its logging failed: made as ever (logging is tried once more; links without an id if it fails).
    session = get_session()
    content_lang = offered_language(arg("lang"))  # only when this search asks for it
    page = whole_arg("page", 1, 1, kb_search.MAX_PAGE)
    category_slug = arg("category")
    category = listings.category_by_slug(session, category_slug) if category_slug else None
    if category_slug and category is None:
        abort(400, description=_("There is no topic \"%(topic)s\". Search again and choose a topic from the list, "
                                 "or search all topics.", topic=category_slug[:50]))
    result = kb_search.search_articles(session, q, lang=content_lang, category=category, page=page,
                                       per_page=current_app.config["SEARCH_PAGE_SIZE"], log=False)
    facts = (result.query, result.lang, result.total, result.page)
    search_id = counting.note_search(*facts)  # its id goes into the result links, for click tracking
    result.search_id = pagecache.SEARCH_ID_HOLE if search_id is not None else None
    last_page = max(1, result.pages)
    popular = [] if result.total else catalog.popular(session, current_language(), HOME_LIST_SIZE)
    body = render_template("portal/search.html", q=q, result=result, content_lang=content_lang,
                           category=category, category_slug=category_slug if category else "",
                           topic_options=listings.topic_options(session, content_lang, category_slug if category else ""),
                           popular=popular,
                           last_page=last_page, pages=page_numbers(result.page, last_page))
    if search_id is not None and result.total and not result.building:  # "popular" follows views: not kept
        pagecache.keep(where, body, facts)
    return pagecache.fill(body, search_id)


@bp.get(PAGE + "/categories/<slug>")
def category(slug: str):
    """The published articles of one category, those in the page's language first."""
    session = get_session()
    name = listings.category_by_slug(session, slug)
    if name is None:
        abort(404, description=_("There is no such category. It may have been renamed."))
    articles = catalog.category_articles(session, name, current_language())
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
        abort(404, description=_("This article does not exist or is no longer published."))
    return article


def _article_page(art, *, form=None, errors=None, status: int = 200, where: pagecache.Entry | None = None):
    """The article page; ``form`` and ``errors`` re-show a refused vote with the message at its field.

    A new visitor's plain page is kept at ``where`` (kb.web.pagecache).
    """
    session = get_session()
    body_html = render_cache.article_html(session, art)  # cached: a page view does not render Markdown
    session.commit()
    # A visitor whose id this page creates cannot have voted: no query (most first views, every script).
    known, _created = visitor_id(), visitor_id(create=True)
    body = render_template("portal/article.html", article=art, body_html=body_html,
                           canonical_url=canonical_article_url(art),
                           category_slug=catalog.category_slug(art.category) if art.category else "",
                           related=kb_search.related_articles(session, art, limit=5),
                           voted=feedback.has_voted(session, art, known),
                           vote_reasons=vote_reason_labels(), form=form or {}, errors=errors or {})
    pagecache.keep(where, body)  # given only for a new visitor's plain page (the view decides)
    return body, status


def vote_reason_labels() -> list[tuple[str, str]]:
    """The reasons a visitor can give for a "No", with their labels in the page's language."""
    labels = {"not_answered": _("It didn't answer my question"), "hard_to_follow": _("It was hard to follow"),
              "out_of_date": _("It is out of date"), "other": _("Other")}
    return [(reason, labels[reason]) for reason in VOTE_REASONS]


@bp.get(PAGE + "/articles/<slug>")
def article(slug: str):
    """The rendered article, its breadcrumb, related articles and the helpful vote form.

    The view is counted by the page's counter image (kb.web.portal.counting), not here; a link
    from the search page (``?search=<id>&pos=<n>``) records which result the visitor opened.
    """
    # A click from the search page is recorded, and a returning visitor may see their vote: both rendered.
    where = pagecache.entry() if not request.args and visitor_id() is None else None
    kept = pagecache.get(where)
    if kept is not None:
        visitor_id(create=True)  # as a render would: the page's vote form is this new visitor's
        return pagecache.fill(kept.body)
    art = _published_or_404(slug)
    counting.record_click(art)
    return _article_page(art, where=where)


@bp.post(PAGE + "/articles/<slug>/vote")
def vote(slug: str):
    """Record "Was this helpful?" once per visitor session, then go back to the article.

    A "No" may bring a reason and an address to follow up on; a bad address re-shows the form.
    """
    art = _published_or_404(slug, follow=True)
    answer = request.form.get("helpful", "")
    if answer not in ("yes", "no"):
        abort(400, description=_("Choose Yes or No to tell us whether the article helped."))
    try:
        reason = sources.vote_reason(request.form.get("reason"))
    except ValidationError:
        abort(400, description=_("Choose one of the reasons in the list, or none."))
    try:
        address = sources.vote_address(request.form.get("email")) if answer == "no" else ""
    except ValidationError:
        if not feedback.has_voted(get_session(), art, visitor_id()):  # else the form is gone: say "already"
            return _article_page(art, form=request.form, status=422, errors={
                "email": _("Enter an email address such as name@example.com, or leave the field empty.")})
        address = ""
    outcome = counting.record_vote(art, answer == "yes", request.form.get("comment", ""), reason=reason,
                                   address=address, lang=current_language())
    if outcome == feedback.ALREADY_VOTED:
        flash(_("You already told us about this article. Thank you!"), "info")
    elif outcome == feedback.CLIENT_LIMIT:
        flash(_("Thank you! We already counted the answers from your network for this article today."), "info")
    elif answer == "no" and address:
        flash(_("Thanks for your feedback! Someone from our team will get back to you."), "success")
    else:
        flash(_("Thanks for your feedback!"), "success")
    return redirect(url_for("portal.article", slug=art.slug, _anchor="feedback"), 303)
