"""What every page's layout needs: the language choice, the support address, page links."""

from __future__ import annotations

import secrets

from flask import current_app, request, session, url_for

from kb.articles import LANG_ALIASES
from kb.catalog import language_name
from kb.config import configured_languages

ALL_LANGUAGES = "all"
# Pages whose own URL the language switch links back to (keeping their query string).
SWITCH_IN_PLACE = {"portal.home", "portal.search", "portal.category"}


def offered_languages() -> list[str]:
    """The language codes of config LANGUAGES, in order."""
    return configured_languages(current_app.config)


def offered_language(code: str | None) -> str | None:
    """``code`` (aliases such as ``no`` allowed) if the portal offers it, else None."""
    code = str(code or "").strip().lower()
    code = LANG_ALIASES.get(code, code)
    return code if code in offered_languages() else None


def remember_language() -> None:
    """Store a ``?lang=`` choice in the visitor's session; ``lang=all`` clears it."""
    if "lang" not in request.args:
        return
    wanted = request.args["lang"]
    if wanted in ("", ALL_LANGUAGES):
        session.pop("lang", None)
    elif offered_language(wanted):
        session["lang"] = offered_language(wanted)


def chosen_language() -> str | None:
    """The visitor's language choice, or None for all languages."""
    return offered_language(session.get("lang"))


def visitor_id(create: bool = False) -> str | None:
    """A random id for this browser session, used for one vote per visitor; no personal data."""
    if create and not session.get("visitor"):
        session["visitor"] = secrets.token_hex(16)
    return session.get("visitor")


SWITCH_KEEPS = ("q", "category")


def switch_url(code: str) -> str:
    """The current page with the language set to ``code`` (or home for other pages)."""
    if request.endpoint in SWITCH_IN_PLACE:
        # Only the arguments these pages read: others (slug, endpoint, _anchor...) would clash
        # with url_for's own parameters.
        args = {k: v for k, v in request.args.items() if k in SWITCH_KEEPS}
        args["lang"] = code
        return url_for(request.endpoint, **(request.view_args or {}), **args)
    return url_for("portal.home", lang=code)


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
    has_request = bool(request)
    return {
        "languages": [(code, language_name(code)) for code in offered_languages()],
        "chosen_lang": chosen_language() if has_request else None,
        "support_address": current_app.config["SUPPORT_ADDRESS"],
        "switch_url": switch_url,
        "language_name": language_name,
    }
