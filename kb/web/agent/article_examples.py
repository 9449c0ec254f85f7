"""An article's example questions in the editor: add phrasings, remove any (plain forms, no JavaScript).

Everything goes through kb.capture.examples (learn scrubs and keeps one row per wording; learn and
forget queue the article for the search index). Who may edit an article may change its examples.
"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _

from kb import agents
from kb.capture import examples
from kb.capture.models import ExampleQuestion
from kb.db import get_session
from kb.errors import FieldError
from kb.web.agent import bp
from kb.web.agent.auth import current_agent
from kb.web.agent.editor import get_article_or_404

MAX_LINES = 50  # phrasings added by one press of the button
MAX_FIELD = 50_000


def _may_edit() -> None:
    """403 unless the agent's role may edit articles (as the editor itself requires)."""
    if not agents.can(current_agent(), "edit_articles"):
        abort(403, _("Your role may not edit articles."))


def phrasings(text: str) -> list[str]:
    """The non-empty lines of the field, each with its whitespace collapsed, in order, once each."""
    lines = [" ".join(line.split()) for line in str(text or "")[:MAX_FIELD].splitlines()]
    return list(dict.fromkeys(line for line in lines if line))


def _back(article_id: int):
    """Back to the editor, at the examples section."""
    return redirect(url_for("agent.edit_article", article_id=article_id, _anchor="examples"))


@bp.post("/articles/<int:article_id>/examples")
def add_examples(article_id: int):
    """Keep each line of the field as an example question of the article (source "editor")."""
    _may_edit()
    article, session = get_article_or_404(article_id), get_session()
    lines = phrasings(request.form.get("phrasings", ""))
    if not lines:
        flash(_("Write one question per line, as a customer would ask it."), "error")
        return _back(article.id)
    if len(lines) > MAX_LINES:
        flash(_("Add at most %(n)d questions at a time.", n=MAX_LINES), "error")
        return _back(article.id)
    before = len(examples.for_article(session, article.id))
    problems = []
    for number, line in enumerate(lines, 1):
        try:
            examples.learn(session, article.id, line, source="editor", lang=article.lang or "",
                           agent_id=current_agent().id)
        except FieldError as exc:
            problems.append(_("Line %(n)d: %(why)s", n=number, why=" ".join(exc.errors.values())))
    session.commit()
    added = len(examples.for_article(session, article.id)) - before
    flash(_("Example questions added: %(n)d.", n=added)
          + ("" if added == len(lines) - len(problems) else " " + _("The others were already there.")),
          "success" if added else "info")
    for problem in problems:
        flash(problem, "error")
    return _back(article.id)


@bp.post("/articles/<int:article_id>/examples/<int:example_id>/remove")
def remove_example(article_id: int, example_id: int):
    """Remove one example question of the article (the matcher and search drop it within seconds)."""
    _may_edit()
    article, session = get_article_or_404(article_id), get_session()
    row = session.get(ExampleQuestion, example_id)
    if row is None or row.article_id != article.id:
        flash(_("That example question was already removed."), "info")
        return _back(article.id)
    examples.forget(session, example_id)
    session.commit()
    flash(_("Example question removed."), "success")
    return _back(article.id)
