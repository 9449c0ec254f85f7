"""THE pipeline from an email to what kb does with it: parse, clean, rules, match, decide.

The worker and `kb match` both call decide(); nothing else decides whether kb replies. A
subject + body (a `kb match` query, a test) is first turned into a small RFC 5322 message, so
it takes exactly the path a real email takes.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from kb.autoreply.matcher import Match, Matcher
from kb.autoreply.parsing import ParsedEmail, ParseError, parse_message
from kb.autoreply.rules import domain_of_base_url, skip_decision
from kb.autoreply.textproc import written_language

# Chosen on the dev split of shared/eval/stackfaq with `benchmarks/eval_match.py stackfaq dev
# --sweep`: of the settings that reply to at least 70% of dev questions (a buffer over the 60%
# goal), the one with the best coverage*precision minus the share of replies to questions whose
# answer was held out (false replies): 71.5% replied, 99.3% right, 21% false replies.
DEFAULT_THRESHOLD = 0.20
DEFAULT_MARGIN = 0.03
# A reply shows an article only if it scores at least this share of the best one's score (a
# weak third suggestion under a strong first is noise). Chosen on the StackFAQ dev split with
# `benchmarks/eval_match.py stackfaq dev --cut-sweep`: 0.50 is the largest cut under which no dev
# reply loses its right article; one 0.05 step below it for a buffer. Replies then show 2.2
# articles on average instead of 3 (README, Matching).
DEFAULT_RELATIVE_CUT = 0.45
TOP = 3
CUSTOMER = "customer@example.com"

# Decision.outcome values: what the worker does with the email.
REPLY = "reply"    # send the suggestions
PERSON = "person"  # leave it for a person (not confident, unreadable, or a customer writing back)
SKIP = "skip"      # nobody should answer (automatic mail, lists, bounces, our own mail)


@dataclass(frozen=True)
class Decision:
    """What kb does with one email, why (a "<code>: <detail>" text), and what it matched."""

    outcome: str
    reason: str
    matches: list[Match] = field(default_factory=list)
    email: ParsedEmail | None = None

    @property
    def reply(self) -> bool:
        """True when kb sends an auto-reply."""
        return self.outcome == REPLY


def should_reply(matches: list[Match], threshold: float = DEFAULT_THRESHOLD,
                 margin: float = DEFAULT_MARGIN) -> tuple[bool, str]:
    """Confident when the top score reaches ``threshold`` and leads the next by ``margin``."""
    if not matches:
        return False, "no-match: no article shares a word with the email"
    top = matches[0].score
    second = matches[1].score if len(matches) > 1 else 0.0
    if top < threshold:
        return False, f"low-score: best score {top:.3f} is under the threshold {threshold:.3f}"
    if top - second < margin - 1e-9:  # scores are rounded to 4 places: a lead equal to the margin counts
        return False, (f"ambiguous: best score {top:.3f} leads the next ({second:.3f}) by less "
                       f"than the margin {margin:.3f}")
    return True, f"confident: best score {top:.3f} >= {threshold:.3f}, lead {top - second:.3f}"


def shown_count(scores: Sequence[float], share: float = DEFAULT_RELATIVE_CUT) -> int:
    """How many of the best-first ``scores`` a reply shows: those within ``share`` of the best."""
    if not scores:
        return 0
    floor = float(scores[0]) * share - 1e-9  # scores are rounded to 4 places
    return next((n for n, score in enumerate(scores) if float(score) < floor), len(scores))


def relative_cut(settings: Mapping[str, Any]) -> float:
    """The AUTOREPLY_RELATIVE_CUT setting, the dev-chosen default where unset."""
    share = settings.get("AUTOREPLY_RELATIVE_CUT")
    return DEFAULT_RELATIVE_CUT if share is None else float(share)


def message_from_parts(subject: str, body: str, sender: str = CUSTOMER,
                       to: str = "support@example.com") -> bytes:
    """A minimal RFC 5322 message (UTF-8, quoted-printable as needed) with this subject and body."""
    message = EmailMessage(policy=default_policy)
    message["From"] = sender
    message["To"] = to
    # A header cannot hold a line break; a subject typed over lines is one line in a real email.
    message["Subject"] = " ".join(str(subject or "").split())
    message.set_content(str(body or ""))
    return message.as_bytes()


def decide(email: ParsedEmail | bytes | str, matcher: Matcher, settings: Mapping[str, Any], *,
           sent_message_ids: Container[str] = (), allow_list: Collection[str] = (),
           top: int = TOP) -> Decision:
    """Parse (if raw), apply the must-not-answer rules, match and decide; never raises ParseError."""
    if not isinstance(email, ParsedEmail):
        try:
            email = parse_message(email)
        except ParseError as exc:
            return Decision(PERSON, f"unreadable: {exc}")
    skip = skip_decision(email, support_address=settings.get("SUPPORT_ADDRESS") or "",
                         our_domain=domain_of_base_url(settings.get("BASE_URL") or ""),
                         sent_message_ids=sent_message_ids, allow_list=allow_list)
    if skip is not None:
        return Decision(PERSON if skip.needs_person else SKIP, str(skip), email=email)
    if not (email.clean_subject.strip() or email.clean_text.strip()):
        return Decision(PERSON, "empty: the email has no text to match", email=email)
    if email.headers_cut:  # what was not read may say "automatic": never risk a mail loop
        return Decision(PERSON, f"headers-cut: only part of the header block was read ({email.headers_cut}), "
                                "so kb cannot rule out automatic mail", email=email)
    email = replace(email, lang=email.lang or email_language(email, settings))
    matches = matcher.match(email.clean_text, subject=email.clean_subject, top=max(top, 2))
    confident, why = should_reply(matches, *thresholds(settings))
    return Decision(REPLY if confident else PERSON, why, matches[:top], email)


def email_language(email: ParsedEmail, settings: Mapping[str, Any]) -> str:
    """The language the customer wrote in, from the words of the subject and text (the reply's
    language); KB_DEFAULT_LANGUAGE when they say nothing."""
    return written_language(f"{email.clean_subject}\n{email.clean_text}", settings.get("DEFAULT_LANGUAGE") or "en")


def decide_parts(subject: str, body: str, matcher: Matcher, settings: Mapping[str, Any],
                 **options) -> Decision:
    """decide() for a subject and body, sent through a real message so they take the same path."""
    return decide(message_from_parts(subject, body), matcher, settings, **options)


def thresholds(settings: Mapping[str, Any]) -> tuple[float, float]:
    """(threshold, margin) from the settings, the dev-chosen defaults where unset."""
    threshold = settings.get("AUTOREPLY_THRESHOLD")
    margin = settings.get("AUTOREPLY_MARGIN")
    return (DEFAULT_THRESHOLD if threshold is None else float(threshold),
            DEFAULT_MARGIN if margin is None else float(margin))
