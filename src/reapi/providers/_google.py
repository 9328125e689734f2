"""What the Gemini API adapters (images and Veo) share: the key header and Google's error object.

Google answers errors as `{"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED",
"details": [...]}}` (PROVIDERS.md §0 and §3). The code reapi keeps is the status word; the message
is dropped. Three details change the outcome: an `ErrorInfo` reason `API_KEY_INVALID` comes with
HTTP 400 but means our key was refused (fail over), a `QuotaFailure` naming a per-day quota means
the account is out of quota until tomorrow, and a `RetryInfo.retryDelay` is Google's Retry-After.
"""

from __future__ import annotations

import re
from typing import Any

from .._exceptions import (
    AuthenticationError,
    QuotaExceededError,
    RateLimitError,
    ReapiError,
)
from ._base import Adapter
from ._protocol import UpstreamResponse

__all__ = ["GoogleAdapter"]

#: ErrorInfo reasons that mean "this key is refused", whatever the HTTP status says.
_KEY_REFUSED = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED"})
_DELAY = re.compile(r"(\d+(?:\.\d+)?)s")


class GoogleAdapter(Adapter):
    """Base of the adapters that speak `generativelanguage.googleapis.com`."""

    # 400 FAILED_PRECONDITION is how the Gemini API says "enable billing for this project / this
    # region has no free tier": an account problem, so another route should be tried.
    quota_codes = frozenset({"FAILED_PRECONDITION"})

    def _headers(self) -> dict[str, str]:
        # The key goes in a header, never in `?key=`: URLs end up in logs.
        return {"x-goog-api-key": self.connection.api_key.reveal()}

    def _error(self, response: UpstreamResponse) -> dict[str, Any]:
        error = self._json_object(response).get("error")
        return error if isinstance(error, dict) else {}

    def error_code(self, response: UpstreamResponse) -> str | None:
        status = self._error(response).get("status")
        return status if isinstance(status, str) else None

    def error_for(self, response: UpstreamResponse) -> ReapiError:
        error = super().error_for(response)
        details = self._error(response).get("details")
        for detail in details if isinstance(details, list) else ():
            if not isinstance(detail, dict):
                continue
            reason = detail.get("reason")
            if reason in _KEY_REFUSED:
                return AuthenticationError(
                    f"{self.provider} refused the API key (HTTP {response.status})",
                    provider=self.provider,
                    status=response.status,
                    provider_code=str(reason),
                )
            if _daily_quota(detail):
                return QuotaExceededError(
                    f"{self.provider} answered HTTP {response.status}: a daily quota is used up",
                    provider=self.provider,
                    status=response.status,
                    provider_code="RESOURCE_EXHAUSTED",
                )
            delay = detail.get("retryDelay")
            if isinstance(error, RateLimitError) and error.retry_after is None:
                match = _DELAY.fullmatch(delay) if isinstance(delay, str) else None
                if match:
                    error.retry_after = float(match.group(1))
        return error


def _daily_quota(detail: dict[str, Any]) -> bool:
    """A `QuotaFailure` naming a per-day quota: it comes back tomorrow, not in seconds."""
    if not str(detail.get("@type", "")).endswith("QuotaFailure"):
        return False
    violations = detail.get("violations")
    return any(
        isinstance(v, dict) and "PerDay" in str(v.get("quotaId", ""))
        for v in (violations if isinstance(violations, list) else ())
    )
