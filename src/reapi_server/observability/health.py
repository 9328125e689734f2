"""/healthz (the process answers) and /readyz (the database answers)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..runtime import Runtime

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    try:
        await rt.db.ping()
    except Exception:
        return Response(b'{"status":"database unavailable"}', 503, media_type="application/json")
    return Response(b'{"status":"ready"}', media_type="application/json")
