"""Example questions ("also asked as"): other ways customers ask for an article.

``learn`` keeps one, scrubbed, once per article and folded text; ``forget`` removes one. The
matcher and portal search read them through ``all_examples`` / ``for_article``; a change bumps
``version`` (the newest change time and the count), which the caches compare to refit. Portal
search indexes them too: a change queues the article in the index outbox, in the same transaction,
so the indexer takes it within seconds.
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import datetime
from typing import Iterable

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.articles import enqueue_index
from kb.capture.models import EXAMPLE_SOURCES, MAX_EXAMPLE, ExampleQuestion
from kb.capture.scrub import scrub
from kb.errors import FieldError, NotFound
from kb.models import Article, utcnow


def fold(text: str) -> str:
    """The text as examples are compared: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text or "").casefold().split())


def example_key(article_id: int, text: str) -> str:
    """The unique key of an example: its article and folded text."""
    return hashlib.sha256(f"{article_id}\x00{fold(text)}".encode()).hexdigest()


def learn(session: so.Session, article_id: int, text: str, *, source: str, lang: str = "",
          names: Iterable[str] = (), mail_record_id: int | None = None, agent_id: int | None = None,
          now: datetime | None = None) -> ExampleQuestion:
    """Keep ``text`` (scrubbed) as an example question of the article; the existing row if known.

    FieldError for an empty or too long text or an unknown source; the caller commits.
    """
    if source not in EXAMPLE_SOURCES:
        raise FieldError({"source": f"Unknown source {source!r}."})
    clean = " ".join(scrub(text, names).split())
    if not clean:
        raise FieldError({"example": "Write the question as a customer would ask it."})
    if len(clean) > MAX_EXAMPLE:
        raise FieldError({"example": f"Keep an example under {MAX_EXAMPLE:,} characters."})
    if session.get(Article, article_id) is None:
        raise NotFound("No such article.")
    key = example_key(article_id, clean)
    found = session.scalar(sa.select(ExampleQuestion).where(ExampleQuestion.key == key))
    if found is not None:
        return found
    with session.begin_nested():  # two learners at once: the unique key keeps one row
        row = ExampleQuestion(article_id=article_id, key=key, text=clean, lang=lang or "", source=source,
                              mail_record_id=mail_record_id, agent_id=agent_id, created_at=now or utcnow())
        session.add(row)
        try:
            session.flush()
        except sa.exc.IntegrityError:
            row = None
    if row is not None:
        enqueue_index(session, article_id)  # the article's search document now carries this example
    return row if row is not None else session.scalar(sa.select(ExampleQuestion).where(ExampleQuestion.key == key))


def forget(session: so.Session, example_id: int) -> int:
    """Remove an example; the article it belonged to. NotFound if there is none; the caller commits."""
    row = session.get(ExampleQuestion, example_id)
    if row is None:
        raise NotFound("No such example question.")
    article_id = row.article_id
    session.delete(row)
    enqueue_index(session, article_id)
    session.flush()
    return article_id


def for_article(session: so.Session, article_id: int) -> list[ExampleQuestion]:
    """The article's examples, newest first."""
    return list(session.scalars(sa.select(ExampleQuestion).where(ExampleQuestion.article_id == article_id)
                                .order_by(ExampleQuestion.created_at.desc(), ExampleQuestion.id.desc())))


def all_examples(session: so.Session) -> list[tuple[int, str, str]]:
    """(article id, text, lang) of every example of a published article, in a stable order."""
    return [tuple(row) for row in session.execute(
        sa.select(ExampleQuestion.article_id, ExampleQuestion.text, ExampleQuestion.lang)
        .join(Article, Article.id == ExampleQuestion.article_id).where(Article.status == "published")
        .order_by(ExampleQuestion.id))]


def version(session: so.Session) -> str:
    """Changes when an example is added or removed: the count and the highest id."""
    count, top = session.execute(sa.select(sa.func.count(), sa.func.max(ExampleQuestion.id))).one()
    return f"{count}:{top or 0}"
