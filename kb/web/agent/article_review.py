"""An article's review date in the editor: set or clear "Review by", and "Mark as reviewed"."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from kb.db import get_session
from kb.errors import ValidationError
from kb.insights import review
from kb.web.agent import bp
from kb.web.agent.editor import get_article_or_404


@bp.post("/articles/<int:article_id>/review")
def review_article(article_id: int):
    """Save the review-by date, or mark the article reviewed (which restarts its flag's vote count)."""
    article = get_article_or_404(article_id)
    session = get_session()
    try:
        if request.form.get("action") == "reviewed":
            moved = review.mark_reviewed(article)
            message = (_("Marked as reviewed. Next review by %(day)s.", day=moved.isoformat()) if moved
                       else _("Marked as reviewed: votes count again from now."))
        else:
            day = review.set_review_by(article, request.form.get("review_by", ""))
            message = (_("Review by %(day)s saved.", day=day.isoformat()) if day
                       else _("Review date cleared."))
        session.commit()
    except ValidationError as exc:
        session.rollback()
        flash(str(exc), "error")
    else:
        flash(message, "success")
    return redirect(url_for("agent.edit_article", article_id=article.id) + "#review")
