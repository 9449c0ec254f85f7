"""What every page's layout needs: its language, links to it in the others, the support address."""

from __future__ import annotations

import secrets

from flask import current_app, request, session, url_for

from kb.i18n import language_name, text_direction
from kb.models import Article
from kb.web.i18n import (LANGUAGE_ARG, current_language, default_language, has_language, offered_language,
                         offered_languages)

# Query arguments a page keeps in another language; others (slug, endpoint, _anchor...) would
# clash with url_for's own parameters.
SWITCH_KEEPS = ("q", "category", "lang", "page")


def visitor_id(create: bool = False) -> str | None:
    """A random id for this browser session, used for one vote per visitor; no personal data."""
    if create and not session.get("visitor"):
        session["visitor"] = secrets.token_hex(16)
    return session.get("visitor")


def _absolute(path: str) -> str:
    """``path`` on the public address (BASE_URL)."""
    return current_app.config["BASE_URL"].rstrip("/") + path


def same_page(code: str) -> str:
    """The current page in language ``code``; the home page for pages not shown in every language."""
    if request.method == "GET" and has_language(request.endpoint):
        values = {k: v for k, v in request.args.items() if k in SWITCH_KEEPS}
        values.update(request.view_args or {})
        values[LANGUAGE_ARG] = code
        return url_for(request.endpoint, **values)
    return url_for("portal.home", **{LANGUAGE_ARG: code})


def switch_url(code: str) -> str:
    """The language switch's link: remember ``code`` as the visitor's choice, then show this page in it."""
    return url_for("portal.choose_language", code=code, next=same_page(code))


def alternates() -> list[tuple[str, str]]:
    """(hreflang, absolute URL) of this page in every language, and x-default: the address without one."""
    links = [(code, _absolute(same_page(code))) for code in offered_languages()]
    default_path = same_page(default_language())
    links.append(("x-default", _absolute(default_path[default_path.index("/", 1):])))
    return links


def canonical_language(lang: str) -> str:
    """The language an article's own address uses: its own, if the portal offers it."""
    return offered_language(lang) or default_language()


def canonical_article_url(article: Article) -> str:
    """The article's absolute address in its own language, for search engines, the API and emails."""
    return _absolute(url_for("portal.article", slug=article.slug, **{LANGUAGE_ARG: canonical_language(article.lang)}))


def page_numbers(current: int, last: int, around: int = 2) -> list[int | None]:
    """Page numbers to link: the first, the last and a window around ``current``; None is a gap."""
    wanted = {1, last, *range(current - around, current + around + 1)}
    pages: list[int | None] = []
    for number in sorted(n for n in wanted if 1 <= n <= last):
        if pages and pages[-1] is not None and number - pages[-1] > 1:
            pages.append(None)
        pages.append(number)
    return pages


def layout_context() -> dict:
    """Variables base.html uses on every page, including error pages and the editor."""
    lang = current_language()
    return {
        "page_lang": lang,
        "page_dir": text_direction(lang),
        "languages": [(code, language_name(code)) for code in offered_languages()],
        "support_address": current_app.config["SUPPORT_ADDRESS"],
        "switch_url": switch_url,
        "alternates": alternates,
        "language_name": language_name,
    }
