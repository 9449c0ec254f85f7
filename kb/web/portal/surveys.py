"""The satisfaction survey's page: /<lang>/survey/<token>, from the links of the re-survey email.

GET only shows the form (the clicked score chosen): mail scanners open every link of an email, and
must not answer for the customer. The customer's POST (with a CSRF token) records the answer
through kb.followup.surveys.answer_survey, which keeps the first answer; a second submit only says
so. Forged links get a 400 page, expired ones a 410 page naming the support address.
"""

from __future__ import annotations

from flask import abort, current_app, render_template, request
from flask_babel import gettext as _

from kb.db import get_session
from kb.errors import FieldError, NotFound
from kb.followup import surveys
from kb.followup.models import Survey
from kb.followup.survey_email import score_labels
from kb.web.portal import bp
from kb.web.portal.routes import PAGE


def _survey_or_refuse(token: str) -> Survey:
    """The survey the token names; otherwise the page that says why (400, 404 or 410)."""
    settings = current_app.config
    days = f"{float(settings['SURVEY_LINK_DAYS']):g}"  # 14, or 0.5: never "14.0"
    try:
        return surveys.survey_for_token(get_session(), token, settings)
    except surveys.InvalidSurveyLink:  # the domain's message is English; the customer gets theirs
        abort(400, description=_("This survey link is not valid: it may have been cut short or altered. "
                                 "Please copy the whole link from the email."))
    except NotFound:
        abort(404, description=_("This survey is no longer on record."))
    except surveys.ExpiredSurveyLink:
        abort(410, description=_("This survey link has expired: it worked for %(days)s days after we sent it. "
                                 "If you would like to tell us how we did, please write to %(address)s.",
                                 days=days,
                                 address=settings["SUPPORT_ADDRESS"]))


def _chosen(value: str | None) -> int | None:
    """The score a link chose, if it is one (anything else chooses none: the form still shows)."""
    return int(value) if value in {str(score) for score in surveys.SCORES} else None


def _page(survey: Survey, *, chosen: int | None = None, comment: str = "", done: str = "", error: str = "",
          status: int = 200):
    """The form, or what became of the answer when ``done`` is set."""
    return render_template("portal/survey.html", survey=survey, labels=score_labels(_), chosen=chosen,
                           comment=comment, done=done, error=error), status


@bp.get(PAGE + "/survey/<token>")
def survey(token: str):
    """Show the survey with the clicked score chosen; nothing is recorded by opening the link."""
    found = _survey_or_refuse(token)
    if found.state == "answered":
        return _page(found, done="already")
    return _page(found, chosen=_chosen(request.args.get("score")))


@bp.post(PAGE + "/survey/<token>")
def survey_answer(token: str):
    """Record the customer's score and comment; the first answer is kept."""
    found = _survey_or_refuse(token)
    comment = request.form.get("comment", "")
    session = get_session()
    try:
        recorded = surveys.answer_survey(session, found, request.form.get("score", ""), comment,
                                         current_app.config)
    except FieldError:
        return _page(found, comment=comment[:surveys.MAX_COMMENT], error=_("Choose a score from 1 to 5."),
                     status=400)
    session.commit()
    if not recorded:
        return _page(found, done="already")
    return _page(found, done="low" if found.score in surveys.LOW_SCORES else "thanks")
