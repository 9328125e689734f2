"""Spend periods: UTC calendar boundaries, and when a counter belongs to an earlier period."""

from datetime import UTC, datetime

import pytest

from reapi_server.api_keys.periods import current_spend, next_reset, period_start


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("period", "now", "start", "reset"),
    [
        ("daily", "2027-03-10T13:45:00", "2027-03-10T00:00:00", "2027-03-11T00:00:00"),
        ("daily", "2027-12-31T23:59:59", "2027-12-31T00:00:00", "2028-01-01T00:00:00"),
        # 2027-03-10 is a Wednesday: its week began on Monday the 8th
        ("weekly", "2027-03-10T13:45:00", "2027-03-08T00:00:00", "2027-03-15T00:00:00"),
        ("weekly", "2027-03-08T00:00:00", "2027-03-08T00:00:00", "2027-03-15T00:00:00"),
        ("monthly", "2027-02-28T23:59:59", "2027-02-01T00:00:00", "2027-03-01T00:00:00"),
        ("monthly", "2028-02-29T12:00:00", "2028-02-01T00:00:00", "2028-03-01T00:00:00"),
        ("monthly", "2027-12-15T00:00:00", "2027-12-01T00:00:00", "2028-01-01T00:00:00"),
    ],
)
def test_calendar_periods_in_utc(period, now, start, reset):
    assert period_start(period, at(now)) == at(start)
    assert next_reset(period, at(now)) == at(reset)


def test_never_is_one_period():
    assert period_start("never", at("2027-03-10T13:45:00")) == 0.0
    assert next_reset("never", at("2027-03-10T13:45:00")) is None


def test_a_counter_from_an_earlier_period_reads_as_zero():
    march = at("2027-03-01T00:00:00")
    assert current_spend("monthly", march, 120, at("2027-03-31T23:59:59")) == 120
    assert current_spend("monthly", march, 120, at("2027-04-01T00:00:00")) == 0
    # A counter started later than the period's start (the period was changed from daily to
    # monthly mid-month) still counts: it belongs to the current period.
    assert current_spend("monthly", at("2027-03-15T00:00:00"), 7, at("2027-03-20T00:00:00")) == 7
    assert current_spend("never", 0.0, 9, at("2090-01-01T00:00:00")) == 9


def test_unknown_period_is_refused():
    with pytest.raises(ValueError):
        period_start("hourly", 0.0)
