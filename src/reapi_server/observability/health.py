"""/healthz (the process answers) and /readyz (the database answers and works; what Redis does
is said, but a Redis that is down does not make the gateway unready: it falls back). In the drain
delay after SIGTERM (`leaving`), /readyz answers 503 so that a proxy stops sending here."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from ..leaving import LEAVING
from ..runtime import Runtime

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def _database_ready(rt: Runtime) -> bool:
    """Not while the database does not answer, nor for a while after any operation failed
    because it was unavailable: a full disk still answers reads (and `SELECT 1`) while every
    write fails."""
    since = rt.db.seconds_since_unavailable()
    if since is not None and since < rt.settings.database_error_unready_seconds:
        return False
    try:
        await rt.db.ping()
    except Exception:
        return False
    return True


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    if LEAVING.now:
        body = {"status": "stopping", "redis": rt.redis.status if rt.redis is not None else "off"}
        return Response(orjson.dumps(body), 503, media_type="application/json")
    ready = await _database_ready(rt)
    body = {
        "status": "ready" if ready else "database unavailable",
        "database": "ok" if ready else "unavailable",
        "redis": rt.redis.status if rt.redis is not None else "off",
    }
    return Response(orjson.dumps(body), 200 if ready else 503, media_type="application/json")
