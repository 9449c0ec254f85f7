"""Signed, expiring approve and decline links in approval emails (and the team's webhook).

A token signs the offer, the action, the agent it was sent to and when it expires, with the app's
SECRET_KEY and a salt of its own (so no other kb token reads as one). Nothing is stored: the link
works until LINK_HOURS after it was made, and only for the agent it names. The webhook's links go
to a team channel, not to one person: they name agent 0, "any approver who logs in".

A link never decides anything by itself: it opens a confirmation page, and the decision is a
CSRF-protected POST in the approver's own session (mail scanners open links; they cannot POST).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from itsdangerous import BadData, URLSafeSerializer

from kb.errors import ValidationError
from kb.models import MAX_ID, utcnow

SALT = "kb-recovery-approval"
ACTIONS = ("approve", "decline")
ANY_APPROVER = 0  # the webhook's links: whoever may decide, once logged in
LINK_HOURS = 72  # long enough for a weekend; the queue page works whatever a link's age


class InvalidApprovalLink(ValidationError):
    """An approval link kb did not make: forged, altered, cut short, or for another offer or action."""


class ExpiredApprovalLink(ValidationError):
    """An approval link older than LINK_HOURS."""


class NotYourApprovalLink(ValidationError):
    """An approval link sent to another agent than the one logged in."""


@dataclass(frozen=True)
class ApprovalLink:
    """What a valid token says."""

    offer_id: int
    action: str
    agent_id: int  # ANY_APPROVER for the webhook's links
    expires_at: datetime


def _serializer(secret: str) -> URLSafeSerializer:
    """The one serializer approval tokens are made and read with."""
    if not secret:
        raise ValidationError("Set SECRET_KEY: approval links in emails are signed with it.")
    return URLSafeSerializer(secret, salt=SALT)


def make_token(secret: str, offer_id: int, action: str, agent_id: int, now: datetime | None = None) -> str:
    """A URL-safe signed token for one offer, action and recipient, valid LINK_HOURS from ``now``."""
    if action not in ACTIONS:
        raise ValidationError(f"unknown approval action {action!r}: use approve or decline")
    expires = (now or utcnow()) + timedelta(hours=LINK_HOURS)
    return _serializer(secret).dumps({"o": int(offer_id), "x": action, "a": int(agent_id),
                                      "e": calendar.timegm(expires.utctimetuple())})


def make_urls(base_url: str, secret: str, offer_id: int, agent_id: int,
              now: datetime | None = None) -> dict[str, str]:
    """{"approve": url, "decline": url}: BASE_URL/agent/recovery/approvals/<offer>/<action>?t=<token>."""
    base = base_url.rstrip("/")
    return {action: f"{base}/agent/recovery/approvals/{offer_id}/{action}?t="
                    f"{make_token(secret, offer_id, action, agent_id, now)}" for action in ACTIONS}


def _whole(value: object, low: int) -> bool:
    """An int (not a bool) from ``low`` to MAX_ID."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_ID


def read_token(secret: str, token: str, *, offer_id: int, action: str, agent_id: int,
               now: datetime | None = None) -> ApprovalLink:
    """The link's content if it is kb's, for this offer, action and agent, and not expired.

    Raises InvalidApprovalLink (forged, altered, or naming another offer or action),
    ExpiredApprovalLink, or NotYourApprovalLink (sent to another agent), checked in that order.
    """
    try:
        data = _serializer(secret).loads(token or "")
    except (BadData, ValueError, RecursionError):
        raise InvalidApprovalLink("This approval link is not valid: its signature does not match "
                                  "(it was cut short or altered).") from None
    if (not isinstance(data, dict) or not _whole(data.get("o"), 1) or data.get("x") not in ACTIONS
            or not _whole(data.get("a"), 0) or not _whole(data.get("e"), 0)):
        raise InvalidApprovalLink("This approval link is not valid: it is signed, but is not an approval link.")
    if (data["o"], data["x"]) != (offer_id, action):
        raise InvalidApprovalLink("This approval link is not valid: it was made for another offer or action.")
    link = ApprovalLink(data["o"], data["x"], data["a"], datetime.fromtimestamp(data["e"], timezone.utc))
    if (now or utcnow()) > link.expires_at:
        raise ExpiredApprovalLink(f"This approval link expired on {link.expires_at:%Y-%m-%d %H:%M} UTC. "
                                  "The offer is still on the approvals page.")
    if link.agent_id not in (ANY_APPROVER, agent_id):
        raise NotYourApprovalLink("This approval link was sent to another agent. Log in as that agent, "
                                  "or decide from the approvals page.")
    return link
