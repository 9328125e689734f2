"""GET /v1/usage (the caller's own usage rows, newest first) and GET /v1/credits."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from ..credits import service as credits_service
from ..usage import service as usage_service
from .dependencies import Caller, Rt
from .responses import CreditsBody, UsageList, error_responses, json_response

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["Account"])

#: 9999-12-31T23:59:59Z: a bound for timestamps that every database column type can hold.
LAST_UNIX_SECOND = 253_402_300_799


@router.get(
    "/usage",
    summary="This account's usage rows, newest first",
    response_model=UsageList,
    responses=error_responses(400, 401, 429),
)
async def list_usage(
    rt: Rt,
    principal: Caller,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[
        int | None,
        Query(ge=0, le=LAST_UNIX_SECOND, description="Unix seconds: rows created before"),
    ] = None,
) -> Response:
    async with rt.db.read() as session:
        rows = await usage_service.list_for_account(
            session, principal.account_id, limit=limit + 1, before=before
        )
    data = [
        {
            "id": row.id,
            "object": "usage",
            "created_at": int(row.created_at),
            "model": row.model,
            "endpoint": row.endpoint,
            "credit_cost": row.credit_cost,
            "status": row.status,
            "error_code": row.error_code,
            "provider": row.provider,
            "attempts": row.attempts,
            "duration_ms": row.duration_ms,
        }
        for row in rows[:limit]
    ]
    return json_response({"object": "list", "data": data, "has_more": len(rows) > limit})


@router.get(
    "/credits",
    summary="This account's credit balance and the part held for requests in flight",
    response_model=CreditsBody,
    responses=error_responses(401, 429),
)
async def credits(rt: Rt, principal: Caller) -> Response:
    async with rt.db.read() as session:
        balance, reserved = await credits_service.balance_of(session, principal.account_id)
    return json_response({"object": "credits", "balance": balance, "reserved": reserved})
