"""Public pages and API answers kept whole per process, with holes for what is each visitor's own.

A repeated search or a popular article costs a full render (a search, rows, snippets, a template)
though the page is the same for everyone who has nothing personal on it. So the portal's search
and article pages and the API's search answers are kept, keyed on their address and on the
content version (``kb.search.content_version``: the search version and the change feed's head),
which moves with every article change, index commit and synonym change and empties the cache. A
process reads it at most every PAGE_CACHE_CHECK_SECONDS (at once after a change of its own).

What differs per visitor is left as a hole and filled on each serve: the CSRF token of a form
(made for this visitor's session, as a render would) and the search log's id in result links
(each search is still logged, so its clicks are counted). A visitor with anything else in their
session (an agent, a message to flash) always gets a fresh render, and a page is only kept when
the view says nothing in it depends on more than the address and the version (``keep``).
The processes of one host share what they keep through a file (kb.web.pagestore), so a page is
rendered about once per host rather than once per worker, and a restarted worker or host serves the
pages rendered before its start while the content, the settings and kb's code stay the same.
"""

from __future__ import annotations

import json
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app, g, request, session
from flask_wtf.csrf import generate_csrf

from kb import search as kb_search
from kb.db import get_session
from kb.search.cache import VersionedCache
from kb.web import pagestore

KEY = "kb.web.pagecache"
SHARED_KEY = "kb.web.pagestore"
# Per process, random: no article, query or address can contain them by chance.
CSRF_HOLE = f"kb-csrf-{secrets.token_hex(12)}"
SEARCH_ID_HOLE = f"kb-search-{secrets.token_hex(12)}"
# Session keys every anonymous portal visitor has; anything else may show on a page.
ANONYMOUS_KEYS = frozenset({"visitor", "csrf_token"})
# Longer addresses are rendered each time: a flood of made-up long ones must not fill memory.
MAX_KEPT_QUERY_STRING = 1000


@dataclass(frozen=True)
class Entry:
    """Where this request's page would be kept: the content version and the key under it."""

    version: object
    key: tuple


@dataclass(frozen=True)
class Kept:
    """A kept page (with holes) or API answer, what the view needs to log it again, and its size in bytes."""

    body: object
    facts: tuple = ()
    size: int = 0


def weighed(body, facts: tuple = ()) -> Kept:
    """``body`` and ``facts`` as kept, weighed: a page's string as Python holds it, an answer as its JSON."""
    size = sys.getsizeof(body) if isinstance(body, str) else len(json.dumps(body, separators=(",", ":")))
    return Kept(body, facts, size)


def init_app(app: Flask) -> None:
    """Make this app's cache of PAGE_CACHE_SIZE entries within PAGE_CACHE_MB (0 entries turns it off), and its host's file if PAGE_CACHE_SHARED."""
    size = int(app.config["PAGE_CACHE_SIZE"])
    app.extensions[KEY] = VersionedCache(size, int(float(app.config["PAGE_CACHE_MB"]) * 2**20), lambda kept: kept.size)
    shared = None
    if size > 0 and app.config["PAGE_CACHE_SHARED"]:
        shared = pagestore.PageStore(Path(app.config["INSTANCE_DIR"]) / pagestore.FILE_NAME, size,
                                     pagestore.stamp(app.config, Path(__file__).resolve().parent.parent))
        shared.check()
    app.extensions[SHARED_KEY] = shared


def entry(*, personal: bool = True) -> Entry | None:
    """Where this request's page is kept, or None if it is not to be (cache off, no version, a personal session).

    ``personal``: the page can show the session's contents (portal pages); API answers cannot.
    """
    cache: VersionedCache = current_app.extensions[KEY]
    if cache.size <= 0 or len(request.query_string) > MAX_KEPT_QUERY_STRING:
        return None
    if personal and not ANONYMOUS_KEYS.issuperset(session.keys()):
        return None
    version = kb_search.content_version(get_session, float(current_app.config["PAGE_CACHE_CHECK_SECONDS"]))
    return None if version is None else Entry(version, (request.path, request.query_string))


def get(where: Entry | None) -> Kept | None:
    """The page kept at ``where`` in this process or, failing that, by another process of this host; or None."""
    if where is None:
        return None
    cache: VersionedCache = current_app.extensions[KEY]
    kept = cache.get(where.version, where.key)
    shared: pagestore.PageStore | None = current_app.extensions[SHARED_KEY]
    if kept is not None or shared is None:
        return kept
    kept = _from_shared(shared.get(where.version, where.key))
    if kept is not None:
        cache.put(where.version, where.key, kept)
    return kept


def _from_shared(value) -> Kept | None:
    """A page as another process kept it, with this process's holes; None if it is not what ``keep`` writes."""
    if not isinstance(value, dict) or not isinstance(value.get("holes"), list) or len(value["holes"]) != 2 \
            or not isinstance(value.get("facts"), list):
        return None
    body = value.get("body")
    if isinstance(body, str):  # another process's holes become this one's
        body = body.replace(str(value["holes"][0]), CSRF_HOLE).replace(str(value["holes"][1]), SEARCH_ID_HOLE)
    elif not isinstance(body, dict):
        return None
    return weighed(body, tuple(value["facts"]))


def keep(where: Entry | None, body, facts: tuple = ()) -> None:
    """Keep a rendered page (its CSRF token made a hole) or an API answer at ``where`` (None: don't).

    A page too large for this process's share of PAGE_CACHE_MB is kept nowhere: it is rendered each time.
    """
    if where is None:
        return
    if isinstance(body, str) and g.get("csrf_token"):
        body = body.replace(g.csrf_token, CSRF_HOLE)
    cache: VersionedCache = current_app.extensions[KEY]
    page = weighed(body, facts)
    if not cache.fits(page):
        return
    cache.put(where.version, where.key, page)
    shared: pagestore.PageStore | None = current_app.extensions[SHARED_KEY]
    if shared is not None:
        shared.put(where.version, where.key, {"body": body, "facts": list(facts), "holes": [CSRF_HOLE, SEARCH_ID_HOLE]})


def fill(body: str, search_id: int | None = None) -> str:
    """A kept or just-rendered page with this visitor's values in its holes."""
    if search_id is not None:
        body = body.replace(SEARCH_ID_HOLE, str(search_id))
    if CSRF_HOLE in body:
        body = body.replace(CSRF_HOLE, generate_csrf())
    return body
