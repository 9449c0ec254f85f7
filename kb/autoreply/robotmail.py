"""The forms automatic mail takes: mail-system senders, delivery-report and out-of-office subjects.

Subjects are weak evidence (RFC 3834 section 3.1.5): customers write "Delivery failure: my
parcel never arrived". So a delivery-report subject counts only in the exact form a mail server
writes it, and an out-of-office phrase only as the whole subject or before a colon, as mail
clients and Exchange write them ("Automatic reply: Re: help", "Automatisch antwoord: ...").
Delivery reports are recognised first by their structure (kb/autoreply/rules.py).
"""

from __future__ import annotations

import re

# Senders that only ever send delivery reports (qmail's double-bounce among them).
DAEMON_LOCAL_PARTS = {
    "mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "mail_daemon", "maildaemon",
    "double-bounce", "double_bounce", "doublebounce",
}
# postmaster@ also answers people's questions; it counts as a bounce only with a report.
POSTMASTER = "postmaster"

# Whole subjects written by Postfix, Exim, Sendmail, qmail, Gmail, Yahoo and others.
_REPORT_WHOLE = (
    r"undelivered mail returned to sender|"
    r"delivery status notification(?:\s*\((?:failure|delay|delayed|success|relay|expanded)\))?|"
    r"mail delivery failed\s*:\s*returning message to sender|"
    r"mail delivery failure|failure notice|returned mail|"
    r"returned mail\s*:\s*(?:see transcript for details|user unknown|host unknown|service unavailable|"
    r"data format error|unknown mailer error.*|can ?not send message.*|could not send message.*)|"
    r"delayed mail \(still being retried\)|"
    r"warning\s*:\s*message \S+ delayed \d+ (?:minutes?|hours?|days?)|"
    r"undeliverable (?:mail|message)|message undeliverable|non-?deliverable mail|"
    r"delivery notification\s*:\s*delivery has failed|系统退信"
)
# Prefixes before the original subject, Exchange's and its translations: "Undeliverable: Help".
_REPORT_PREFIX = (
    r"undeliverable|non remis|unzustellbar|onbestelbaar|kan ikke leveres|ikke levert|"
    r"non recapitabile|no se puede entregar|配信不能|未送达|无法投递|無法傳遞"
)
DELIVERY_REPORT_SUBJECT = re.compile(
    rf"^\s*(?:(?:{_REPORT_WHOLE})\s*$|(?:{_REPORT_PREFIX})\s*[:：])", re.IGNORECASE)
# Loose words that, from postmaster@, mark a report whose subject is in no known exact form.
DELIVERY_WORDS = re.compile(
    r"deliver|returned|failure|failed|bounce|non remis|unzustellbar|leveres|levert|未送达|退信|投递",
    re.IGNORECASE)

# Out-of-office and automatic-reply phrases, in the forms Outlook/Exchange (old and new), Gmail,
# Apple Mail and vacation programs write them, in the languages kb's customers use.
_AUTOREPLY_PHRASES = (
    # en
    r"auto|auto[- ]?reply|auto[- ]?response|automatic reply|automatic response|"
    r"out of (?:the )?office(?: auto[- ]?reply)?|"
    # nb, da, sv
    r"automatisk svar|automatiskt svar|autosvar|fraværsmelding|fraværende|ikke til stede|"
    r"frånvaro|frånvarande|frånvaromeddelande|"
    # de, fr, es, pt, it
    r"abwesenheitsnotiz|automatische antwort|réponse automatique|absent du bureau|"
    r"respuesta automática|resposta automática|risposta automatica|"
    # nl
    r"automatisch antwoord|afwezig|niet aanwezig|"
    # pl
    r"odpowiedź automatyczna|automatyczna odpowiedź|poza biurem|nieobecność|"
    # ru
    r"автоматический ответ|автоответ|нет на месте|вне офиса|"
    # fi
    r"automaattinen vastaus|poissa|poissaoloviesti|"
    # ja, zh, ko
    r"自動応答|自動返信|不在|自动回复|自動回覆|自動回复|自动答复|자동 회신|자동 응답|"
    # cs, tr, hu
    r"automatická odpověď|otomatik yanıt|automatikus válasz"
)
AUTOREPLY_SUBJECT_START = re.compile(rf"^\s*(?:{_AUTOREPLY_PHRASES})\s*(?:[:：]|$)", re.IGNORECASE)

# Local parts that cannot or must not be answered: noreply in its spellings, also inside a
# name ("info-noreply"), and VERP bounce addresses ("bounces+123=x@", "list-bounces@"), but not
# a customer's "bounce.fitness@".
NOREPLY_LOCAL_PART = re.compile(
    r"(?:^|[-_.+])(?:no|do[-_.]?not)[-_.]?reply(?:$|[-_.+\d])|^bounces?(?:[+=]|$)|-bounces?$",
    re.IGNORECASE)


def is_delivery_report_subject(subject: str) -> bool:
    """True when the subject is exactly one a mail server writes on a delivery report."""
    return bool(DELIVERY_REPORT_SUBJECT.match(subject or ""))


def is_autoreply_subject(subject: str) -> bool:
    """True when the subject is an automatic-reply phrase, alone or before a colon."""
    return bool(AUTOREPLY_SUBJECT_START.match(subject or ""))
