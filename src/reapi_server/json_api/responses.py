"""orjson answers, and the error body every JSON answer documents."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel
from starlette.responses import Response

__all__ = ["ErrorBody", "error_responses", "json_response"]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


class _ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    error: _ErrorDetail


_ERROR_TEXT = {
    400: "Invalid parameter or request body",
    401: "Missing, malformed, unknown or revoked API key",
    402: "Not enough credit",
    404: "Unknown model or object",
    409: "Idempotency-Key reused with another request, or still in progress",
    410: "Output deleted (a video's content, or an Idempotency-Key replay)",
    413: "Request body too large",
    429: "Rate limited (see Retry-After)",
    502: "Every upstream route failed",
    503: "No upstream route available",
    504: "Upstream timed out",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorBody, "description": _ERROR_TEXT[s]} for s in statuses}
