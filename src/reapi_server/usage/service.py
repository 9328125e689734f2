"""Writing usage rows. Never commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ..api_keys.auth import Principal
from . import repository
from .row import UsageRow

__all__ = ["UsageRow", "list_for_account", "new_row", "record"]

# The account's rows, newest first: the read /v1/usage and the pages share.
list_for_account = repository.list_for_account


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


async def record(session: AsyncSession, row: UsageRow) -> None:
    await repository.insert(session, row)
