"""The app's own answer to an error raised outside Starlette's exception middleware (a route
served straight from the access layer, `hot_routes`; a streamed answer's generation,
`image_stream`): the handler found as that middleware finds it, called as it calls it."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["answer_with", "handler_for"]


def handler_for(app: FastAPI, exc: Exception) -> Any:
    """The app's handler for `exc`, as Starlette's exception middleware finds it: by status
    for an HTTP exception, else by the nearest class. Exception's (and 500's) is the server
    error middleware's, never the exception middleware's: None then."""
    handlers = app.exception_handlers  # read at each error: tests hook them
    if isinstance(exc, HTTPException) and exc.status_code != 500:
        by_status = handlers.get(exc.status_code)
        if by_status is not None:
            return by_status
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        handler = handlers.get(cls)
        if handler is not None:
            return handler
    return None


async def answer_with(handler: Any, request: Request, exc: Exception) -> Response:
    """`handler`'s answer to `exc`: awaited, or run in a thread if it is not a coroutine."""
    if inspect.iscoroutinefunction(handler):
        answer: Response = await handler(request, exc)
    else:
        answer = await run_in_threadpool(handler, request, exc)
    return answer
