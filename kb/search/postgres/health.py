"""Can this database serve search, and do its documents match the articles?"""

from __future__ import annotations

import logging

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.models import Article
from kb.search.postgres.models import DOCUMENTS, VOCABULARY, SearchDocument
from kb.search.schema import examples_by_article, stamp

log = logging.getLogger(__name__)
TRIGRAM_INDEX = "ix_search_vocabulary_term_trgm"
CREATE_TRIGRAM_INDEX = (f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON {VOCABULARY} "
                        "USING gin (term gin_trgm_ops)")


def missing_extension(database: str) -> str:
    """What to do when pg_trgm is not installed in ``database``."""
    return (f"SEARCH_BACKEND=postgres needs the pg_trgm extension (part of PostgreSQL's contrib) in database "
            f"{database!r}, and kb's database role may not create it: ask a superuser to run "
            f"`CREATE EXTENSION pg_trgm;` in that database (Debian: the postgresql-contrib files come with "
            f"the server), then run `kb db upgrade` or restart kb. Or set SEARCH_BACKEND=whoosh.")


def problem(engine: sa.Engine, url: str, repair: bool = False) -> str:
    """What stops search on this database ("" if nothing); ``repair`` makes a missing trigram index."""
    if engine.dialect.name != "postgresql":
        return (f"SEARCH_BACKEND=postgres needs a PostgreSQL database, but DATABASE_URL is "
                f"{sa.make_url(url).drivername}: set KB_DATABASE_URL=postgresql+psycopg://user:password@host/database "
                "or SEARCH_BACKEND=whoosh.")
    with engine.connect() as connection:
        database = connection.scalar(sa.text("SELECT current_database()"))
        tables = set(sa.inspect(connection).get_table_names())
        if not {DOCUMENTS, VOCABULARY} <= tables:
            return ("The PostgreSQL search tables are missing: run `kb db upgrade` (or start kb with "
                    "AUTO_MIGRATE on) before using SEARCH_BACKEND=postgres.")
        if not connection.scalar(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")):
            return missing_extension(database)
        has_index = connection.scalar(sa.text("SELECT 1 FROM pg_indexes WHERE indexname = :name"),
                                      {"name": TRIGRAM_INDEX})
    if not has_index:
        if not repair:
            return "The trigram index of the search vocabulary is missing: restart kb to create it."
        # pg_trgm came after the migration (a superuser installed it): make the index it could not.
        with engine.begin() as connection:
            connection.execute(sa.text(CREATE_TRIGRAM_INDEX))
    return ""


def count_problem(session: so.Session) -> str | None:
    """Why the documents cannot be the published articles', by counting alone (cheap, for start-up); None if they may be."""
    ok = sa.and_(Article.status == "published", Article.index_error == "")
    in_db = session.scalar(sa.select(sa.func.count()).select_from(Article).where(ok))
    matched = session.scalar(sa.select(sa.func.count()).select_from(SearchDocument)
                             .join(Article, Article.id == SearchDocument.article_id).where(ok))
    if in_db != matched:
        return f"the search documents hold {matched} of {in_db} published articles"
    orphans = session.scalar(sa.select(sa.func.count()).select_from(SearchDocument)
                             .outerjoin(Article, Article.id == SearchDocument.article_id)
                             .where(sa.or_(Article.id.is_(None), Article.status != "published")))
    return "the search documents hold articles that are not published" if orphans else None


def stale(session: so.Session) -> bool:
    """Whether the documents differ from the published articles (ids, edits, example questions)."""
    published = session.execute(sa.select(Article.id, Article.updated_at, Article.index_error)
                                .where(Article.status == "published")).all()
    examples = examples_by_article(session)
    # Articles search could not take are missing on purpose: no rebuild for them.
    skipped = {a.id for a in published if a.index_error}
    in_db = {(a.id, stamp(a, examples.get(a.id, []))) for a in published if not a.index_error}
    in_documents = {(row.article_id, row.stamp) for row in session.execute(
        sa.select(SearchDocument.article_id, SearchDocument.stamp)) if row.article_id not in skipped}
    return in_db != in_documents
