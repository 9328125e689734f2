"""Retries of gateway calls: which failures may pass, and how long to wait before the next try.

Retried: the gateway not reached or not answering (connection errors, timeouts), 408, 409 for an
idempotency key still in use by a running request, 429 and 5xx. The wait is exponential backoff
with jitter, or the gateway's `Retry-After` when it gives one (up to a minute). A create is
retried only when it carries an idempotency key: the gateway then answers a repeat with the first
answer instead of running (and charging) the request twice.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from ._exceptions import APIConnectionError, ReapiError
from ._raw import note_retries

__all__ = ["backoff", "call_async", "call_sync", "is_retryable", "seconds_before_retry"]

T = TypeVar("T")

_INITIAL = 0.5
_MAX_BACKOFF = 8.0
#: A longer Retry-After is not waited for: the call fails and says when to come back.
_MAX_RETRY_AFTER = 60.0
_LOCKED = "idempotency_key_in_progress"


def is_retryable(error: BaseException) -> bool:
    if isinstance(error, APIConnectionError):
        return True
    if not isinstance(error, ReapiError) or error.status is None:
        return False
    status = error.status
    return status in (408, 429) or status >= 500 or (status == 409 and error.code == _LOCKED)


def backoff(retry: int) -> float:
    """Seconds before retry number `retry` (1, 2, ...): doubling from 0.5 s up to 8 s, less up
    to a quarter at random so that many clients do not come back at the same moment."""
    delay = min(_INITIAL * 2.0 ** (retry - 1), _MAX_BACKOFF)
    return delay * (1 - 0.25 * random.random())  # noqa: S311 - jitter, not a secret


def seconds_before_retry(error: BaseException | None, retry: int) -> float:
    hint = getattr(error, "retry_after", None)
    if isinstance(hint, int | float) and 0 <= hint <= _MAX_RETRY_AFTER:
        return float(hint)
    return backoff(retry)


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome is not None else None
    return seconds_before_retry(error, state.attempt_number)


def _policy(retries: int) -> dict[str, Any]:
    return {
        "retry": retry_if_exception(is_retryable),
        "stop": stop_after_attempt(retries + 1),
        "wait": _wait,
        "reraise": True,
    }


def call_sync(run: Callable[[], T], *, retries: int) -> T:
    """`run()` until it succeeds, fails for good, or `retries` more tries were spent."""
    for attempt in Retrying(**_policy(retries)):
        with attempt:
            note_retries(attempt.retry_state.attempt_number - 1)
            return run()
    raise AssertionError("unreachable")


async def call_async(run: Callable[[], Awaitable[T]], *, retries: int) -> T:
    async for attempt in AsyncRetrying(**_policy(retries)):
        with attempt:
            note_retries(attempt.retry_state.attempt_number - 1)
            return await run()
    raise AssertionError("unreachable")
