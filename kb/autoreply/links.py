"""Signed "Solved" / "Still need help" links in auto-replies: they cannot be forged or altered.

The token signs the record id and the action with the app's SECRET_KEY; nothing secret is in it,
and nothing is stored. A link expires FEEDBACK_LINK_DAYS after its email arrived: the portal
checks the record's age (``expired``), so links sent before kb had the setting expire too.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from itsdangerous import BadData, URLSafeSerializer

from kb.errors import ValidationError
from kb.models import MAX_ID, utcnow

SALT = "kb-mail-feedback"
SOLVED, HELP = "solved", "help"
ACTIONS = (SOLVED, HELP)


class InvalidLink(ValidationError):
    """A feedback link kb did not make: forged, altered or cut short. The portal shows the customer
    its own translated sentence for this kind of error; the English message is for logs."""


def _serializer(secret: str) -> URLSafeSerializer:
    """The one serializer every link is made and read with."""
    if not secret:
        raise ValidationError("Set SECRET_KEY: feedback links in emails are signed with it.")
    return URLSafeSerializer(secret, salt=SALT)


def make_token(secret: str, record_id: int, action: str) -> str:
    """A URL-safe signed token for one record and action."""
    if action not in ACTIONS:
        raise ValidationError(f"unknown feedback action {action!r}: use solved or help")
    return _serializer(secret).dumps({"r": int(record_id), "a": action})


def make_feedback_urls(base_url: str, secret: str, record_id: int) -> tuple[str, str]:
    """(solved_url, help_url): BASE_URL/mail/feedback/<token> for each action."""
    base = base_url.rstrip("/")
    return tuple(f"{base}/mail/feedback/{make_token(secret, record_id, action)}"  # type: ignore[return-value]
                 for action in ACTIONS)


def read_token(secret: str, token: str) -> tuple[int, str]:
    """(record_id, action) from a token; InvalidLink when it was forged, altered or cut short."""
    try:
        data = _serializer(secret).loads(token)
    except (BadData, ValueError, RecursionError):
        # BadData: a forged or altered signature, or a signed payload that is not our JSON.
        raise InvalidLink("This link is not valid: its signature does not match (cut short or altered).") from None
    record_id = data.get("r") if isinstance(data, dict) else None
    if (not isinstance(data, dict) or data.get("a") not in ACTIONS or not isinstance(record_id, int)
            or isinstance(record_id, bool) or not 0 < record_id <= MAX_ID):
        raise InvalidLink("This link is not valid: it is signed, but its content is not a feedback link kb makes.")
    return record_id, data["a"]


def expired(received_at: datetime, days: float, now: datetime | None = None) -> bool:
    """Whether a feedback link about an email received at ``received_at`` is older than ``days``."""
    return (now or utcnow()) - received_at > timedelta(days=days)
