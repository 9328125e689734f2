"""Writing usage rows. Never commits."""

from __future__ import annotations

from dataclasses import dataclass

from ..api_keys.auth import Principal

__all__ = ["UsageRow", "new_row"]


@dataclass(slots=True)
class UsageRow:
    """A usage row about to be inserted (`repository.insert`): every column of `UsageRecord`.
    A plain object rather than the ORM's, whose instrumented attributes cost every request
    more than the row's INSERT."""

    id: str
    account_id: str
    api_key_id: str | None
    model: str
    endpoint: str
    credit_cost: int
    status: str
    error_code: str | None
    provider: str | None
    attempts: int
    duration_ms: int
    created_at: float


def new_row(
    principal: Principal,
    request_id: str,
    *,
    model: str,
    endpoint: str,
    status: str,
    now: float,
    credit_cost: int = 0,
    error_code: str | None = None,
    provider: str | None = None,
    attempts: int = 0,
    duration_ms: int = 0,
) -> UsageRow:
    return UsageRow(
        id=request_id,
        account_id=principal.account_id,
        api_key_id=principal.key_id,
        model=model[:100],
        endpoint=endpoint,
        credit_cost=credit_cost,
        status=status,
        error_code=error_code,
        provider=provider,
        attempts=attempts,
        duration_ms=duration_ms,
        created_at=now,
    )
