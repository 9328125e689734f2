"""/healthz (the process answers) and /readyz (the database answers and works)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..runtime import Runtime

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


_UNAVAILABLE = b'{"status":"database unavailable"}'


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """Not ready while the database does not answer, nor for a while after any operation
    failed because it was unavailable: a full disk still answers reads (and `SELECT 1`) while
    every write fails."""
    rt: Runtime = request.app.state.runtime
    since = rt.db.seconds_since_unavailable()
    if since is not None and since < rt.settings.database_error_unready_seconds:
        return Response(_UNAVAILABLE, 503, media_type="application/json")
    try:
        await rt.db.ping()
    except Exception:
        return Response(_UNAVAILABLE, 503, media_type="application/json")
    return Response(b'{"status":"ready"}', media_type="application/json")
