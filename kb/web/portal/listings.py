"""The topic lists of the portal pages, with their counts, kept per process until an article changes.

Counting the published articles of every category is a scan of the articles table (about as long
as a whole search at 10,000 articles), and the search page needs the list on every request, twice
with a topic filter. Every change to an article adds a row to the change feed in its transaction
(kb.articles.enqueue_index), so the feed's head says when a kept list is out of date: one small
indexed query instead of the scan. On PostgreSQL the head counts settled rows only, so a count may
change some moments after the publish, never later than the open transactions before it end.
"""

from __future__ import annotations

import threading

import sqlalchemy.orm as so
from flask import current_app

from kb import catalog
from kb.search import feed

KEY = "kb.portal.listings"


class Listings:
    """Category lists per content language, each with the feed head it was counted at."""

    def __init__(self):
        self.kept: dict[str | None, tuple[feed.Position, list[catalog.Category]]] = {}
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


def _listings() -> Listings:
    """This app's lists (made on first use)."""
    listings = current_app.extensions.get(KEY)
    if listings is None:
        listings = current_app.extensions.setdefault(KEY, Listings())
    return listings


def categories(session: so.Session, lang: str | None = None) -> list[catalog.Category]:
    """Categories that have published articles (in ``lang`` if given), with their counts; see the module."""
    return _listings().categories(session, lang)


def category_by_slug(session: so.Session, slug: str) -> str | None:
    """The name of the category whose slug is ``slug``, or None (from the kept list of all languages)."""
    return next((category.name for category in categories(session) if category.slug == slug), None)
