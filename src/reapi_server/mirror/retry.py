"""Retrying storage calls through an outage: exponential backoff with jitter (tenacity), only for
failures that can pass (connection refused or reset, timeouts, 5xx, throttling). A refusal that
will not change (access denied, no such bucket) fails at once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    ResponseStreamingError,
)
from botocore.exceptions import ConnectionError as EndpointUnreachable
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

__all__ = ["in_thread_with_retries", "is_transient"]

T = TypeVar("T")

log = logging.getLogger("reapi_server.mirror")

_TRANSIENT_CODES = {
    "InternalError",
    "RequestTimeout",
    "ServiceUnavailable",
    "SlowDown",
    "Throttling",
    "TooManyRequests",
}


def is_transient(error: BaseException) -> bool:
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = error.response.get("Error", {}).get("Code", "")
        return status >= 500 or status == 429 or code in _TRANSIENT_CODES
    # Refused/unreachable (EndpointUnreachable), reset or timed out mid-request (HTTPClientError).
    return isinstance(error, EndpointUnreachable | HTTPClientError | ResponseStreamingError)


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning(
        "storage call failed, retrying",
        extra={"code": f"{type(error).__name__} attempt={state.attempt_number}"},
    )


async def in_thread_with_retries(attempts: int, call: Callable[..., T], **kwargs: Any) -> T:
    """Run a blocking call (boto3) on a worker thread, never on the event loop, retrying
    transient failures up to `attempts` times in all."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(max(attempts, 1)),
        wait=wait_exponential(multiplier=0.2, max=2.0) + wait_random(0, 0.2),
        retry=retry_if_exception(is_transient),
        before_sleep=_log_retry,
        sleep=anyio.sleep,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await anyio.to_thread.run_sync(partial(call, **kwargs))
    raise AssertionError("unreachable: tenacity reraises the last error")
