"""The exceptions reapi raises. They carry metadata only: never a body, prompt, key or request.

```
ReapiError                      code, provider, provider_code, status, request_id, retryable
├── ConfigurationError          reapi is set up wrong (no key for any route, bad catalog file)
├── InvalidRequestError         refused before any upstream call (param names the field)
│   └── ModelNotFoundError      unknown public model id
├── APIConnectionError          the provider was never reached, or no answer came back
│   └── APITimeoutError         no first byte / no full body within the deadline
├── APIResponseError            the provider answered 2xx with something we could not read
├── APIStatusError              the provider answered with an error status
│   ├── BadRequestError         400/422: the provider refused the request as invalid
│   ├── AuthenticationError     401
│   ├── PermissionDeniedError   403
│   ├── NotFoundError           404
│   ├── ContentPolicyError      the provider blocked the prompt or the output
│   ├── InsufficientCreditsError 402 from a reapi gateway: the account is out of credit
│   ├── RateLimitError          429 (retry_after in seconds when the provider said)
│   ├── QuotaExceededError      the account behind a provider key is out of credit
│   └── InternalServerError     5xx
├── JobFailedError              an async task ended failed upstream
├── NoRouteAvailableError       every route failed or is open; `attempts` says how each ended
└── WebhookVerificationError    a webhook a receiver got is not signed right (`reapi.webhooks`)
```

Upstream error messages are reduced to a stable `code` before they become an exception: a
provider's message may echo the prompt, so it is never kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._frozen import quick_init

__all__ = [
    "APIConnectionError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AttemptSummary",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ContentPolicyError",
    "InsufficientCreditsError",
    "InternalServerError",
    "InvalidRequestError",
    "JobFailedError",
    "ModelNotFoundError",
    "NoRouteAvailableError",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "ReapiError",
    "RouteRefusedError",
    "WebhookVerificationError",
]


class ReapiError(Exception):
    """Root of every reapi error. `message` is written by reapi, never copied from upstream."""

    default_code = "reapi_error"
    #: Whether another attempt (on another route, or later) may succeed.
    retryable = False
    #: HTTP status a gateway answers with for this error.
    http_status = 500
    #: Seconds the server asked to wait before trying again (`Retry-After`), when it said.
    retry_after: float | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        provider: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        param: str | None = None,
        provider_code: str | None = None,
    ) -> None:
        super().__init__(message)
        #: The upstream's own error code, when it looked like an identifier (never free text).
        self.provider_code = provider_code
        self.message = message
        self.code = code or self.default_code
        self.provider = provider
        self.status = status
        self.request_id = request_id
        self.param = param

    @property
    def status_code(self) -> int | None:
        """`status` by openai-python's name: the HTTP status of the answer that failed (the
        gateway's in gateway mode, the provider's in-process); None when no answer came."""
        return self.status

    def __repr__(self) -> str:
        parts = [f"code={self.code!r}"]
        if self.provider:
            parts.append(f"provider={self.provider!r}")
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.param:
            parts.append(f"param={self.param!r}")
        return f"{type(self).__name__}({self.message!r}, {', '.join(parts)})"

    def __str__(self) -> str:
        where = f" [{self.provider}]" if self.provider else ""
        return f"{self.message} ({self.code}){where}"


class ConfigurationError(ReapiError):
    default_code = "configuration_error"
    http_status = 500


class InvalidRequestError(ReapiError):
    default_code = "invalid_value"
    http_status = 400


class RouteRefusedError(InvalidRequestError):
    """One route cannot take the request as asked (an option or input its API lacks).

    Raised before anything was sent upstream, so the router moves on to the next route; the
    caller sees it (as a 400) only when every route refused."""

    @classmethod
    def of(cls, refusal: InvalidRequestError) -> RouteRefusedError:
        return cls(refusal.message, code=refusal.code, param=refusal.param)


class ModelNotFoundError(InvalidRequestError):
    default_code = "model_not_found"
    http_status = 404


class APIConnectionError(ReapiError):
    default_code = "upstream_unreachable"
    retryable = True
    http_status = 502


class APITimeoutError(APIConnectionError):
    default_code = "upstream_timeout"
    http_status = 504


class APIResponseError(ReapiError):
    default_code = "upstream_bad_response"
    retryable = True
    http_status = 502


class APIStatusError(ReapiError):
    default_code = "upstream_error"
    http_status = 502


class BadRequestError(APIStatusError):
    default_code = "upstream_invalid_request"
    http_status = 400


class AuthenticationError(APIStatusError):
    """Our key for this provider was refused: another route may still serve the request."""

    default_code = "upstream_authentication_failed"
    retryable = True
    http_status = 502


class PermissionDeniedError(APIStatusError):
    default_code = "upstream_permission_denied"
    retryable = True
    http_status = 502


class NotFoundError(APIStatusError):
    default_code = "upstream_not_found"
    retryable = True
    http_status = 502


class ContentPolicyError(APIStatusError):
    default_code = "content_policy_violation"
    http_status = 400


class InsufficientCreditsError(APIStatusError):
    default_code = "insufficient_credits"
    http_status = 402


class RateLimitError(APIStatusError):
    default_code = "rate_limit_exceeded"
    retryable = True
    http_status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class QuotaExceededError(APIStatusError):
    default_code = "upstream_quota_exhausted"
    retryable = True
    http_status = 502


class InternalServerError(APIStatusError):
    default_code = "upstream_server_error"
    retryable = True
    http_status = 502


class JobFailedError(ReapiError):
    default_code = "generation_failed"
    retryable = True
    http_status = 502


@quick_init
@dataclass(frozen=True, slots=True)
class AttemptSummary:
    """How one attempt on one route ended: metadata only."""

    provider: str
    route: str
    code: str
    status: int | None
    elapsed_ms: float
    #: The provider's host (and port), when known: never a path, query or credentials.
    host: str | None = None

    def describe(self) -> str:
        where = f" at {self.host}" if self.host else ""
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.route}{where}: {self.code}{status}"


class NoRouteAvailableError(ReapiError):
    """Every route was tried (or is open). Carries the last error's status class."""

    default_code = "no_route_available"
    retryable = True
    http_status = 503

    def __init__(
        self,
        message: str,
        *,
        attempts: tuple[AttemptSummary, ...] = (),
        last_error: ReapiError | None = None,
        retry_after: float | None = None,
        **kw: object,
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.attempts = attempts
        self.retry_after = retry_after
        #: How the last route failed, as its own exception (an `AuthenticationError` when the
        #: provider refused your key): what to catch on when one cause matters. None when no
        #: route was tried. Metadata only, as every reapi exception; kept without its traceback,
        #: whose frames hold the request (a prompt must not live as long as this error).
        self.last_error = None if last_error is None else last_error.with_traceback(None)
        if last_error is not None:
            # The client sees the status class of how the last route failed (timeout → 504).
            self.http_status = last_error.http_status if last_error.http_status >= 500 else 503
            if isinstance(last_error, RateLimitError):
                self.http_status = 429


class WebhookVerificationError(ReapiError):
    """A webhook is not to be trusted: a header is missing, its timestamp is outside the
    tolerance, or no signature matches (`code` says which). Raised by `reapi.webhooks`."""

    default_code = "webhook_invalid_signature"
    http_status = 400
