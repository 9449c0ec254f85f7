"""When the clock runs for a case: business hours, and the acknowledgement deadline counted in them.

KB_BUSINESS_HOURS is a comma-separated list of ranges such as "mon-fri 09:00-17:00, sat 10:00-14:00"
in KB_TIME_ZONE (an IANA name); empty means always. Outside business hours the escalation clock
waits: a case opened Friday 16:55 with 15 minutes to acknowledge is due Monday 09:10. Minutes are
real minutes: ranges are read on the local wall clock of each day, then counted in UTC, so a range
that a DST change shortens counts an hour less that day.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RANGE = re.compile(r"(?P<days>[a-z]{3}(?:-[a-z]{3})?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})")
Hours = dict[int, list[tuple[int, int]]]  # weekday (0 = Monday) -> [(start, end) in minutes of the day]


def _minutes(text: str, *, end: bool) -> int:
    """"09:30" -> 570; "24:00" only as the end of a range."""
    hours, minutes = (int(part) for part in text.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not end)):
        raise ValueError(f"{text} is not a time of day")
    return hours * 60 + minutes


def _days(text: str) -> list[int]:
    """"mon-fri" -> [0..4]; "fri-mon" wraps over the weekend; "sat" -> [5]."""
    first, _, last = text.partition("-")
    if first not in DAYS or (last and last not in DAYS):
        raise ValueError(f"{text} is not a day or a range of days (mon, tue, ... sun)")
    start, stop = DAYS.index(first), DAYS.index(last or first)
    return [(start + i) % 7 for i in range((stop - start) % 7 + 1)]


def parse(value: str) -> Hours:
    """The ranges of a KB_BUSINESS_HOURS value; {} for empty (always). ValueError if malformed."""
    hours: Hours = {}
    for item in (part.strip().lower() for part in str(value or "").split(",")):
        if not item:
            if str(value or "").strip():
                raise ValueError("an empty range between commas")
            continue
        match = RANGE.fullmatch(item)
        if match is None:
            raise ValueError(f"{item!r} is not like 'mon-fri 09:00-17:00'")
        start, end = _minutes(match["start"], end=False), _minutes(match["end"], end=True)
        if end <= start:
            raise ValueError(f"{item!r} ends before it starts")
        for day in _days(match["days"]):
            hours.setdefault(day, []).append((start, end))
    return {day: _merged(ranges) for day, ranges in hours.items()}


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted ranges with overlapping or touching ones joined."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def zone(settings: Mapping[str, Any]) -> ZoneInfo:
    """KB_TIME_ZONE as a ZoneInfo (checked at start by its rule)."""
    return ZoneInfo(str(settings.get("TIME_ZONE") or "UTC"))


def valid_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows."""
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return False
    return bool(name)


def _local(day: date, minute: int, tz: ZoneInfo) -> datetime:
    """The UTC instant of ``minute`` past midnight of ``day`` on the local wall clock (24:00 = next day)."""
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)
    return wall.replace(tzinfo=tz).astimezone(timezone.utc)


def _periods(hours: Hours, tz: ZoneInfo, start: datetime):
    """The business periods (UTC start, UTC end) that end after ``start``, in order, for ever."""
    day = start.astimezone(tz).date() - timedelta(days=1)  # a period of yesterday's date may still run
    while True:
        for first, last in hours.get(day.weekday(), ()):
            begins, ends = _local(day, first, tz), _local(day, last, tz)
            if ends > start and ends > begins:
                yield max(begins, start), ends
        day += timedelta(days=1)


def ack_deadline(settings: Mapping[str, Any], start: datetime) -> datetime:
    """When a case (re)opened at ``start`` must be acknowledged by: FOLLOWUP_ACK_MINUTES of business time."""
    left = timedelta(minutes=float(settings["FOLLOWUP_ACK_MINUTES"]))
    hours = parse(settings.get("BUSINESS_HOURS") or "")
    if not hours:
        return start + left
    for begins, ends in _periods(hours, zone(settings), start.astimezone(timezone.utc)):
        if begins + left <= ends:
            return begins + left
        left -= ends - begins
    raise AssertionError("unreachable: business hours repeat every week")


def in_business_hours(settings: Mapping[str, Any], when: datetime) -> bool:
    """Whether the escalation clock runs at ``when`` (always, without KB_BUSINESS_HOURS)."""
    hours = parse(settings.get("BUSINESS_HOURS") or "")
    if not hours:
        return True
    local = when.astimezone(zone(settings))
    minute = local.hour * 60 + local.minute + local.second / 60
    return any(start <= minute < end for start, end in hours.get(local.weekday(), ()))


def describe(settings: Mapping[str, Any], gettext=None) -> str:
    """"Business hours: Mon–Fri 09:00–17:00, Sat 10:00–14:00 (Europe/Oslo)", or that the clock always runs."""
    _ = gettext or (lambda text, **values: text % values if values else text)
    hours = parse(settings.get("BUSINESS_HOURS") or "")
    if not hours:
        return _("Business hours: always (the clock never waits)")
    groups: dict[tuple[tuple[int, int], ...], list[int]] = {}
    for day in sorted(hours):
        groups.setdefault(tuple(hours[day]), []).append(day)
    parts = [f"{_day_span(days, _)} " + ", ".join(f"{_hhmm(a)}–{_hhmm(b)}" for a, b in ranges)
             for ranges, days in sorted(groups.items(), key=lambda item: item[1][0])]
    return _("Business hours: %(hours)s (%(zone)s)", hours=", ".join(parts), zone=str(zone(settings)))


def _day_span(days: list[int], _) -> str:
    """[0, 1, 2, 3, 4] -> "Mon–Fri"; [0, 2] -> "Mon, Wed"."""
    runs: list[list[int]] = []
    for day in days:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    names = (_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun"))  # literal: pybabel finds them
    return ", ".join(names[r[0]] + (f"–{names[r[-1]]}" if len(r) > 1 else "") for r in runs)


def _hhmm(minute: int) -> str:
    """570 -> "09:30"."""
    return f"{minute // 60:02d}:{minute % 60:02d}"
