"""Re-surveys ("know the result"): once a case is resolved, ask its customer once how satisfied they are.

``cases.change_state(..., "resolve")`` schedules the job "followup.resurvey" (key "case:<id>")
KB_RESURVEY_DELAY_HOURS later. Its handler here sends one survey email per case, however often a
runner dies: the Survey row is unique per case, the email's Message-ID is made once (ctx.message_id),
and the row's "sent" state, its sent_at and the case event are committed together with the job's own
record of the sending (ctx.deliver). It sends nothing when the case was reopened before the survey
was due, when the case has no customer email, or to an address the auto-responder would never
answer (kb.autoreply.rules: our own address, noreply, mail daemons).

The email's links open a portal page; only the customer's submit calls ``answer_survey``, which keeps
the first answer. Tokens sign the case and survey ids (no expiry inside: they expire
KB_SURVEY_LINK_DAYS after ``Survey.sent_at``, like the auto-reply's links after their email).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so
from itsdangerous import BadData, URLSafeSerializer

from kb import jobs
from kb.autoreply import rules, smtp
from kb.autoreply.addresses import Unsendable, reply_address
from kb.autoreply.compose import new_message_id
from kb.autoreply.parsing import ParsedEmail
from kb.autoreply.storable import storable_text
from kb.errors import FieldError, NotFound, ValidationError
from kb.followup import cases, customers
from kb.followup.models import Case, Survey
from kb.followup.signals import record_signal
from kb.followup.survey_email import build_survey_email
from kb.i18n import language_for
from kb.models import MAX_ID, utcnow

log = logging.getLogger(__name__)
SALT = "kb-followup-survey"  # distinct from the auto-reply links' salt: one kind of token never reads as the other
SCORES = (1, 2, 3, 4, 5)
LOW_SCORES = (1, 2)  # an answer this low is a signal: the case reopens and the team hears of it
MAX_COMMENT = 5000
JOB_KIND = "followup.resurvey"


class InvalidSurveyLink(ValidationError):
    """A survey link kb did not make: forged, altered or cut short."""


class ExpiredSurveyLink(ValidationError):
    """A survey link older than KB_SURVEY_LINK_DAYS (counted from the survey's sending)."""


def _serializer(secret: str) -> URLSafeSerializer:
    """The one serializer survey tokens are made and read with."""
    if not secret:
        raise ValidationError("Set SECRET_KEY: survey links in emails are signed with it.")
    return URLSafeSerializer(secret, salt=SALT)


def make_survey_token(secret: str, survey: Survey) -> str:
    """A URL-safe signed token naming the survey and its case (the same token on every call)."""
    return _serializer(secret).dumps({"c": int(survey.case_id), "s": int(survey.id)})


def _valid_id(value: Any) -> bool:
    """A database id: an int (not a bool) in the range of the id columns."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def read_survey_token(secret: str, token: str) -> tuple[int, int]:
    """(case_id, survey_id) of a token; InvalidSurveyLink when it was forged, altered or cut short."""
    try:
        data = _serializer(secret).loads(token)
    except (BadData, ValueError, RecursionError):
        raise InvalidSurveyLink("This survey link is not valid: its signature does not match.") from None
    if not isinstance(data, dict) or not _valid_id(data.get("c")) or not _valid_id(data.get("s")):
        raise InvalidSurveyLink("This survey link is not valid: it is signed, but is not a survey link kb makes.")
    return data["c"], data["s"]


def link_expires_at(survey: Survey, settings: Mapping[str, Any]) -> datetime | None:
    """When the survey's links stop working: KB_SURVEY_LINK_DAYS after it was sent (None: never sent)."""
    if survey.sent_at is None:
        return None
    return survey.sent_at + timedelta(days=float(settings["SURVEY_LINK_DAYS"]))


def survey_for_token(session: so.Session, token: str, settings: Mapping[str, Any],
                     now: datetime | None = None) -> Survey:
    """The sent survey a token names: InvalidSurveyLink, NotFound (gone or never sent), ExpiredSurveyLink."""
    case_id, survey_id = read_survey_token(str(settings["SECRET_KEY"]), token)
    survey = session.get(Survey, survey_id)
    if survey is None or survey.case_id != case_id or survey.state not in ("sent", "answered"):
        raise NotFound("This survey is no longer on record.")
    expires = link_expires_at(survey, settings)
    if expires is None or (now or utcnow()) > expires:
        raise ExpiredSurveyLink("This survey link has expired.")
    return survey


def check_answer(score: Any, comment: Any) -> tuple[int, str]:
    """The score (1-5) and the comment cut to size; FieldError naming what is wrong."""
    try:
        value = int(str(score).strip())
    except ValueError:
        value = 0
    if value not in SCORES:
        raise FieldError({"score": "Choose a score from 1 to 5."})
    return value, storable_text(str(comment or "").strip(), MAX_COMMENT)


def answer_survey(session: so.Session, survey: Survey, score: Any, comment: Any,
                  settings: Mapping[str, Any]) -> bool:
    """Record the customer's answer; False (nothing changed) when the survey was answered already.

    The first answer is kept: a compare-and-set on the survey's state decides, also for two submits
    at once. Sets the case's score_after; a score of 1 or 2 records a "survey" signal, which reopens
    a recently resolved case and alerts the team. The caller commits.
    """
    value, text = check_answer(score, comment)
    now = utcnow()
    changed = session.execute(sa.update(Survey).where(Survey.id == survey.id, Survey.state == "sent").values(
        state="answered", score=value, comment=text, answered_at=now).execution_options(synchronize_session=False))
    if changed.rowcount != 1:
        return False
    session.refresh(survey)
    case = cases.get_case(session, survey.case_id)
    case.score_after = value
    cases.record(session, case, "survey", channel="web", note=f"Survey answered: {value} out of 5.")
    session.flush()  # record_signal may refresh the case from the database
    if value in LOW_SCORES:
        record_signal(session, key=f"survey:{survey.id}", source="survey", settings=settings,
                      address=survey.address, score=value, words=text, channel="web", lang=case.lang,
                      thread_message_id=case.thread_message_id, thread_subject=case.thread_subject)
    return True


def address_problem(address: str, settings: Mapping[str, Any]) -> str | None:
    """Why kb must not email ``address`` as "<code>: <detail>" (the auto-responder's rules: our own
    address, noreply, mail daemons; codes of kb.autoreply.rules), or None. Only the sender rules
    apply: there is no email to judge. The detail names the address: never log it."""
    addr = (address or "").strip().lower()
    if not addr:
        return f"{rules.NOREPLY}: no email address"
    try:
        reply_address("", addr)
    except Unsendable as exc:
        return f"{rules.BAD_ADDRESS}: {exc}"
    email = ParsedEmail(from_addr=addr, reply_to=addr)
    decision = rules.loop_decision(email, str(settings.get("SUPPORT_ADDRESS") or "")) \
        or rules.automation_decision(email)
    return str(decision) if decision else None


def _recipient(session: so.Session, case: Case | None, settings: Mapping[str, Any]) -> tuple[str, str, str] | str:
    """(address, name, language) to survey, or why this case gets no survey."""
    if case is None:
        return "the case is gone"
    if case.state != "resolved":
        return f"the case is {case.state}"
    if case.customer_id is None:
        return "the case has no customer"
    if case.sample:
        return "the case is sample data (kb emails no sample customer)"
    customer = customers.live(session, case.customer_id)
    address = customers.email_of(session, customer)
    problem = address_problem(address, settings)
    if problem:
        return "the address must not be emailed (" + problem.partition(":")[0] + ")"  # no address in logs
    return address, customer.name, language_for(case.lang or customer.lang, settings)


def _survey_row(session: so.Session, case: Case, address: str) -> Survey:
    """The case's one Survey row, created if new (the unique case_id decides a race)."""
    survey = session.scalar(sa.select(Survey).where(Survey.case_id == case.id))
    if survey is not None:
        return survey
    try:
        with session.begin_nested():
            survey = Survey(case_id=case.id, address=storable_text(address, 320), state="scheduled")
            session.add(survey)
            session.flush()
    except sa.exc.IntegrityError:
        survey = session.scalar(sa.select(Survey).where(Survey.case_id == case.id))
        if survey is None:
            raise
    return survey


def _send(message, settings: Mapping[str, Any]) -> None:
    """Send the survey; a send that may have arrived counts as sent (never a second survey)."""
    try:
        smtp.send(message, settings)
    except smtp.SendUncertain as exc:
        log.warning("survey email %s may have been delivered (%s); not sending it again",
                    message["Message-ID"], exc)


@jobs.handler(JOB_KIND)
def send_resurvey(ctx: jobs.JobContext) -> None:
    """The "followup.resurvey" job: email the case's customer its one satisfaction survey."""
    if ctx.delivered:  # a runner died after sending: the survey's bookkeeping was committed with it
        return
    session, settings = ctx.session, ctx.settings
    case = session.get(Case, int(ctx.payload.get("case_id") or 0))
    found = _recipient(session, case, settings)
    existing = session.scalar(sa.select(Survey).where(Survey.case_id == case.id)) if case else None
    if isinstance(found, str) or (existing is not None and existing.state != "scheduled"):
        if existing is not None and existing.state == "scheduled":
            existing.state = "cancelled"  # prepared by a runner that died; now it must not go
        log.info("no re-survey for case %s: %s", ctx.payload.get("case_id"),
                 found if isinstance(found, str) else f"its survey is {existing.state}")
        return
    address, name, lang = found
    survey = _survey_row(session, case, address)
    message_id = ctx.message_id(lambda: new_message_id(str(settings.get("BASE_URL") or "")))
    survey.state, survey.sent_at, survey.address = "sent", utcnow(), storable_text(address, 320)
    message = build_survey_email(case, survey, settings, address=address, name=name, lang=lang,
                                 message_id=message_id, token=make_survey_token(str(settings["SECRET_KEY"]), survey),
                                 expires=link_expires_at(survey, settings))
    cases.record(session, case, "survey", channel="email", message_id=message_id, note="Satisfaction survey sent.")
    ctx.deliver(lambda: _send(message, settings))
