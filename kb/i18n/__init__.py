"""The languages kb speaks: its gettext catalogs, their names, and choosing one for a visitor.

Request-free, so the web, the CLI and the mail worker share it. Messages are written in English
in the code (the source language, which needs no catalog); each other language is one file,
``kb/translations/<code>/LC_MESSAGES/messages.po``, compiled to a .mo when kb is installed
(setup.py) and again at start if the .po has changed since (``ensure_compiled``).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from babel import Locale, UnknownLocaleError
from babel.support import NullTranslations, Translations

from kb.config import configured_languages
from kb.errors import ConfigError
from kb.i18n import compiling

SOURCE_LANGUAGE = "en"
TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"
# Tags browsers send that mean one of kb's codes; anything else is matched on its first subtag.
TAG_ALIASES = {"no": "nb", "nn": "nb"}
log = logging.getLogger(__name__)
Gettext = Callable[..., str]  # _("Hello %(name)s,", name=...) -> the sentence in one language


@functools.lru_cache(maxsize=1024)  # bounded: the tags come from browsers; url_for asks for the page's at every link
def language_tag(tag: str | None) -> str:
    """kb's code for a language tag: ``zh-Hans-CN`` is ``zh``, ``nb_NO`` and ``no`` are ``nb``."""
    primary = str(tag or "").strip().lower().replace("_", "-").split("-")[0]
    return TAG_ALIASES.get(primary, primary)


def negotiate(wanted: Iterable[str], offered: list[str]) -> str | None:
    """The first of ``wanted`` (tags in order of preference) that kb offers, or None."""
    for tag in wanted:
        code = language_tag(tag)
        if code in offered:
            return code
    return None


def default_language(config: Mapping[str, Any]) -> str:
    """KB_DEFAULT_LANGUAGE if KB_LANGUAGES offers it, else the first offered language."""
    offered = configured_languages(config)
    code = language_tag(config.get("DEFAULT_LANGUAGE"))
    return code if code in offered else (offered[0] if offered else SOURCE_LANGUAGE)


def language_for(tag: str | None, config: Mapping[str, Any]) -> str:
    """The language kb writes in to someone who wrote in ``tag`` (an email's language): that
    language if KB_LANGUAGES offers it, else the default, as the portal does for a browser.

    Every language of KB_LANGUAGES has a catalog: check_config refuses any other at start.
    """
    code = language_tag(tag)
    return code if code in configured_languages(config) else default_language(config)


def _locale(code: str) -> Locale | None:
    """Babel's Locale for a code, None if CLDR does not know it."""
    try:
        return Locale.parse(code)
    except (UnknownLocaleError, ValueError):
        return None


# Kept: a search page names a language per result (Locale.parse and CLDR each time); CLDR data never changes.
@functools.lru_cache(maxsize=256)
def language_name(code: str) -> str:
    """The language's own name (English, 中文, Norsk bokmål), from CLDR; an unknown code is itself."""
    locale = _locale(code)
    name = locale.get_display_name(code) if locale else None
    return name[:1].upper() + name[1:] if name else code


@functools.lru_cache(maxsize=256)
def text_direction(code: str) -> str:
    """``ltr`` or ``rtl``, for the page's dir attribute."""
    locale = _locale(code)
    return locale.text_direction if locale else "ltr"


def translations_dir(config: Mapping[str, Any]) -> Path:
    """The folder of the catalogs: kb's own, unless the config names another (tests, a fork)."""
    return Path(config.get("BABEL_TRANSLATION_DIRECTORIES") or TRANSLATIONS_DIR)


def check_config(config: Mapping[str, Any]) -> None:
    """Refuse, before anything starts, a KB_LANGUAGES entry that has no catalog."""
    check_languages(configured_languages(config), translations_dir(config))


def check_languages(languages: list[str], directory: Path = TRANSLATIONS_DIR) -> None:
    """Refuse a language that has no catalog: its pages would be English under another lang tag."""
    catalogs = compiling.po_files(directory)
    for code in languages:
        if code != SOURCE_LANGUAGE and code not in catalogs:
            raise ConfigError(f"KB_LANGUAGES: kb has no translation for {code!r}. Add "
                              f"{directory / code / 'LC_MESSAGES' / 'messages.po'} (see README, Translations) "
                              "or remove it from KB_LANGUAGES.")


def ensure_compiled(directory: Path = TRANSLATIONS_DIR) -> list[Path]:
    """Compile the catalogs whose .mo is missing or older than the .po.

    Installing kb compiles them; this covers a .po edited (or merged) since, so a restart is
    all a translator needs. Returns the files written.
    """
    written = []
    for po in compiling.po_files(directory).values():
        if compiling.is_stale(po):
            try:
                written.append(compiling.compile_po(po))
            except OSError as exc:
                raise ConfigError(f"{po}: cannot write the compiled catalog ({exc}); run "
                                  f"`pybabel compile -d {directory}` as the owner of that folder") from exc
            log.info("compiled %s", po)
    return written


def translations(code: str, directory: Path = TRANSLATIONS_DIR) -> NullTranslations:
    """The compiled messages of one language, for work done outside a web request (emails)."""
    if code == SOURCE_LANGUAGE:
        return NullTranslations()
    return Translations.load(str(directory), [code], compiling.DOMAIN)


def gettext_for(code: str, config: Mapping[str, Any]) -> Gettext:
    """``_`` for one language outside a request, as Flask-Babel's: ``_("Hello %(name)s,", name=n)``."""
    catalog = translations(code, translations_dir(config))

    def gettext(message: str, **values: Any) -> str:
        text = catalog.gettext(message)
        return text % values if values else text

    return gettext
