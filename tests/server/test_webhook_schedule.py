"""The retry schedule of webhook deliveries (pure): the Standard Webhooks example delays with
jitter, Retry-After honoured when longer, nothing past the window and the last try at its end."""

import random

import pytest

from reapi_server.config import Settings
from reapi_server.webhooks.schedule import JITTER, next_attempt

DELAYS = Settings().webhook_retry_delays
DAY = 86400.0


def test_the_default_schedule_is_the_specs_example():
    assert DELAYS == [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    assert Settings().webhook_retry_window == DAY


@pytest.mark.parametrize("attempts", [1, 2, 3, 4])
def test_each_delay_in_turn_with_bounded_jitter(attempts):
    rand = random.Random(attempts)
    seen = [
        next_attempt(attempts, 0.0, 10.0, delays=DELAYS, window=DAY, rand=rand) - 10.0
        for _ in range(200)
    ]
    delay = DELAYS[attempts - 1]
    assert all(delay * (1 - JITTER) <= s <= delay * (1 + JITTER) for s in seen)
    assert max(seen) - min(seen) > delay * JITTER  # it does vary


def test_the_last_delay_repeats():
    due = next_attempt(20, 0.0, 1.0, delays=[1.0, 2.0], window=DAY, rand=random.Random(0))
    assert 1.0 + 2.0 * (1 - JITTER) <= due <= 1.0 + 2.0 * (1 + JITTER)


def test_a_longer_retry_after_wins_a_shorter_does_not():
    assert next_attempt(1, 0.0, 0.0, delays=DELAYS, window=DAY, retry_after=600.0) == 600.0
    due = next_attempt(1, 0.0, 0.0, delays=DELAYS, window=DAY, retry_after=0.0)
    assert due >= 5 * (1 - JITTER)


def test_the_window_bounds_every_attempt_and_the_last_falls_at_its_end():
    started, now = 0.0, DAY - 60
    assert next_attempt(7, started, now, delays=DELAYS, window=DAY) == DAY
    assert next_attempt(8, started, DAY, delays=DELAYS, window=DAY) is None
    assert next_attempt(1, started, 0.0, delays=DELAYS, window=DAY, retry_after=10 * DAY) == DAY


def test_a_day_of_the_default_schedule():
    """Attempts at 0 s, ~5 s, ~5 min, ~35 min, ~2.6 h, ~7.6 h, ~17.6 h, then at 24 h: eight."""
    now, attempts, rand = 0.0, 1, random.Random(7)
    while due := next_attempt(attempts, 0.0, now, delays=DELAYS, window=DAY, rand=rand):
        now, attempts = due, attempts + 1
    assert attempts == 8 and now == DAY
