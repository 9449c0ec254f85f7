"""The period and language an insights page shows, read from its query string.

A page shows the last 7, 30 (the default) or 90 days, or the days from one date to another in
TIME_ZONE; and every language or one of LANGUAGES. A bad value is a ValidationError that says
what to write; the pages then show the default with the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from kb.config import configured_languages
from kb.errors import ValidationError
from kb.recovery.ledger_csv import period as day_period

PERIOD_DAYS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 3660  # a custom period longer than ten years is a typo


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, the preset it came from (None for custom dates), and the language ("" = all)."""

    start: datetime
    end: datetime
    days: int | None
    lang: str = ""
    first: str = ""  # the custom dates as typed (YYYY-MM-DD), to fill the form again
    last: str = ""

    def day_list(self, zone: str = "UTC") -> list[date]:
        """Every day of the period in ``zone``, oldest first (the x axis of a chart)."""
        tz = ZoneInfo(zone)
        first, last = self.start.astimezone(tz).date(), (self.end - timedelta(microseconds=1)).astimezone(tz).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def query(self) -> dict[str, str]:
        """The query-string values that give this period again (for links, CSV and chart URLs)."""
        values = {"from": self.first, "to": self.last} if self.days is None else {"days": str(self.days)}
        return {**values, "lang": self.lang} if self.lang else values


def default_period(now: datetime) -> Period:
    """The last DEFAULT_DAYS days, every language."""
    return Period(now - timedelta(days=DEFAULT_DAYS), now, DEFAULT_DAYS)


def parse_period(settings: Mapping[str, Any], values: Mapping[str, Any], now: datetime) -> Period:
    """The period and language of ``values`` (days, from, to, lang); ValidationError for a bad one."""
    lang = str(values.get("lang") or "").strip()[:16]
    if lang and lang not in configured_languages(settings):
        raise ValidationError(f"Unknown language {lang!r}: choose one of "
                              f"{', '.join(configured_languages(settings))}, or all.")
    first, last = (str(values.get(name) or "").strip()[:40] for name in ("from", "to"))
    if first or last:
        start, end = day_period(settings, first, last)
        end = end or now
        start = start or end - timedelta(days=DEFAULT_DAYS)
        if (end - start).days > MAX_DAYS:
            raise ValidationError(f"A period can be at most {MAX_DAYS} days long: choose a later 'from' date.")
        return Period(start, end, None, lang, first, last)
    days = str(values.get("days") or "").strip()
    if days and days not in {str(d) for d in PERIOD_DAYS}:
        raise ValidationError(f"Choose a period of {', '.join(map(str, PERIOD_DAYS))} days, or from and to dates.")
    chosen = int(days) if days else DEFAULT_DAYS
    return Period(now - timedelta(days=chosen), now, chosen, lang)
