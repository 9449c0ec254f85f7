"""/agent/gaps: emails that went to a person for want of a good article, grouped by topic.

The groups come from kb.capture.gaps and the drafts from kb.capture.gap_drafts; this module reads
the period, checks roles and renders. The page shows what customers wrote (scrubbed), so it follows
/agent/mail's rule (kb.agents.PERMISSIONS): support agents and admins only; editors get 403.
"""

from __future__ import annotations

import re

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from kb.capture import gap_drafts, gaps
from kb.db import get_session
from kb.errors import ValidationError
from kb.models import utcnow
from kb.web.agent import bp
from kb.web.agent.auth import current_agent, require
from kb.web.matching import matcher as shared_matcher

KEY = re.compile(r"[0-9a-f]{16}")


def _period(values):
    """(start, end, days, form, error) from the query string or form; a bad date shows the default."""
    form = {name: str(values.get(name, ""))[:40] for name in ("days", "from", "to")}
    try:
        start, end, days = gaps.period(current_app.config, form["days"], form["from"], form["to"], utcnow())
        return start, end, days, form, None
    except ValidationError as error:
        start, end, days = gaps.period(current_app.config, None, None, None, utcnow())
        return start, end, days, {"days": str(days), "from": "", "to": ""}, str(error)


@bp.get("/gaps")
def content_gaps():
    """The period's gap emails grouped by topic, largest group first, with the nearest article."""
    require("read_customer_mail")
    start, end, days, form, error = _period(request.args)
    session = get_session()
    report = gaps.find_gaps(session, start, end, matcher=shared_matcher(session))
    return render_template("agent/gaps.html", report=report, days=days, form=form, error=error,
                           periods=gaps.PERIOD_DAYS, max_emails=gaps.MAX_EMAILS), 422 if error else 200


@bp.post("/gaps/<key>/draft")
def gap_draft(key: str):
    """Write a draft for a group (or open the one already written) and go to the editor."""
    require("read_customer_mail", "edit_articles")
    if not KEY.fullmatch(key):
        abort(404)
    start, end, _days, form, _error = _period(request.form)
    session = get_session()
    article = gap_drafts.draft_for_key(session, key)
    if article is None:
        gap = gaps.find_gap(session, start, end, key)
        if gap is None:
            flash(_("These emails no longer form that group (new email came in or an article took some of "
                    "them). Here are the groups as they are now."), "info")
            return redirect(url_for("agent.content_gaps", **{k: v for k, v in form.items() if v}))
        article, _new = gap_drafts.write_article(session, gap, current_app.config, author=current_agent())
        session.commit()
        flash(_("A draft for %(count)s emails, with their questions as example questions. They count for "
                "the auto-responder once you publish it.", count=gap.size), "success")
    return redirect(url_for("agent.edit_article", article_id=article.id))
