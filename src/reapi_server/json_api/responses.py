"""orjson answers, and the error body every JSON answer documents."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel
from starlette.responses import Response

__all__ = [
    "CREDITS_CHARGED",
    "CREDITS_CHARGED_HEADERS",
    "ErrorBody",
    "JsonAnswer",
    "error_responses",
    "json_response",
]

_JSON = b"application/json"
#: The credits a request was charged, on the answers that know it (an image's, a settled
#: video's): what LiteLLM's response-cost header and OpenRouter's `usage.cost` tell.
CREDITS_CHARGED = "x-reapi-credits-charged"
_CREDITS_CHARGED = CREDITS_CHARGED.encode()
#: `CREDITS_CHARGED` as the OpenAPI document declares it, on the 200 answers that may carry it
#: (clients that generate code from the document, and schemathesis, read it there).
CREDITS_CHARGED_HEADERS: dict[str, Any] = {
    CREDITS_CHARGED: {
        "description": "The credits this request was charged, when known: an image's JSON "
        "answer (and its Idempotency-Key replay), a video once it has ended (0 if it failed). "
        "Absent on a video whose price is only held, and on a streamed image (its completed "
        "events carry reapi.credits_charged).",
        "required": False,
        "schema": {"type": "integer", "minimum": 0},
    }
}


class JsonAnswer(Response):
    """A JSON body already encoded, with no headers of its own: Starlette's `Response` with
    the same two headers (content-length, content-type), set directly. Its generic
    `render` and `init_headers` took 2.1 us an answer, this 0.5 (every /v1 answer is one).
    `charged`: the credits the request was charged (`CREDITS_CHARGED`), when known (an answer
    with a body: never a 204 or 304)."""

    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200, charged: int | None = None) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        if status_code < 200 or status_code in (204, 304):  # no length, as `init_headers`
            self.raw_headers = [(b"content-type", _JSON)]
            return
        length = str(len(body)).encode()
        if charged is None:
            self.raw_headers = [(b"content-length", length), (b"content-type", _JSON)]
        else:  # one list built whole: an append after it cost an image answer 6 bytecodes
            self.raw_headers = [
                (b"content-length", length),
                (b"content-type", _JSON),
                (_CREDITS_CHARGED, str(charged).encode()),
            ]


def json_response(
    body: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    charged: int | None = None,
) -> Response:
    """`charged`: the credits the request was charged, sent as `CREDITS_CHARGED` (None: not
    known, no header)."""
    if headers is None:
        return JsonAnswer(orjson.dumps(body), status, charged)
    if charged is not None:
        headers = {**headers, CREDITS_CHARGED: str(charged)}
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
