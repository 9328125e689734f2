"""Client-wide and per-call request options, as openai-python has them.

`ClientOptions` are set on `ReAPI(...)` (or `with_options(...)`); each call may add a `timeout`,
`extra_headers`, `extra_query` and (on creates) `extra_body`. Headers, query and body extras are
for gateway mode: in-process, each route speaks its own provider's format, so they are refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

import httpx

from ._detached import translated
from ._exceptions import ConfigurationError, InvalidRequestError

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "CallOptions",
    "ClientOptions",
    "TimeoutOption",
    "new_idempotency_key",
    "timeout_seconds",
]

#: openai-python's default: two more tries after the first.
DEFAULT_MAX_RETRIES = 2

Headers = Mapping[str, str]
Query = Mapping[str, object]
Body = Mapping[str, object]
#: `timeout=` as openai-python takes it: seconds, or an `httpx.Timeout`.
TimeoutOption: TypeAlias = float | httpx.Timeout | None


def timeout_seconds(timeout: TimeoutOption) -> float | None:
    """reapi's deadline for a `timeout=`: seconds as given; from an `httpx.Timeout`, its
    `read` part (openai-python's wait for each byte, which reapi's deadlines bound: the first
    byte, then each next one of a stream), else its longest part. `connect`, `write` and
    `pool` have no deadline of their own in reapi: connecting and sending are part of the wait
    for the first byte. An `httpx.Timeout(None)` (no deadline at all) is refused: reapi always
    has one, and None keeps the default ones."""
    if not isinstance(timeout, httpx.Timeout):
        return timeout
    if timeout.read is not None:
        return timeout.read
    parts = [p for p in (timeout.connect, timeout.write, timeout.pool) if p is not None]
    if not parts:
        raise ConfigurationError(
            "httpx.Timeout(None) sets no deadline; pass seconds, or None for the defaults"
        )
    return max(parts)


def new_idempotency_key() -> str:
    """The key the SDK adds to a create when retries are on, so that a retry never runs (and
    charges) the request twice."""
    return f"reapi-sdk-{uuid.uuid4()}"


@dataclass(frozen=True, slots=True)
class CallOptions:
    """What one call sends besides its parameters (gateway mode), and its first-byte deadline."""

    timeout: float | None = None
    headers: Headers = field(default_factory=dict)
    query: Query = field(default_factory=dict)
    body: Body = field(default_factory=dict)
    max_retries: int = DEFAULT_MAX_RETRIES

    def idempotency_key(self, given: str | None) -> str | None:
        """The create's key: the caller's (argument or header), else one of the SDK's own when
        retries are on (as Stripe's client does), else none."""
        if given:
            return given
        for name, value in self.headers.items():
            if name.lower() == "idempotency-key" and value:
                return value
        return new_idempotency_key() if self.max_retries > 0 else None


@dataclass(frozen=True, slots=True)
class ClientOptions:
    timeout: float | None = None
    max_retries: int = DEFAULT_MAX_RETRIES
    default_headers: Headers = field(default_factory=dict)

    @classmethod
    def given(
        cls, timeout: TimeoutOption, max_retries: int, default_headers: Headers
    ) -> ClientOptions:
        """The options as a client's constructor takes them (`timeout` an `httpx.Timeout`
        too)."""
        return cls(timeout_seconds(timeout), max_retries, default_headers)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigurationError("max_retries must be 0 or more")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigurationError("timeout must be a positive number of seconds")

    def updated(self, **changes: Any) -> ClientOptions:
        """A copy with the given (not None) options replaced; headers are merged."""
        given = {k: v for k, v in changes.items() if v is not None}
        if "timeout" in given:
            given["timeout"] = timeout_seconds(given["timeout"])
        if "default_headers" in given:
            given["default_headers"] = {**self.default_headers, **given["default_headers"]}
        return replace(self, **given)

    def for_call(
        self,
        *,
        gateway: bool,
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Body | None = None,
    ) -> CallOptions:
        if not gateway:
            given = [
                name
                for name, value in (
                    ("extra_headers", extra_headers),
                    ("extra_query", extra_query),
                    ("extra_body", extra_body),
                )
                if value
            ]
            if given:
                raise InvalidRequestError(
                    f"{given[0]} needs gateway mode (base_url=): in-process, each route speaks "
                    "its own provider's format",
                    param=given[0],
                    code="gateway_only_option",
                )
        seconds = translated(
            lambda: timeout_seconds(timeout),
            ConfigurationError,
            lambda error: InvalidRequestError(str(error), param="timeout"),
        )
        if seconds is not None and seconds <= 0:
            raise InvalidRequestError(
                "timeout must be a positive number of seconds", param="timeout"
            )
        return CallOptions(
            timeout=seconds if seconds is not None else self.timeout,
            headers={**self.default_headers, **(extra_headers or {})},
            query=dict(extra_query or {}),
            body=dict(extra_body or {}),
            max_retries=self.max_retries,
        )
