"""Spend periods: UTC calendar boundaries, and when a counter belongs to an earlier period."""

from datetime import UTC, datetime

import pytest

from reapi_server.api_keys import periods
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


def _calendar(period: str, now: float) -> float:
    """The period's start from the calendar alone (what `period_start` answered before it kept
    the current period)."""
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "weekly":
        day = day.fromordinal(day.toordinal() - day.weekday()).replace(tzinfo=UTC)
    elif period == "monthly":
        day = day.replace(day=1)
    return day.timestamp()


@pytest.mark.parametrize("period", ["daily", "weekly", "monthly"])
def test_the_kept_period_answers_as_the_calendar(period):
    """Moments in any order, across ends of days, weeks and months and within a microsecond of
    them (where `datetime` rounds): the same start as the calendar's every time."""
    ends = [at(f"2027-{month:02d}-01T00:00:00") for month in range(1, 13)]
    ends += [at("2027-03-08T00:00:00"), at("2027-03-15T00:00:00"), at("2028-02-29T00:00:00")]
    moments = [end + delta for end in ends for delta in (-1.0, -7e-7, -4e-7, -1e-9, 0.0, 3e-7, 1)]
    moments += [at("2027-03-10T13:45:00") + 3_600 * hour for hour in range(0, 24 * 40, 5)]
    for now in moments + moments[::-1] + sorted(moments):
        assert period_start(period, now) == _calendar(period, now), now


def test_the_calendar_is_read_once_a_period(monkeypatch):
    calls = []
    real = periods._calendar_start
    monkeypatch.setattr(periods, "_held", {})
    monkeypatch.setattr(periods, "_calendar_start", lambda *a: calls.append(a) or real(*a))
    march = at("2027-03-10T13:45:00")
    for second in range(0, 86_400 * 3, 600):
        assert period_start("monthly", march + second) == at("2027-03-01T00:00:00")
    assert len(calls) == 1
    assert period_start("monthly", at("2027-04-01T00:00:00")) == at("2027-04-01T00:00:00")
    assert len(calls) == 2
