"""Typo tolerance on PostgreSQL: which query words the articles do not know, and their nearest words.

Candidates come from ``search_vocabulary`` by trigram similarity (pg_trgm's ``%``, on a GIN
trigram index); then the Whoosh backend's rule decides (kb.search.querying.corrections): edit
distance 1, or 2 for words of 5+ letters keeping the first letter, most used words first.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import TSQUERY

from kb.search.analysis import has_cjk
from kb.search.postgres.models import SearchDocument, SearchWord
from kb.search.postgres.planner import either

SIMILARITY = 0.2  # loose enough for two typos in a short word; the edit distance decides
CANDIDATES = 50


class Vocabulary:
    """The vocabulary questions of one search, on one connection."""

    def __init__(self, connection: sa.Connection):
        self.connection = connection
        self.threshold_set = False

    def unknown(self, words: list[tuple[str, list[str]]], groups: list[str]) -> set[str]:
        """Of (word, lexeme pieces), the Latin words of 4+ letters the articles know in no form."""
        asked = [(w, p) for w, p in words if len(w) >= 4 and not has_cjk(w) and not any(ch.isdigit() for ch in w)]
        if not asked:
            return set()
        known = set(self.connection.scalars(
            sa.select(SearchWord.term).where(SearchWord.grp.in_(groups), SearchWord.term.in_([w for w, _p in asked]),
                                             SearchWord.docs > 0)))
        asked = [(w, p) for w, p in asked if w not in known]
        if not asked:
            return set()
        # One round trip: does any document hold any form of each word?
        checks = [sa.exists().where(SearchDocument.terms.bool_op("@@")(sa.cast(either(p), TSQUERY)))
                  for _w, p in asked]
        found = self.connection.execute(sa.select(*checks)).one()
        return {w for (w, _p), hit in zip(asked, found) if not hit}

    def corrections(self, word: str, groups: list[str], limit: int = 3) -> list[tuple[str, int]]:
        """(word, distance) of the vocabulary words nearest to ``word``: distance 1, then 2 for 5+ letters."""
        if not self.threshold_set:
            self.connection.execute(sa.text("SELECT set_config('pg_trgm.similarity_threshold', :t, true)"),
                                    {"t": str(SIMILARITY)})
            self.threshold_set = True
        rows = self.connection.execute(sa.text(
            "SELECT term, sum(docs) AS docs FROM search_vocabulary "
            "WHERE term % :word AND grp = ANY(:groups) AND docs > 0 "
            "GROUP BY term ORDER BY max(similarity(term, :word)) DESC, term LIMIT :n"),
            {"word": word, "groups": list(groups), "n": CANDIDATES}).all()
        found: dict[str, int] = {}
        for distance in (1, 2) if len(word) >= 5 else (1,):
            near = {r.term: r.docs for r in rows if r.term != word and r.term not in found
                    and (distance == 1 or r.term[:1] == word[:1]) and edit_distance(word, r.term, distance) <= distance}
            for candidate in sorted(near, key=lambda w: (-near[w], w)):
                found[candidate] = distance
            if len(found) >= limit:
                break
        return list(found.items())[:limit]


def edit_distance(a: str, b: str, most: int) -> int:
    """Damerau-Levenshtein distance (adjacent swaps count 1, as Whoosh's), or ``most + 1`` if larger."""
    if abs(len(a) - len(b)) > most:
        return most + 1
    before, row = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (ca != cb))
            if before is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        before, row = row, current
    return row[-1]
