"""Client-wide and per-call request options, as openai-python has them.

`ClientOptions` are set on `ReAPI(...)` (or `with_options(...)`); each call may add a `timeout`,
`extra_headers`, `extra_query` and (on creates) `extra_body`. Headers, query and body extras are
for gateway mode: in-process, each route speaks its own provider's format, so they are refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ._exceptions import ConfigurationError, InvalidRequestError

__all__ = ["DEFAULT_MAX_RETRIES", "CallOptions", "ClientOptions", "new_idempotency_key"]

#: openai-python's default: two more tries after the first.
DEFAULT_MAX_RETRIES = 2

Headers = Mapping[str, str]
Query = Mapping[str, object]
Body = Mapping[str, object]


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

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigurationError("max_retries must be 0 or more")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigurationError("timeout must be a positive number of seconds")

    def updated(self, **changes: Any) -> ClientOptions:
        """A copy with the given (not None) options replaced; headers are merged."""
        given = {k: v for k, v in changes.items() if v is not None}
        if "default_headers" in given:
            given["default_headers"] = {**self.default_headers, **given["default_headers"]}
        return replace(self, **given)

    def for_call(
        self,
        *,
        gateway: bool,
        timeout: float | None = None,
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
        if timeout is not None and timeout <= 0:
            raise InvalidRequestError(
                "timeout must be a positive number of seconds", param="timeout"
            )
        return CallOptions(
            timeout=timeout if timeout is not None else self.timeout,
            headers={**self.default_headers, **(extra_headers or {})},
            query=dict(extra_query or {}),
            body=dict(extra_body or {}),
            max_retries=self.max_retries,
        )
