"""The serving loop's exception handler: asyncio's default one logs "Task exception was never
retrieved" or "Exception in callback <the callback and its arguments>" with the exception's
message and traceback, any of which may hold request data. This one logs the type only."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["loop_errors_by_type"]

log = logging.getLogger("reapi_server.loop")


def _log_by_type(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    exception = context.get("exception")
    code = type(exception).__name__ if exception is not None else "no_exception"
    log.error("event loop error", extra={"code": code})


@contextmanager
def loop_errors_by_type() -> Iterator[None]:
    """While inside, the running loop's unhandled errors are logged by type only."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(_log_by_type)
    try:
        yield
    finally:
        loop.set_exception_handler(previous)
