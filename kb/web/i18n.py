"""The web's language: Flask-Babel, the language in the portal's URLs, and the visitor's choice.

A portal page's language comes from its URL (``/zh/search?q=``), so a shared link shows what
its sender saw. An address without one (``/``, old links) goes to the visitor's language: the
one they chose with the language switch (a cookie), else their browser's ``Accept-Language``,
else ``KB_DEFAULT_LANGUAGE``. ``KB_LANGUAGES`` lists the languages; each needs a catalog.
"""

from __future__ import annotations

import re

from flask import Flask, current_app, has_request_context, request
from flask_babel import Babel, get_locale, get_translations, refresh
from jinja2.ext import _make_new_gettext, _make_new_ngettext  # the wrappers install_gettext_callables uses
from werkzeug.routing import BaseConverter

from kb.config import configured_languages
from kb import i18n
from kb.i18n import SOURCE_LANGUAGE, check_languages, ensure_compiled, language_tag, negotiate, translations_dir

LANGUAGE_COOKIE = "kb_lang"
LANGUAGE_ARG = "lang_code"  # the URL part of every portal rule: /<lang:lang_code>/...
LANGUAGE_ENDPOINTS = "kb.i18n.language_endpoints"  # app.extensions: (route count, {endpoint: has_language})
# Pages whose text is not in the catalogs yet stay in the source language, so that a page's
# lang attribute never claims a language its text is not in.
UNTRANSLATED_PATHS = ("/agent",)


def init_app(app: Flask) -> None:
    """Check and compile the catalogs, set up Flask-Babel and the ``lang`` URL converter."""
    directory = translations_dir(app.config)
    languages = configured_languages(app.config)
    check_languages(languages, directory)  # create_app checked already; this keeps init_app safe alone
    ensure_compiled(directory)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(directory)
    Babel(app, locale_selector=select_locale, default_locale=SOURCE_LANGUAGE)
    app.jinja_env.policies["ext.i18n.trimmed"] = True  # msgids without the template's line breaks
    app.context_processor(_render_catalog)
    app.url_map.converters["lang"] = _language_converter(languages)
    app.url_defaults(_add_language)
    # Each request chooses its own locale, also when a test holds one app context for several.
    app.before_request(refresh)


def _render_catalog() -> dict:
    """Templates' ``_``, ``gettext`` and ``ngettext`` bound to this render's catalog (``force_locale`` included).

    Flask-Babel's own look the catalog up at each string through the request's globals (about
    6 microseconds; a portal page has some 35 strings); the catalog cannot change within one render.
    """
    catalog = get_translations()
    return {"gettext": _make_new_gettext(catalog.ugettext), "ngettext": _make_new_ngettext(catalog.ungettext)}


def _language_converter(languages: list[str]) -> type[BaseConverter]:
    """A URL converter that matches only the offered language codes."""
    pattern = "|".join(map(re.escape, languages)) or "(?!)"
    return type("LanguageConverter", (BaseConverter,), {"regex": f"(?:{pattern})"})


def offered_languages() -> list[str]:
    """The language codes of KB_LANGUAGES, in order."""
    return configured_languages(current_app.config)


def offered_language(code: str | None) -> str | None:
    """kb's code for ``code`` (``no``, ``zh-CN`` allowed) if the portal offers it, else None."""
    code = language_tag(code)
    return code if code in offered_languages() else None


def default_language() -> str:
    """KB_DEFAULT_LANGUAGE if offered, else the first offered language."""
    return i18n.default_language(current_app.config)


def url_language() -> str | None:
    """The language at the start of the request's path (``/zh/...``), if it is offered."""
    if not has_request_context():
        return None
    first = request.path.lstrip("/").split("/", 1)[0]
    return first if first in offered_languages() else None


def portal_language() -> str:
    """The URL's language, else the visitor's choice, else Accept-Language, else the default."""
    if not has_request_context():
        return default_language()
    accepted = [tag for tag, quality in request.accept_languages if quality > 0]
    wanted = [url_language() or "", request.cookies.get(LANGUAGE_COOKIE, ""), *accepted]
    return negotiate(wanted, offered_languages()) or default_language()


def select_locale() -> str:
    """Flask-Babel's locale selector: the portal's language, the source language for the editor."""
    if has_request_context() and request.path.startswith(UNTRANSLATED_PATHS):
        return SOURCE_LANGUAGE
    return portal_language()


def current_language() -> str:
    """The language of the page being rendered (``force_locale`` included)."""
    locale = get_locale()
    return str(locale) if locale else default_language()


def has_language(endpoint: str | None) -> bool:
    """Whether the endpoint's address starts with a language (``/<lang>/...``)."""
    # Kept per app for url_for's sake (a search page builds some 30 URLs); made again if a route is added.
    app = current_app._get_current_object()  # type: ignore[attr-defined] # one proxy lookup, not five
    routes, known = app.extensions.get(LANGUAGE_ENDPOINTS, (None, {}))
    if routes != len(app.view_functions):
        routes, known = len(app.view_functions), {}
        app.extensions[LANGUAGE_ENDPOINTS] = (routes, known)
    found = known.get(endpoint)
    if found is None:
        found = known[endpoint] = endpoint in app.view_functions and \
            app.url_map.is_endpoint_expecting(endpoint, LANGUAGE_ARG)
    return found


def _add_language(endpoint: str, values: dict) -> None:
    """url_for fills in the language of portal URLs: the current page's if offered, else the visitor's."""
    if LANGUAGE_ARG not in values and has_language(endpoint):
        values[LANGUAGE_ARG] = offered_language(current_language()) or portal_language()
