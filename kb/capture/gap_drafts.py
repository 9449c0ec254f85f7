""""Write an article for these": a draft for a content-gap group, its questions kept as example questions.

Idempotent per group: the draft's slug is ``gap-<group key>`` (the key is a digest of the group's
questions), so a second press finds the draft made by the first, also after a rename (the old slug
redirects) and also when both presses come at once (the slug is unique: the loser finds the
winner's). The group's questions become example questions (source "gap") of the draft, so those
emails no longer show as a gap; they feed the matcher and search once the article is published
(kb.capture.examples.all_examples reads published articles only).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.articles import ArticleDraft, article_by_old_slug, create_article, get_article
from kb.capture import examples
from kb.capture.gaps import Gap, distinct
from kb.errors import FieldError
from kb.i18n import Gettext, gettext_for, language_for
from kb.models import Agent, Article

LISTED = 15  # questions listed in the draft's skeleton; all of them become example questions
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|!~])")


def gap_slug(key: str) -> str:
    """The slug of the draft written for group ``key``."""
    return f"gap-{key}"


def draft_for_key(session: so.Session, key: str) -> Article | None:
    """The article written for group ``key`` (renamed or not), or None."""
    slug = gap_slug(key)
    return get_article(session, slug) or article_by_old_slug(session, slug)


def skeleton(gap: Gap, _: Gettext) -> str:
    """The draft's body: the questions to answer (escaped, as Markdown text) and a place for the answer."""
    questions = distinct([q.text for q in gap.questions])
    lines = [_("%(count)s emails asked about this and no article answered them. Answer these questions, "
               "then delete this list:", count=gap.size), ""]
    lines += ["- " + MARKDOWN_SPECIAL.sub(r"\\\1", text) for text in questions[:LISTED]]
    if len(questions) > LISTED:
        lines.append("- " + _("and %(count)s more (see the example questions)", count=len(questions) - LISTED))
    lines += ["", "## " + _("Answer"), "", _("Write the answer here.")]
    return "\n".join(lines) + "\n"


def write_article(session: so.Session, gap: Gap, settings: Mapping[str, Any], *,
                  author: Agent | None = None) -> tuple[Article, bool]:
    """A new draft for the group with its questions as examples, or the one already written (False)."""
    found = draft_for_key(session, gap.key)
    if found is not None:
        return found, False
    lang = language_for(gap.lang, settings)
    draft = ArticleDraft(title=gap.title, body_md=skeleton(gap, gettext_for(lang, settings)), lang=lang,
                         slug=gap_slug(gap.key))
    try:
        with session.begin_nested():
            article = create_article(session, draft, author=author, status="draft",
                                     note="Written from a content gap")
    except (sa.exc.IntegrityError, FieldError):  # pressed twice at once: the other press wrote it
        found = draft_for_key(session, gap.key)
        if found is None:
            raise
        return found, False
    for question in gap.questions:
        examples.learn(session, article.id, question.text, source="gap", lang=question.lang,
                       mail_record_id=question.record_id, agent_id=author.id if author else None)
    return article, True
