"""Asking for approval of an offer above a bound: the approvers are told at once, all admins later.

``request`` is called when an offer is recorded as pending. It schedules two jobs: "recovery.approval"
(key "offer:<id>", now) tells the approvers of the bound's role by email and the webhook, and
"recovery.approval_escalate" (key "offer:<id>", after KB_APPROVAL_ESCALATE_MINUTES) tells every
active admin if the offer is still pending then. Their handlers live beside this function.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping

import sqlalchemy.orm as so

from kb import jobs
from kb.models import utcnow
from kb.recovery.models import RecoveryEntry

ASK, ESCALATE = "recovery.approval", "recovery.approval_escalate"


def request(session: so.Session, entry: RecoveryEntry, settings: Mapping[str, Any],
            now: datetime | None = None) -> None:
    """Schedule telling the approvers about this pending offer, and the escalation; the caller commits."""
    now = now or utcnow()
    minutes = float(settings.get("APPROVAL_ESCALATE_MINUTES") or 30)
    jobs.schedule(session, ASK, f"offer:{entry.id}", run_at=now, payload={"offer_id": entry.id})
    jobs.schedule(session, ESCALATE, f"offer:{entry.id}", run_at=now + timedelta(minutes=minutes),
                  payload={"offer_id": entry.id})
