"""Related articles of the article pages, kept per process so that a page view seldom searches.

An article's related list depends on the article (its title, tags, language and category: any edit
changes ``updated_at``) and on everything searches can find (the backend's ``version()``, which
changes with each change the index applies and each synonym change). So an entry is keyed on
(article id, updated_at, limit) and valid for one version only: after a publish anywhere, each
page searches once more and shows the new article among the related ones if it belongs there.
Entries hold article ids, never ORM objects (those belong to one request's session).
"""

from __future__ import annotations

from kb.search.cache import VersionedCache


class RelatedCache(VersionedCache):
    """Related-article ids per (article, updated_at, limit), emptied when the search version moves on."""

    def put(self, version, key, ids) -> None:
        """Keep the ids found at ``version``, as a tuple (nothing can change them in the cache)."""
        super().put(version, key, tuple(ids))
