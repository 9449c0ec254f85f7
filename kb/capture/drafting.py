"""A new draft article from an email a person handled, with the customer's personal data removed.

Before a draft is made, ``similar_articles`` offers the existing articles closest to the email
(the matcher's suggestions stored with it, then search results for its subject), so an agent can
improve one of them instead. ``draft_from_email`` makes the draft: the question (subject and
cleaned text) and, when an agent answered from kb, the answer, both scrubbed; the draft also
keeps the question as an example question (source "answered": a customer asked exactly this), so
once published, the matcher and search know it. One email makes one draft: a second request
opens the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb import search
from kb.articles import ArticleDraft, create_article, normalise_lang
from kb.autoreply.cleaning import clean_subject
from kb.autoreply.models import MailRecord
from kb.capture import answering, examples
from kb.capture.models import ExampleQuestion
from kb.capture.scrub import scrub
from kb.errors import FieldError, ValidationError
from kb.i18n import default_language
from kb.models import Agent, Article

MAX_SIMILAR = 5
TITLE_CHARS = 120
SEARCH_CHARS = 200  # of the question, as a search query: its gist, not every word


@dataclass
class Similar:
    """An existing article close to the email: the matcher's score, or the search's rank."""

    article: Article
    score: float | None
    source: str  # "matcher" or "search"


def similar_articles(session: so.Session, record: MailRecord, limit: int = MAX_SIMILAR) -> list[Similar]:
    """The articles closest to the email, best first: the matcher's suggestions, then search results."""
    found = [Similar(s.article, s.score, "matcher") for s in answering.suggestions(session, record)]
    query = clean_subject(record.subject or "") or (record.text or "")[:SEARCH_CHARS]
    if query.strip() and len(found) < limit:
        page = search.search_articles(session, query, per_page=limit, log=False)
        seen = {s.article.id for s in found}
        found += [Similar(r.article, None, "search") for r in page.results if r.article.id not in seen]
    return found[:limit]


def _title(record: MailRecord, names: list[str]) -> str:
    """The draft's title: the scrubbed subject, else the question's first line, cut at a word."""
    title = " ".join(scrub(clean_subject(record.subject or ""), names).split())
    if not title:
        first = next((line for line in (record.text or "").splitlines() if line.strip()), "")
        title = " ".join(scrub(first, names).split())
    if len(title) > TITLE_CHARS:
        title = title[:TITLE_CHARS].rsplit(" ", 1)[0] + "…"
    return title or "Question from an email"


def draft_body(record: MailRecord, answer: str, names: list[str]) -> str:
    """The draft's Markdown: the customer's question (quoted) and the agent's answer, both scrubbed."""
    question = scrub(record.text or "", names).strip()
    quoted = "\n".join(f"> {line}" if line.strip() else ">" for line in question.splitlines()) or "> (no text)"
    body = f"## The question\n\n{quoted}\n\n## The answer\n\n"
    return body + (scrub(answer, names).strip() or "Write the answer here.") + "\n"


def existing_draft(session: so.Session, record: MailRecord) -> Article | None:
    """The draft made from this email earlier, if it is still a draft."""
    return session.scalar(sa.select(Article).join(ExampleQuestion, ExampleQuestion.article_id == Article.id).where(
        ExampleQuestion.mail_record_id == record.id, Article.status == "draft").order_by(Article.id).limit(1))


def draft_from_email(session: so.Session, record: MailRecord, agent: Agent,
                     settings: Mapping[str, Any]) -> tuple[Article, bool]:
    """A new draft from the email, with its question as an example; (the earlier draft, False) if one exists.

    ValidationError when the email has no text to make an article of. The caller commits.
    """
    earlier = existing_draft(session, record)
    if earlier is not None:
        return earlier, False
    names = answering.record_names(record)
    if not (record.subject or "").strip() and not (record.text or "").strip():
        raise ValidationError("This email has no text to make an article of.")
    try:
        lang = normalise_lang(record.lang or default_language(settings))
    except FieldError:
        lang = default_language(settings)
    draft = ArticleDraft(title=_title(record, names), lang=lang,
                         body_md=draft_body(record, answering.recorded_answer(session, record), names))
    article = create_article(session, draft, author=agent, status="draft", note="Drafted from an email")
    question = answering.question_text(record)
    if question:
        examples.learn(session, article.id, question, source="answered", lang=record.lang or "",
                       names=names, mail_record_id=record.id, agent_id=agent.id)
    return article, True
