"""Days in a person's time zone: where they start and end in UTC, across daylight-saving
changes, and how a timestamp is placed on its local day (the rule the SQL grouping follows)."""

from datetime import UTC, date, datetime

import pytest

from reapi_server.usage.calendar import DayRange, default_range, zone_named


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_a_day_in_new_york_starts_at_its_local_midnight():
    days = DayRange(date(2027, 1, 10), date(2027, 1, 10), zone_named("America/New_York"))
    assert days.start == ts("2027-01-10T05:00:00")
    assert days.end == ts("2027-01-11T05:00:00")


def test_the_spring_forward_day_is_23_hours_long_and_the_autumn_one_25():
    zone = zone_named("America/New_York")
    spring = DayRange(date(2027, 3, 14), date(2027, 3, 14), zone)
    autumn = DayRange(date(2027, 11, 7), date(2027, 11, 7), zone)
    assert spring.end - spring.start == 23 * 3600
    assert autumn.end - autumn.start == 25 * 3600


@pytest.mark.parametrize(
    ("zone", "instant", "local_day"),
    [
        ("UTC", "2027-03-14T23:59:59", date(2027, 3, 14)),
        ("America/New_York", "2027-03-14T04:59:59", date(2027, 3, 13)),  # 23:59:59 EST
        ("America/New_York", "2027-03-14T05:00:00", date(2027, 3, 14)),
        ("America/New_York", "2027-03-15T03:59:59", date(2027, 3, 14)),  # 23:59:59 EDT
        ("America/New_York", "2027-03-15T04:00:00", date(2027, 3, 15)),
        ("Asia/Kathmandu", "2027-03-14T18:14:59", date(2027, 3, 14)),  # +05:45
        ("Asia/Kathmandu", "2027-03-14T18:15:00", date(2027, 3, 15)),
        ("Australia/Lord_Howe", "2027-04-03T12:59:59", date(2027, 4, 3)),  # half-hour DST
    ],
)
def test_each_instant_falls_on_its_local_day(zone, instant, local_day):
    days = DayRange(date(2027, 3, 1), date(2027, 4, 30), zone_named(zone))
    assert days.day_of(ts(instant)) == local_day
    # The SQL groups by whole days of (instant + the offset in force then): the same day.
    offset = days.offset_at(ts(instant))
    assert DayRange.date_of_day_number(int((ts(instant) + offset) // 86400)) == local_day


def test_offsets_change_exactly_at_the_transition():
    days = DayRange(date(2027, 3, 1), date(2027, 3, 31), zone_named("America/New_York"))
    changes = days.offset_changes()
    assert changes == [(ts("2027-03-14T07:00:00"), -4 * 3600)]
    assert days.first_offset == -5 * 3600


def test_every_day_of_the_range_is_listed_once():
    days = DayRange(date(2027, 2, 26), date(2027, 3, 2), zone_named("UTC"))
    assert days.days() == [
        date(2027, 2, 26),
        date(2027, 2, 27),
        date(2027, 2, 28),
        date(2027, 3, 1),
        date(2027, 3, 2),
    ]


def test_the_default_range_is_the_last_30_local_days_today_included():
    zone = zone_named("Pacific/Auckland")  # +13 in January: already the 16th there
    days = default_range(ts("2027-01-15T12:00:00"), zone, days=30)
    assert days.last == date(2027, 1, 16)
    assert days.first == date(2026, 12, 18)
    assert len(days.days()) == 30


def test_an_unknown_zone_name_is_utc():
    assert zone_named("Mars/Olympus_Mons").key == "UTC"
    assert zone_named("../../etc/passwd").key == "UTC"
    assert zone_named("").key == "UTC"
