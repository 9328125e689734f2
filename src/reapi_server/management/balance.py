"""/api/balance: the account's credit balance and the part held by requests in flight."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..credits import service as credits_service
from ..json_api.responses import json_response
from .auth import Manager, runtime_of

__all__ = ["router"]

router = APIRouter()


@router.get("/balance")
async def balance(request: Request, manager: Manager) -> Response:
    async with runtime_of(request).db.read() as session:
        available, reserved = await credits_service.balance_of(session, manager.account_id)
    return json_response({"object": "balance", "balance": available, "reserved": reserved})
