"""Stripe's error answers: `{"error": {"type", "code", "message", "param", ...}}` with its status.

Types and codes are Stripe's (api reference "Errors" and "Error codes"): `invalid_request_error`
(400, 404), `card_error` (402), `idempotency_error` (400), `api_error` (5xx); 401 for a bad key.
"""

from __future__ import annotations

from typing import Any

__all__ = ["StripeError", "invalid", "missing", "no_such", "unknown_parameter"]

_DOCS = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """Raised by the simulated API; `body()` is what Stripe would answer."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        #: The error's `type` (Stripe's field name).
        self.kind = kind
        self.code = code
        self.param = param
        #: More fields of the error object, e.g. `payment_intent` and `decline_code` on 402s.
        self.extra = extra

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.kind}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = _DOCS + self.code.replace("_", "-")
        if self.param is not None:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, message, param=param, code=code)


def missing(param: str) -> StripeError:
    return StripeError(
        400, f"Missing required param: {param}.", code="parameter_missing", param=param
    )


def unknown_parameter(param: str) -> StripeError:
    return StripeError(
        400, f"Received unknown parameter: {param}", code="parameter_unknown", param=param
    )


def no_such(kind: str, object_id: str, *, param: str = "id") -> StripeError:
    """Stripe's 404 for an id it does not know (the id is quoted, bounded)."""
    return StripeError(
        404, f"No such {kind}: '{object_id[:80]}'", code="resource_missing", param=param
    )
