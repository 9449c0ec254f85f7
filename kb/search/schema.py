"""The index schema and how an article becomes an index document."""

from __future__ import annotations

from whoosh.fields import ID, STORED, TEXT, Schema

from kb.models import Article
from kb.render_cache import article_text
from kb.search.analysis import GROUPS, analyzer, group_for, spell_analyzer

# Bump when the schema or the analysis changes: an index of another version is rebuilt on start.
SCHEMA_VERSION = "8"
FIELD_KINDS = ("title", "tags", "body")


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
            fields[f"{kind}_{group}"] = TEXT(analyzer=analyzer(group), phrase=(kind != "tags"))
    return Schema(**fields)


def field(kind: str, group: str) -> str:
    """The name of the ``kind`` field ('title', 'tags', 'body', 'spell') of a language group."""
    return f"{kind}_{group}"


def stamp(article: Article) -> str:
    """The version mark of an article in the index, compared with the database on start."""
    return article.updated_at.isoformat() if article.updated_at else ""


def document(article: Article) -> dict:
    """The index document of a published article."""
    group = group_for(article.lang)
    plain = article_text(article)  # the cached text; rendered (and cached) only if missing or stale
    tags = " ".join(article.tags or [])
    return {
        "id": str(article.id),
        "lang": article.lang or "",
        "category": article.category or "",
        field("title", group): article.title,
        field("tags", group): tags,
        field("body", group): plain,
        field("spell", group): " ".join((article.title, tags, plain)),
        "plain": plain,
        "updated": stamp(article),
    }
