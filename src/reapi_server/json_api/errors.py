"""Every error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.

Validation errors answer 400, as OpenAI does, naming the field and the rule it broke, never the
submitted value (FastAPI's default 422 body echoes it as `input`); see `validation`. Unexpected
exceptions are logged by type only.

Once an error is answered, its traceback is dropped: the locals of the frames it passed through
(the raw body of a refused request, its parsed JSON) would otherwise live as long as the
exception object.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from reapi import ConfigurationError, NoRouteAvailableError, RateLimitError, ReapiError

from ..config import Settings
from ..db_errors import error_name, is_unavailable
from ..errors import GatewayError, InsufficientCredits
from ..links import Links
from ..observability.middleware import note_code
from .validation import describe

__all__ = ["error_response", "install_error_handlers", "where_to_buy"]

log = logging.getLogger("reapi_server.errors")

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    402: "insufficient_quota",
    403: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    410: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class ErrorAnswer(Response):
    """An error answer that knows its code, and says it to the access log as it is sent: the
    line of a failed request says why it failed, whoever built the answer (an error handler,
    a hot route, the web half's body-size and CSRF refusals, the billing webhook)."""

    def __init__(self, body: bytes, status: int, headers: dict[str, str], code: str | None):
        super().__init__(body, status, headers, media_type="application/json")
        self.code = code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        note_code(scope, self.code)
        await super().__call__(scope, receive, send)


def error_response(
    status: int,
    message: str,
    *,
    code: str | None,
    param: str | None = None,
    error_type: str | None = None,
    retry_after: float | None = None,
) -> Response:
    body = {
        "error": {
            "message": message,
            "type": error_type or _TYPES.get(status, "server_error"),
            "param": param,
            "code": code,
        }
    }
    headers = {}
    if retry_after is not None or status == 429:
        headers["retry-after"] = str(max(math.ceil(retry_after or 1), 1))
    return ErrorAnswer(orjson.dumps(body), status, headers, code)


#: What /v1 serves, for a client that asked for something else (chat, embeddings, audio).
NO_SUCH_API_ENDPOINT = (
    "no such endpoint: this gateway serves image and video generation (POST"
    " /v1/images/generations, POST /v1/images/edits, /v1/videos, GET /v1/models); other OpenAI"
    " endpoints (chat, embeddings, audio, image variations, video remix) are not served here"
)


def where_to_buy(settings: Settings) -> str:
    """What a person out of credit does next: the dashboard's Billing page where this gateway
    sells credits, else its operator, who grants them."""
    if settings.billing.enabled:
        return f"buy credits at {Links.from_settings(settings).page('/dashboard/billing')}"
    return "ask the operator of this gateway for credits"


def _from_reapi(error: ReapiError) -> Response:
    status = error.http_status
    retry_after = None
    if isinstance(error, NoRouteAvailableError | RateLimitError):
        retry_after = error.retry_after
    if isinstance(error, ConfigurationError):
        # A model whose providers have no key here: the operator must act, the client may retry.
        return error_response(
            503, "no provider is configured for this model on this gateway", code=error.code
        )
    return error_response(
        status, error.message, code=error.code, param=error.param, retry_after=retry_after
    )


def _forget_frames(error: BaseException) -> None:
    """Let go of the frames the error went through. Dropped, not cleared: `frame.clear()` would
    close a coroutine still suspended in one of them (a group-commit worker that raised it)."""
    error.__traceback__ = None


def _document_validation_errors(app: FastAPI) -> None:
    """FastAPI documents a 422 (in its own shape) on every operation with parameters or a body;
    here a request that fails validation is a 400 (each such operation documents that), so the
    422 and the schemas only it used go."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for item in schema.get("paths", {}).values():
                for operation in item.values():
                    if isinstance(operation, dict):
                        operation.get("responses", {}).pop("422", None)
            schemas = schema.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    async def on_reapi(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ReapiError)
        _forget_frames(exc)
        return _from_reapi(exc)

    async def on_gateway(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        _forget_frames(exc)
        message = exc.message
        if isinstance(exc, InsufficientCredits):
            message = f"{message}; {where_to_buy(request.app.state.runtime.settings)}"
        return error_response(
            exc.http_status,
            message,
            code=exc.code,
            param=exc.param,
            error_type=exc.error_type,
            retry_after=exc.retry_after,
        )

    async def on_validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        _forget_frames(exc)
        # Parameters and bodies alike: a 400, as OpenAI answers.
        message, code, param = describe(list(exc.errors()))
        return error_response(400, message, code=code, param=param)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        messages = {404: "no such endpoint", 405: "method not allowed on this endpoint"}
        message = messages.get(exc.status_code, "the request could not be served")
        if exc.status_code == 404 and request.url.path.startswith("/v1/"):
            message = NO_SUCH_API_ENDPOINT  # a chat or embeddings client pointed here, say
        return error_response(exc.status_code, message, code=f"http_{exc.status_code}")

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected error", extra={"code": type(exc).__name__})
        return error_response(
            500, "the gateway failed to handle this request", code="internal_error"
        )

    async def on_database(request: Request, exc: Exception) -> Response:
        if not is_unavailable(exc):
            return await on_unexpected(request, exc)
        log.warning("database unavailable", extra={"code": error_name(exc)})
        settings = request.app.state.runtime.settings
        return error_response(
            503,
            "the gateway's database is unavailable; retry shortly",
            code="database_unavailable",
            error_type="server_error",
            retry_after=settings.database_error_unready_seconds,
        )

    _document_validation_errors(app)
    app.add_exception_handler(ReapiError, on_reapi)
    app.add_exception_handler(GatewayError, on_gateway)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(SQLAlchemyError, on_database)
    app.add_exception_handler(Exception, on_unexpected)
