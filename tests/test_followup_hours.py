"""Business hours: the acknowledgement clock waits outside them, across nights, weekends and DST."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from kb.config import load_config
from kb.errors import ConfigError
from kb.followup import hours

WEEKDAYS = "mon-fri 09:00-17:00"


def settings(business_hours: str = WEEKDAYS, zone: str = "UTC", minutes: float = 15) -> dict:
    return {"BUSINESS_HOURS": business_hours, "TIME_ZONE": zone, "FOLLOWUP_ACK_MINUTES": minutes}


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))


@pytest.mark.parametrize("zone", ["UTC", "Europe/Oslo", "America/New_York", "Asia/Tokyo", "Australia/Sydney"])
def test_friday_16_55_with_15_minutes_is_due_monday_09_10(zone):
    friday = local(zone, 2024, 6, 14, 16, 55)  # a Friday
    due = hours.ack_deadline(settings(zone=zone), friday.astimezone(timezone.utc))
    assert due.astimezone(ZoneInfo(zone)) == local(zone, 2024, 6, 17, 9, 10)


@pytest.mark.parametrize(("zone", "friday", "monday", "utc_due"), [
    # Europe: summer time starts Sunday 31 March 2024 (CET +1 -> CEST +2)
    ("Europe/Oslo", (2024, 3, 29), (2024, 4, 1), datetime(2024, 4, 1, 7, 10, tzinfo=timezone.utc)),
    # Europe: summer time ends Sunday 27 October 2024
    ("Europe/Oslo", (2024, 10, 25), (2024, 10, 28), datetime(2024, 10, 28, 8, 10, tzinfo=timezone.utc)),
    # United States: daylight saving time ends Sunday 3 November 2024 (EDT -4 -> EST -5)
    ("America/New_York", (2024, 11, 1), (2024, 11, 4), datetime(2024, 11, 4, 14, 10, tzinfo=timezone.utc)),
])
def test_the_weekend_wait_follows_a_dst_change(zone, friday, monday, utc_due):
    start = local(zone, *friday, 16, 55)
    due = hours.ack_deadline(settings(zone=zone), start.astimezone(timezone.utc))
    assert due == utc_due
    assert due.astimezone(ZoneInfo(zone)) == local(zone, *monday, 9, 10)


def test_minutes_are_real_minutes_in_a_range_that_a_dst_change_shortens():
    # Sunday 31 March 2024 in Oslo: 02:00 CET jumps to 03:00 CEST, so 01:00-04:00 lasts two hours.
    start = local("Europe/Oslo", 2024, 3, 31, 1, 30)
    due = hours.ack_deadline(settings("sun 01:00-04:00", "Europe/Oslo", 60), start)
    assert due == datetime(2024, 3, 31, 1, 30, tzinfo=timezone.utc)  # 03:30 CEST: sixty real minutes
    due = hours.ack_deadline(settings("sun 01:00-04:00", "Europe/Oslo", 120), start)
    assert due.astimezone(ZoneInfo("Europe/Oslo")) == local("Europe/Oslo", 2024, 4, 7, 1, 30)


@pytest.mark.parametrize(("start", "minutes", "due"), [
    ((2024, 6, 11, 10, 0), 15, (2024, 6, 11, 10, 15)),  # inside: plain minutes
    ((2024, 6, 10, 6, 0), 15, (2024, 6, 10, 8, 15)),  # before opening: from 08:00
    ((2024, 6, 11, 22, 0), 15, (2024, 6, 12, 8, 15)),  # at night: from the next morning
    ((2024, 6, 14, 15, 55), 15, (2024, 6, 15, 10, 10)),  # Friday: on to Saturday's range
    ((2024, 6, 15, 13, 50), 15, (2024, 6, 17, 8, 5)),  # Saturday: on to Monday
    ((2024, 6, 11, 15, 0), 600, (2024, 6, 13, 9, 0)),  # longer than a day: 60 + 480 + 60 minutes
])
def test_several_ranges(start, minutes, due):
    config = settings("mon-fri 08:00-16:00, sat 10:00-14:00", "Europe/Oslo", minutes)
    got = hours.ack_deadline(config, local("Europe/Oslo", *start))
    assert got.astimezone(ZoneInfo("Europe/Oslo")) == local("Europe/Oslo", *due)


def test_without_business_hours_the_clock_always_runs():
    start = datetime(2024, 6, 15, 23, 58, tzinfo=timezone.utc)  # a Saturday night
    assert hours.ack_deadline(settings(""), start) == datetime(2024, 6, 16, 0, 13, tzinfo=timezone.utc)
    assert hours.in_business_hours(settings(""), start)


@pytest.mark.parametrize(("when", "inside"), [
    ((2024, 6, 10, 9, 0), True), ((2024, 6, 10, 16, 59), True), ((2024, 6, 10, 17, 0), False),
    ((2024, 6, 10, 8, 59), False), ((2024, 6, 15, 12, 0), False), ((2024, 6, 16, 12, 0), False),
])
def test_in_business_hours_reads_the_local_clock(when, inside):
    moment = local("Asia/Tokyo", *when).astimezone(timezone.utc)
    assert hours.in_business_hours(settings(zone="Asia/Tokyo"), moment) is inside


def test_ranges_over_midnight_of_the_week_and_24_00():
    config = settings("fri-mon 00:00-24:00", "UTC", 60)
    assert hours.in_business_hours(config, datetime(2024, 6, 16, 3, 0, tzinfo=timezone.utc))  # Sunday
    assert not hours.in_business_hours(config, datetime(2024, 6, 12, 3, 0, tzinfo=timezone.utc))  # Wednesday
    # Monday 23:30 + 60 minutes: 30 on Monday, then nothing until Friday 00:30
    due = hours.ack_deadline(config, datetime(2024, 6, 17, 23, 30, tzinfo=timezone.utc))
    assert due == datetime(2024, 6, 21, 0, 30, tzinfo=timezone.utc)


def test_describe():
    assert hours.describe(settings("mon-fri 09:00-17:00, sat 10:00-14:00", "Europe/Oslo")) == \
        "Business hours: Mon–Fri 09:00–17:00, Sat 10:00–14:00 (Europe/Oslo)"
    assert hours.describe(settings("mon 08:00-12:00, mon 13:00-16:00, wed 08:00-12:00, wed 13:00-16:00")) == \
        "Business hours: Mon, Wed 08:00–12:00, 13:00–16:00 (UTC)"
    assert "always" in hours.describe(settings(""))


@pytest.mark.parametrize(("name", "value"), [
    ("BUSINESS_HOURS", "weekdays 9 to 5"), ("BUSINESS_HOURS", "mon-fri 17:00-09:00"),
    ("BUSINESS_HOURS", "mon-fri 09:00-24:30"), ("TIME_ZONE", "Mars/Olympus_Mons"), ("TIME_ZONE", "CEST+2"),
])
def test_a_bad_value_stops_kb_naming_the_setting(tmp_path, name, value):
    with pytest.raises(ConfigError, match=f"KB_{name}"):
        load_config({"INSTANCE_DIR": str(tmp_path), name: value}, environ={})


def test_good_values_are_accepted(tmp_path):
    config = load_config({"INSTANCE_DIR": str(tmp_path), "BUSINESS_HOURS": "Mon-Fri 08:00-16:00, sat 10:00-14:00",
                          "TIME_ZONE": "America/Sao_Paulo"}, environ={})
    assert hours.parse(config["BUSINESS_HOURS"])[5] == [(600, 840)]
