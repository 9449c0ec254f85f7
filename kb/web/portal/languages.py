"""Addresses around the language prefix: the language switch, old unprefixed links, the sitemaps."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Response, abort, current_app, redirect, request, url_for

from kb import catalog
from kb.db import get_session
from kb.web.i18n import LANGUAGE_ARG, LANGUAGE_COOKIE, offered_language, offered_languages, portal_language
from kb.web.portal import bp
from kb.web.portal.context import canonical_language
from kb.web.portal.sitemap import sitemap_index_xml, sitemap_xml

COOKIE_MAX_AGE = 365 * 24 * 3600
# Every address the portal had before its pages moved under /<lang>/.
UNPREFIXED_RULES = ("/", "/search", "/categories/<path:rest>", "/articles/<path:rest>")


@bp.get("/language/<code>")
def choose_language(code: str):
    """The language switch: remember the visitor's choice in a cookie, then show the page in it."""
    lang = offered_language(code)
    if lang is None:
        abort(404)
    target = request.args.get("next", "")
    if not _is_page_in(target, lang):  # never a redirect off this site
        target = url_for("portal.home", **{LANGUAGE_ARG: lang})
    response = redirect(target, 303)
    response.set_cookie(LANGUAGE_COOKIE, lang, max_age=COOKIE_MAX_AGE, samesite="Lax", httponly=True,
                        secure=current_app.config["BASE_URL"].startswith("https://"))
    return response


def _is_page_in(target: str, lang: str) -> bool:
    """Whether ``target`` is a plain path on this site under ``/<lang>/``."""
    return (target.startswith(f"/{lang}/") and target.isascii() and target.isprintable()
            and not any(c in target for c in "\\ "))


def unprefixed(rest: str = ""):
    """An address from before the language prefix: the same page, in the visitor's language.

    The old ``?lang=`` was the language switch, so it picks the language; on /search it also
    stays the search's language filter, so the page shows what the old link showed.
    """
    args = request.args.copy()
    lang = offered_language(args.get("lang")) or portal_language()
    if request.path != "/search":
        args.pop("lang", None)
    query = urlencode(list(args.items(multi=True)))
    # 307 keeps a POST a POST (a vote form loaded before the move); 302: it depends on the visitor.
    response = redirect(f"/{lang}{request.path}" + (f"?{query}" if query else ""),
                        307 if request.method == "POST" else 302)
    response.vary.update(("Accept-Language", "Cookie"))
    return response


for _rule in UNPREFIXED_RULES:
    bp.add_url_rule(_rule, "unprefixed", unprefixed, methods=["GET", "POST"])


@bp.get("/sitemap.xml")
def sitemap_index():
    """The sitemap index: one sitemap per language."""
    urls = [url_for("portal.sitemap", **{LANGUAGE_ARG: code}) for code in offered_languages()]
    return Response(sitemap_index_xml(urls, current_app.config["BASE_URL"]), mimetype="application/xml")


@bp.get("/<lang:lang_code>/sitemap.xml")
def sitemap():
    """One language's pages: its home and topics (with their other languages), and its articles."""
    entries = catalog.sitemap_entries(get_session())
    xml = sitemap_xml(entries, portal_language(), current_app.config["BASE_URL"], offered_languages(),
                      canonical_language)
    return Response(xml, mimetype="application/xml")
