"""Revision history of an article: the list, a diff between any two, and restore."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from kb import articles as kb_articles
from kb.db import get_session
from kb.errors import ValidationError
from kb.web.agent import bp
from kb.web.agent.auth import current_agent
from kb.web.agent.diffs import revision_diff
from kb.web.agent.editor import get_article_or_404


@bp.get("/articles/<int:article_id>/revisions")
def revisions(article_id: int):
    """Every revision, newest first, and the diff between revisions ``a`` and ``b`` if asked."""
    article = get_article_or_404(article_id)
    by_number = {revision.number: revision for revision in article.revisions}
    latest = max(by_number)
    a = request.args.get("a", type=int, default=max(1, latest - 1))
    b = request.args.get("b", type=int, default=latest)
    if a not in by_number or b not in by_number:
        abort(404, f"This article has revisions 1 to {latest} only.")
    diff = revision_diff(by_number[a], by_number[b]) if a != b else []
    return render_template("agent/revisions.html", article=article, revisions=sorted(
        by_number.values(), key=lambda r: r.number, reverse=True), a=a, b=b, diff=diff, latest=latest)


@bp.post("/articles/<int:article_id>/revisions/<int:number>/restore")
def restore(article_id: int, number: int):
    """Bring back an old revision's content as a new revision."""
    article = get_article_or_404(article_id)
    session = get_session()
    try:
        revision = kb_articles.restore_revision(session, article, number, author=current_agent())
        session.commit()
    except ValidationError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("agent.revisions", article_id=article_id))
    flash(f"Restored revision {number} as revision {revision.number}.", "success")
    return redirect(url_for("agent.revisions", article_id=article_id, a=number, b=revision.number))
