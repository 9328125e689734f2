"""JSON answers serialised with orjson, and the response models that document them."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from reapi.types import ImagesResponse, Model, ModelList, Video, VideoDeleted, VideoList

__all__ = [
    "CreditsBody",
    "ErrorBody",
    "ImagesResponse",
    "Model",
    "ModelList",
    "UsageList",
    "Video",
    "VideoDeleted",
    "VideoList",
    "error_responses",
    "json_response",
]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


class _ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    error: _ErrorDetail


class UsageRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    object: str
    created_at: int
    model: str
    endpoint: str
    credit_cost: int
    status: str
    error_code: str | None
    provider: str | None
    attempts: int
    duration_ms: int


class UsageList(BaseModel):
    object: str
    data: list[UsageRow]
    has_more: bool


class CreditsBody(BaseModel):
    object: str
    balance: int
    reserved: int


_ERROR_TEXT = {
    400: "Invalid parameter",
    401: "Missing, malformed, unknown or revoked API key",
    402: "Not enough credit",
    404: "Unknown model or object",
    409: "Idempotency-Key reused with another request, or still in progress",
    410: "Output deleted (a video's content, or an Idempotency-Key replay)",
    413: "Request body too large",
    422: "Request body does not match the schema",
    429: "Rate limited (see Retry-After)",
    502: "Every upstream route failed",
    503: "No upstream route available",
    504: "Upstream timed out",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorBody, "description": _ERROR_TEXT[s]} for s in statuses}
