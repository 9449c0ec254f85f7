"""What a customer typed into the contact form, checked: each field's message says what to fix.

Text is cleaned before it is measured: NUL and other control characters are dropped (line breaks
and tabs stay in the question), so whatever is typed or pasted can be stored, matched and mailed.
The messages are written in English and looked up with the caller's ``_``, like the emails'.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from kb.autoreply.addresses import Unsendable, reply_address
from kb.autoreply.outgoing import body_text, readable
from kb.errors import FieldError
from kb.followup.customers import EMAIL
from kb.followup.sources import MAX_ADDRESS

MAX_NAME = 120
MAX_SUBJECT = 200
FIELDS = ("name", "email", "subject", "question")
_LINE_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _identity(message: str, **values: Any) -> str:
    """English, with the values filled in: ``_`` when the caller gives none."""
    return message % values if values else message


def one_line(value: object) -> str:
    """A name or subject as one line: control characters (line breaks too) dropped, spaces folded."""
    return " ".join(_LINE_CONTROLS.sub(" ", readable(value).replace("\x00", "")).split())


def question_text(value: object) -> str:
    """The question's text: lines kept, NUL and other control characters dropped, ends trimmed."""
    return body_text(value).replace("\x00", "").strip()


@dataclass(frozen=True)
class ContactForm:
    """A checked question: name (may be empty), address, subject (may be empty) and the question."""

    name: str
    email: str
    subject: str
    question: str

    @property
    def mail_subject(self) -> str:
        """The subject, or the question's first words when the customer left it empty."""
        if self.subject:
            return self.subject
        words = " ".join(self.question.split())
        return words if len(words) <= 80 else words[:79].rsplit(" ", 1)[0] + "…"


def check_address(value: object) -> str:
    """The customer's address if kb can write to it (empty when it cannot)."""
    address = one_line(value)
    if not address or len(address) > MAX_ADDRESS or not EMAIL.fullmatch(address):
        return ""
    try:
        reply_address("", address)
    except Unsendable:
        return ""
    return address


def check_form(values: Mapping[str, Any], max_chars: int,
               _: Callable[..., str] = _identity) -> ContactForm:
    """The form's values checked and cleaned; FieldError with a message per field that is wrong."""
    name, subject = one_line(values.get("name")), one_line(values.get("subject"))
    question = question_text(values.get("question"))
    errors = {}
    if len(name) > MAX_NAME:
        errors["name"] = _("Shorten your name to at most %(count)s characters.", count=MAX_NAME)
    email = check_address(values.get("email"))
    if not email:
        errors["email"] = _("Enter your email address, such as name@example.com, so we can answer you.")
    if len(subject) > MAX_SUBJECT:
        errors["subject"] = _("Shorten the subject to at most %(count)s characters.", count=MAX_SUBJECT)
    if not question:
        errors["question"] = _("Write your question.")
    elif len(question) > max_chars:
        errors["question"] = _("Your question is %(length)s characters long; shorten it to at most %(count)s "
                               "characters.", length=len(question), count=max_chars)
    if errors:
        raise FieldError(errors)
    return ContactForm(name=name, email=email.lower() if email.isascii() else email, subject=subject,
                       question=question)
