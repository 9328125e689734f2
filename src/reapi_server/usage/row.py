"""A usage row on its way into the table (the hot path's INSERT)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["UsageRow"]


@dataclass(slots=True)
class UsageRow:
    """Every column of `UsageRecord`, in order (`repository.insert`). A plain object rather than
    the ORM's, whose instrumented attributes cost every request more than the row's INSERT."""

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
