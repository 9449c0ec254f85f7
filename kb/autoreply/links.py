"""Signed "Solved" / "Still need help" links in auto-replies: they cannot be forged or altered.

The token signs the record id and the action with the app's SECRET_KEY; nothing secret is in it,
and nothing is stored, so a link works for as long as the key stays the same.
"""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeSerializer

from kb.errors import ValidationError

SALT = "kb-mail-feedback"
SOLVED, HELP = "solved", "help"
ACTIONS = (SOLVED, HELP)


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
    """(record_id, action) from a token; ValidationError when it was forged or altered."""
    try:
        data = _serializer(secret).loads(token)
    except BadSignature:
        raise ValidationError("This link is not valid: it may have been cut short or altered. "
                              "Please copy the whole link from the email.") from None
    if (not isinstance(data, dict) or data.get("a") not in ACTIONS
            or not isinstance(data.get("r"), int) or isinstance(data.get("r"), bool)):
        raise ValidationError("This link is not valid. Please copy the whole link from the email.")
    return data["r"], data["a"]
