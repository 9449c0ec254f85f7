"""Revision history of an article: the list, a diff between any two, and restore with a confirmation."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for

from kb import drafts
from kb.db import get_session
from kb.errors import ValidationError
from kb.revisions import get_revision
from kb.web.agent import bp
from kb.web.agent.auth import current_agent
from kb.web.agent.diffs import revision_diff
from kb.web.agent.editor import base_revision, get_article_or_404


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
        by_number.values(), key=lambda r: r.number, reverse=True), a=a, b=b, diff=diff, latest=latest,
        state=drafts.draft_state(get_session(), article))


@bp.route("/articles/<int:article_id>/revisions/<int:number>/restore", methods=["GET", "POST"])
def restore(article_id: int, number: int):
    """Ask before restoring (GET), then restore (POST): into a draft of a live article unless "live" is chosen.

    A draft is the default because a restore usually wants a look before customers see it; the
    confirmation page also offers "restore and publish now" for rolling back a bad edit at once.
    """
    article = get_article_or_404(article_id)
    session = get_session()
    revision = get_revision(session, article, number)
    if revision is None:
        abort(404, f"This article has no revision {number}.")
    state = drafts.draft_state(session, article)
    if request.method == "GET":
        current = state.pending or get_revision(session, article, state.live_number)
        return render_template("agent/restore.html", article=article, revision=revision, state=state,
                               current=current, diff=revision_diff(current, revision, address=False) if current else [])
    into_draft = request.form.get("mode") != "live"
    try:
        drafts.check_base(session, article, base_revision(request.form.get("base_revision")),
                          "Look at the history again before restoring.")
        restored = drafts.restore(session, article, number, author=current_agent(), into_draft=into_draft)
        session.commit()
    except ValidationError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("agent.revisions", article_id=article_id))
    except (sa.exc.IntegrityError, sa.exc.OperationalError):  # another change at the same instant
        session.rollback()
        flash("Another change to this article happened at the same moment. Look at the history and try again.", "error")
        return redirect(url_for("agent.revisions", article_id=article_id))
    if restored.pending:
        flash(f"Restored revision {number} into a draft (revision {restored.number}). Customers still see the "
              "published version until you publish the changes.", "success")
    else:
        flash(f"Restored revision {number} as revision {restored.number}.", "success")
    return redirect(url_for("agent.revisions", article_id=article_id, a=number, b=restored.number))
