"""The topic lists of the portal pages, with their counts, kept per process until an article changes.

Counting the published articles of every category is a scan of the articles table (about as long
as a whole search at 10,000 articles), and the search page needs the list on every request, twice
with a topic filter. Every change to an article adds a row to the change feed in its transaction
(kb.articles.enqueue_index), so the feed's head says when a kept list is out of date: one small
indexed query instead of the scan. On PostgreSQL the head counts settled rows only, so a count may
change some moments after the publish, never later than the open transactions before it end.

The search page's topic filter is kept too, as HTML: escaping a few hundred topic names and counts
on every request cost more than the page's search when the result cache answered
(benchmarks/load.py). Its options are made again only when the kept list they were made from changes.
"""

from __future__ import annotations

import threading

import sqlalchemy.orm as so
from flask import current_app
from markupsafe import Markup

from kb import catalog
from kb.search import feed

KEY = "kb.portal.listings"


class Listings:
    """Category lists per content language, each with the feed head it was counted at."""

    def __init__(self):
        self.kept: dict[str | None, tuple[feed.Position, list[catalog.Category]]] = {}
        # per language, the kept list the options were made from (compared by identity) and its options
        self.options: dict[str | None, tuple[list[catalog.Category], list[Markup], Markup]] = {}
        self.lock = threading.Lock()

    def categories(self, session: so.Session, lang: str | None) -> list[catalog.Category]:
        """``catalog.categories(session, lang)``, counted again only when an article changed since."""
        head = feed.head(session)
        with self.lock:
            kept = self.kept.get(lang)
        if kept is not None and kept[0] == head:
            return kept[1]
        found = catalog.categories(session, lang)
        with self.lock:
            self.kept[lang] = (head, found)
        return found

    def topic_options(self, session: so.Session, lang: str | None, selected: str = "") -> Markup:
        """The ``<option>`` of every category in ``categories(session, lang)``, ``selected`` (a slug) chosen."""
        found = self.categories(session, lang)
        with self.lock:
            kept = self.options.get(lang)
        if kept is None or kept[0] is not found:
            each = [_option(category) for category in found]
            kept = (found, each, Markup("").join(each))
            with self.lock:
                self.options[lang] = kept
        if not selected:
            return kept[2]
        return Markup("").join(_option(category, True) if category.slug == selected else option
                               for category, option in zip(found, kept[1]))


def _option(category: catalog.Category, selected: bool = False) -> Markup:
    """One topic of the search page's filter, as search.html showed it: "Name (count)"."""
    return Markup('\n      <option value="{}"{}>{} ({})</option>').format(
        category.slug, Markup(" selected") if selected else "", category.name, category.count)


def _listings() -> Listings:
    """This app's lists (made on first use)."""
    listings = current_app.extensions.get(KEY)
    if listings is None:
        listings = current_app.extensions.setdefault(KEY, Listings())
    return listings


def categories(session: so.Session, lang: str | None = None) -> list[catalog.Category]:
    """Categories that have published articles (in ``lang`` if given), with their counts; see the module."""
    return _listings().categories(session, lang)


def topic_options(session: so.Session, lang: str | None = None, selected: str = "") -> Markup:
    """The search page's topic filter options for ``categories(session, lang)``; see the module."""
    return _listings().topic_options(session, lang, selected)


def category_by_slug(session: so.Session, slug: str) -> str | None:
    """The name of the category whose slug is ``slug``, or None (from the kept list of all languages)."""
    return next((category.name for category in categories(session) if category.slug == slug), None)
