"""The recovery ledger as CSV for finance: every row, streamed a few hundred at a time.

One line per ledger row, in the order they were written. Cases and customers are given by their id
(finance can look them up in kb; their names are personal data an export need not copy). Reasons
and references are text agents typed, so a cell a spreadsheet would run as a formula gets a leading
quote (kb.followup.report_csv.safe_cell).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time, timedelta
from typing import Any, Iterator, Mapping
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.errors import ValidationError
from kb.followup.report_csv import safe_cell
from kb.models import Agent
from kb.recovery.models import CENT, GestureType, RecoveryEntry

HEADER = ("id", "created_at", "kind", "offer_id", "corrects_id", "state", "case_id", "customer_id", "agent",
          "gesture_type", "amount", "currency", "reason", "reference", "approver", "approver_role", "bounds",
          "sample")
COLUMNS = tuple(getattr(RecoveryEntry, name) for name in (
    "id", "created_at", "kind", "offer_id", "corrects_id", "state", "case_id", "customer_id", "amount", "currency",
    "reason", "reference", "bounds", "sample"))
BATCH = 500  # rows fetched per round trip: memory stays flat however long the ledger is
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)


def parse_day(text: str | None, which: str) -> date | None:
    """A YYYY-MM-DD filter date, None when empty, or ValidationError naming the field."""
    if not (text or "").strip():
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"The '{which}' date {text[:40]!r} is not a date: write it as YYYY-MM-DD.") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValidationError(f"The '{which}' date must lie between {FIRST_DAY} and {LAST_DAY}.")
    return day


def period(settings: Mapping[str, Any], first_text: str | None,
           last_text: str | None) -> tuple[datetime | None, datetime | None]:
    """[start, end) of the days from ``first_text`` to ``last_text`` (inclusive) in TIME_ZONE; None = open."""
    first, last = parse_day(first_text, "from"), parse_day(last_text, "to")
    if first and last and first > last:
        raise ValidationError("The 'from' date is after the 'to' date: swap the two dates.")
    zone = ZoneInfo(str(settings.get("TIME_ZONE") or "UTC"))
    return (first and datetime.combine(first, time(0), zone),
            last and datetime.combine(last + timedelta(days=1), time(0), zone))


def _statement(start: datetime | None, end: datetime | None):
    """The ledger rows in [start, end) with their agent's and approver's email and gesture's name."""
    writer, approver = so.aliased(Agent), so.aliased(Agent)
    # Plain columns, not entities: nothing piles up in the session's identity map while streaming.
    stmt = (sa.select(*COLUMNS, writer.email.label("agent_email"), approver.email.label("approver_email"),
                      GestureType.name.label("gesture"))
            .join(writer, writer.id == RecoveryEntry.agent_id)
            .outerjoin(approver, approver.id == RecoveryEntry.approver_id)
            .outerjoin(GestureType, GestureType.id == RecoveryEntry.gesture_type_id)
            .order_by(RecoveryEntry.id))
    if start is not None:
        stmt = stmt.where(RecoveryEntry.created_at >= start)
    if end is not None:
        stmt = stmt.where(RecoveryEntry.created_at < end)
    return stmt


def row(entry: Any) -> list[Any]:
    """One ledger row's cells (a row of ``_statement``), in HEADER's order."""
    snapshot = entry.bounds or {}
    return [entry.id, entry.created_at.isoformat(), entry.kind, entry.offer_id or "", entry.corrects_id or "",
            entry.state, entry.case_id or "", entry.customer_id or "", safe_cell(entry.agent_email),
            safe_cell(entry.gesture or ""), str(entry.amount.quantize(CENT)), entry.currency, safe_cell(entry.reason),
            safe_cell(entry.reference), safe_cell(entry.approver_email or ""),
            snapshot.get("approver_role", ""),
            safe_cell(json.dumps(snapshot.get("checked", []), separators=(",", ":"), sort_keys=True)),
            "yes" if entry.sample else "no"]


def lines(session: so.Session, start: datetime | None = None, end: datetime | None = None) -> Iterator[str]:
    """The CSV text, a header line and then one line per ledger row, produced as it is read."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")

    def take() -> str:
        text = out.getvalue()
        out.seek(0)
        out.truncate()
        return text

    writer.writerow(HEADER)
    yield take()
    result = session.execute(_statement(start, end).execution_options(yield_per=BATCH))
    for batch in result.partitions():
        writer.writerows(row(entry) for entry in batch)
        yield take()
