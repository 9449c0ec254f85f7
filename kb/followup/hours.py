"""When the clock runs for a case: the acknowledgement deadline, in business hours if configured."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping


def ack_deadline(settings: Mapping[str, Any], start: datetime) -> datetime:
    """When a case opened (or reopened) at ``start`` must be acknowledged by."""
    return start + timedelta(minutes=float(settings["FOLLOWUP_ACK_MINUTES"]))


def in_business_hours(settings: Mapping[str, Any], when: datetime) -> bool:
    """Whether the escalation clock runs at ``when`` (always, until business hours are configured)."""
    return True
