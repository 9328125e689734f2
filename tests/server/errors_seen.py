"""Seeing every exception a gateway answers: hooks on its error handlers that record, before and
after each handler ran, whether the exception chains another, and whether it (or a frame it still
holds) carries one of the given markers."""

from __future__ import annotations

import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

__all__ = ["Seen", "hook_error_handlers"]


def _links(error: BaseException) -> Iterator[BaseException]:
    """Every exception chained to `error`, however deep."""
    seen: set[int] = set()
    todo = [error.__context__, error.__cause__]
    while todo:
        link = todo.pop()
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        todo += [link.__context__, link.__cause__]
        if isinstance(link, BaseExceptionGroup):
            todo += list(link.exceptions)


def _texts(error: BaseException) -> list[str]:
    """What can be read off an error: its repr, str, args, attributes, formatted traceback."""
    texts = [repr(error), str(error), repr(error.args), repr(getattr(error, "__dict__", {}))]
    texts.append("".join(traceback.format_exception(error)))
    errors = getattr(error, "errors", None)
    if callable(errors):
        texts.append(repr(errors()))
    return texts


def _holds(value: Any, markers: Sequence[str], depth: int = 4) -> bool:
    """Whether `value` (or what it contains, a few levels down) holds a marker."""
    if isinstance(value, str):
        return any(marker in value for marker in markers)
    if isinstance(value, bytes | bytearray):
        return any(marker.encode() in value for marker in markers)
    if depth == 0:
        return False
    if isinstance(value, dict):
        return any(
            _holds(k, markers, depth - 1) or _holds(v, markers, depth - 1) for k, v in value.items()
        )
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds(item, markers, depth - 1) for item in value)
    return False


def _finished_frames(error: BaseException) -> Iterator[FrameType]:
    """The frames the error went through, without the one that caught it (still running)."""
    tb = error.__traceback__
    tb = tb.tb_next if tb is not None else None
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


@dataclass
class Seen:
    kind: str
    status: int
    chained: list[BaseException]
    marked: bool
    frames_marked: list[str] = field(default_factory=list)


def hook_error_handlers(app: Any, markers: Sequence[str]) -> list[Seen]:
    """Record every exception the gateway answers, before and after its handler ran. Call it
    before the app's first request (its middleware stack is built then)."""
    seen: list[Seen] = []
    for kind, handler in list(app.exception_handlers.items()):

        async def hooked(request: Any, exc: BaseException, handler: Any = handler) -> Any:
            record = Seen(
                type(exc).__name__,
                0,
                list(_links(exc)),
                any(marker in text for text in _texts(exc) for marker in markers),
            )
            response = await handler(request, exc)
            record.status = response.status_code
            for frame in _finished_frames(exc):
                if any(_holds(value, markers) for value in frame.f_locals.values()):
                    record.frames_marked.append(frame.f_code.co_qualname)
            seen.append(record)
            return response

        app.exception_handlers[kind] = hooked
    app.middleware_stack = None  # built again, with the hooks, on the first request
    return seen
