"""Errors the gateway itself raises (as opposed to `reapi.ReapiError` from the core).

Each knows its HTTP status and OpenAI error `type`/`code`; messages are written here and never
contain a submitted value.
"""

from __future__ import annotations

__all__ = [
    "AccountClosed",
    "AccountDisabled",
    "AccountInDispute",
    "AccountRefundPending",
    "CreditLimitExceeded",
    "GatewayError",
    "IdempotencyConflict",
    "InsufficientCredits",
    "InvalidApiKey",
    "KeyExpired",
    "KeySpendLimitReached",
    "ModelNotAllowed",
    "NotFound",
    "OutputsDeleted",
    "PayloadTooLarge",
    "RateLimited",
    "StorageUnavailable",
]


class GatewayError(Exception):
    http_status = 400
    error_type = "invalid_request_error"
    default_code = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param
        self.retry_after = retry_after


class InvalidApiKey(GatewayError):
    http_status = 401
    default_code = "invalid_api_key"


class AccountClosed(InvalidApiKey):
    """The key's account is being deleted: refused as a revoked key is (its keys are), but at
    once in every process, whatever a process's key cache still says."""

    def __init__(self) -> None:
        super().__init__("the API key is not valid or has been revoked")


class AccountDisabled(GatewayError):
    """An operator disabled the account: its keys are refused, and nothing of it may start,
    until it is enabled again."""

    http_status = 403
    default_code = "account_disabled"


class InsufficientCredits(GatewayError):
    http_status = 402
    error_type = "insufficient_quota"
    default_code = "insufficient_credits"


class AccountRefundPending(GatewayError):
    """A refund of a payment to the account waits for its running requests to end: nothing
    new is held for it meanwhile (`billing`), minutes at most."""

    http_status = 402
    error_type = "insufficient_quota"
    default_code = "refund_pending"


class AccountInDispute(GatewayError):
    """A chargeback of a payment to the account is open, or took more credit than was left:
    nothing is held for the account until it is resolved or paid (`billing`)."""

    http_status = 402
    error_type = "insufficient_quota"
    default_code = "account_in_dispute"


class KeySpendLimitReached(GatewayError):
    """The key's spend limit for its current period would be exceeded (the account may have
    credit left: another key, or the next period, can still spend it)."""

    http_status = 402
    error_type = "insufficient_quota"
    default_code = "key_spend_limit_reached"


class KeyExpired(GatewayError):
    http_status = 403
    default_code = "key_expired"


class ModelNotAllowed(GatewayError):
    """The model is not in the key's allowlist."""

    http_status = 403
    default_code = "model_not_allowed"


class CreditLimitExceeded(GatewayError):
    """A grant would take an account past `models.MAX_CREDITS`."""

    default_code = "credit_limit_exceeded"


class NotFound(GatewayError):
    http_status = 404
    default_code = "not_found"


class IdempotencyConflict(GatewayError):
    http_status = 409
    default_code = "idempotency_key_reused"


class OutputsDeleted(GatewayError):
    """Outputs that existed and were deleted (a video's content, the answer an Idempotency-Key
    replays): asking again will not bring them back."""

    http_status = 410
    default_code = "outputs_deleted"

    @classmethod
    def replayed(cls) -> OutputsDeleted:
        """An idempotent replay whose outputs were deleted since the first answer: the answer
        can no longer be given, and generating again would be a new (charged) request."""
        return cls(
            "the outputs of the request first sent with this Idempotency-Key have been deleted; "
            "send the request with a new key to generate them again"
        )


class PayloadTooLarge(GatewayError):
    http_status = 413
    default_code = "request_too_large"


class RateLimited(GatewayError):
    http_status = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class StorageUnavailable(GatewayError):
    """Mirroring an output failed: the generation is not charged and nothing points at it."""

    http_status = 502
    error_type = "server_error"
    default_code = "storage_unavailable"
