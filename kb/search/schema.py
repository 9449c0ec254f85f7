"""The index schema and how an article becomes an index document.

An article's example questions (kb.capture.examples: other ways customers asked for it) go in an
``examples`` field of their own language group, searched at a low weight (kb.search.querying). They
are indexed, never stored: snippets come from the article's own text only, so a customer never sees
another customer's question presented as the article.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

import sqlalchemy.orm as so
from whoosh.fields import ID, STORED, TEXT, Schema

from kb.capture import examples as kb_examples
from kb.models import Article
from kb.render_cache import article_text
from kb.search.analysis import GROUPS, analyzer, group_for, spell_analyzer

# Bump when the schema or the analysis changes: an index of another version is rebuilt on start.
SCHEMA_VERSION = "9"
FIELD_KINDS = ("title", "tags", "body", "examples")
Example = tuple[str, str]  # (text, lang) of one example question


def make_schema() -> Schema:
    """id, lang, category, per-group title/tags/body/spell (vocabulary), stored text and stamp."""
    fields = {
        "id": ID(unique=True, stored=True),
        "lang": ID(stored=True),
        "category": ID(stored=True),
        "plain": STORED(),
        "updated": STORED(),
    }
    for group in GROUPS:
        fields[field("spell", group)] = TEXT(analyzer=spell_analyzer(), phrase=False)
        for kind in FIELD_KINDS:
            fields[f"{kind}_{group}"] = TEXT(analyzer=analyzer(group), phrase=kind in ("title", "body"))
    return Schema(**fields)


def field(kind: str, group: str) -> str:
    """The name of the ``kind`` field ('title', 'tags', 'body', 'spell') of a language group."""
    return f"{kind}_{group}"


def stamp(article, examples: Iterable[Example] = ()) -> str:
    """The version mark of an article in the index, compared with the database on start.

    Its examples change the mark too (a digest of their folded texts), so an example learnt or
    forgotten while no indexer ran is caught by the start-up check like an edit is.
    """
    mark = article.updated_at.isoformat() if article.updated_at else ""
    texts = sorted(kb_examples.fold(text) for text, _lang in examples)
    if texts:
        mark += "+" + hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    return mark


def examples_of(session: so.Session | None, article_id: int) -> list[Example]:
    """(text, lang) of one article's example questions; none without a session."""
    if session is None:
        return []
    return [(row.text, row.lang) for row in kb_examples.for_article(session, article_id)]


def examples_by_article(session: so.Session) -> dict[int, list[Example]]:
    """(text, lang) of every published article's examples, by article id (one query, for rebuilds)."""
    found: dict[int, list[Example]] = {}
    for article_id, text, lang in kb_examples.all_examples(session):
        found.setdefault(article_id, []).append((text, lang))
    return found


def document(article: Article, examples: Sequence[Example] | None = None) -> dict:
    """The index document of a published article; its examples are read unless given."""
    if examples is None:
        examples = examples_of(so.object_session(article), article.id)
    group = group_for(article.lang)
    plain = article_text(article)  # the cached text; rendered (and cached) only if missing or stale
    tags = " ".join(article.tags or [])
    doc = {
        "id": str(article.id),
        "lang": article.lang or "",
        "category": article.category or "",
        field("title", group): article.title,
        field("tags", group): tags,
        field("body", group): plain,
        field("spell", group): " ".join((article.title, tags, plain)),
        "plain": plain,
        "updated": stamp(article, examples),
    }
    # Each example in its own language's field (analysed as written); customers' spellings stay out
    # of the "Did you mean" vocabulary.
    by_group: dict[str, list[str]] = {}
    for text, lang in examples:
        by_group.setdefault(group_for(lang or article.lang), []).append(text)
    for name, texts in by_group.items():
        doc[field("examples", name)] = "\n".join(texts)
    return doc


def failure_reason(exc: Exception) -> str:
    """An exception as a short reason."""
    return f"{type(exc).__name__}: {exc}"[:500]


def record_failure(article: Article, exc: Exception, last_try: bool) -> str:
    """Note on the article, for agents, why search skips it; returns the reason."""
    reason = failure_reason(exc)
    article.index_error = (f"Search skips this article ({reason}). Save the article to try again." if last_try
                           else f"Search could not take this article yet ({reason}); kb tries again shortly.")
    return reason
