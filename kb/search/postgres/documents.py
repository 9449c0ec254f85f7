"""An article as a row of ``search_documents``: kb's own analysis written as a tsvector.

The terms are exactly what the Whoosh backend indexes (``kb.search.schema.document``), so the
three languages behave alike. They are written as a tsvector literal, lexemes untouched, which is
what the ``simple`` configuration keeps of a word, without its parser cutting kb's terms again.
Each lexeme carries its language group ("en:refund"): Whoosh keeps one field per group.
"""

from __future__ import annotations

from typing import Sequence

from kb.models import Article
from kb.search.analysis import GROUPS, analyzer, group_for, spell_analyzer
from kb.search.schema import Example, document, field

# Field kind -> tsvector weight: title above tags above body; example questions lowest.
WEIGHT_OF = {"title": "A", "tags": "B", "body": "C", "examples": "D"}
FIELD_GAP = 10  # positions between fields, so a phrase never runs from the title into the body
MAX_POSITION = 16383  # PostgreSQL's limit (larger positions would be set to it anyway)
MAX_POSITIONS_PER_TERM = 255  # and it keeps at most 256 positions of one lexeme
MAX_LEXEME_BYTES = 2000  # a lexeme may be at most 2 KB
MAX_WORD = 40  # longer "words" (ids, hashes) are no use to "Did you mean"


def lexeme(group: str, term: str) -> str:
    """The lexeme of ``term`` in a language group's part of a document."""
    return f"{group}:{term}"


def quote(text: str) -> str:
    """A lexeme quoted for tsvector and tsquery input (quotes and backslashes doubled)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_text(texts: Sequence[tuple[str, str, str]]) -> str:
    """The tsvector literal of (kind, group, text) fields: lexemes with positions and weights."""
    positions: dict[str, list[str]] = {}
    offset = 0
    for kind, group, text in texts:
        last = offset
        for token in analyzer(group)(text, positions=True):
            pos = min(offset + token.pos + 1, MAX_POSITION)
            last = max(last, pos)
            key = lexeme(group, token.text)
            if len(key.encode("utf-8")) > MAX_LEXEME_BYTES:
                continue
            found = positions.setdefault(key, [])
            if len(found) < MAX_POSITIONS_PER_TERM:
                found.append(f"{pos}{WEIGHT_OF[kind]}")
        offset = last + FIELD_GAP
    return " ".join(f"{quote(key)}:{','.join(found)}" for key, found in positions.items())


def vocabulary_words(text: str) -> list[str]:
    """The distinct lowercased Latin words of ``text``: the vocabulary of "Did you mean"."""
    return sorted({t.text for t in spell_analyzer()(text) if len(t.text) <= MAX_WORD})


def make_row(article: Article, examples: Sequence[Example] | None = None) -> dict:
    """The ``search_documents`` row of a published article (its examples are read unless given)."""
    doc = document(article, examples)
    texts = []
    for kind in WEIGHT_OF:
        for group in GROUPS:
            value = doc.get(field(kind, group))
            if value:
                texts.append((kind, group, value))
    group = group_for(article.lang)
    return {
        "article_id": article.id,
        "lang": article.lang or "",
        "grp": group,
        "category": article.category or "",
        "terms": tsvector_text(texts),
        "plain": doc["plain"],
        "words": vocabulary_words(doc.get(field("spell", group), "")),
        "stamp": doc["updated"],
    }
