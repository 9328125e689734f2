"""`client.with_raw_response`: the HTTP answer (status, headers, request id) beside the parsed
object, as openai-python has it.

The gateway protocols note each answer they parse in a context variable that the raw wrapper
set for the duration of one call; nothing is noted when no wrapper is listening.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Generic, ParamSpec, TypeVar

import httpx

from .providers import UpstreamResponse

__all__ = ["RawResponse", "note_answer", "note_retries", "raw_async", "raw_sync"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(slots=True)
class _Seen:
    answer: UpstreamResponse | None = None
    retries: int = 0


_listening: ContextVar[_Seen | None] = ContextVar("reapi_raw_response", default=None)


def note_answer(answer: UpstreamResponse) -> None:
    seen = _listening.get()
    if seen is not None:
        seen.answer = answer


def note_retries(retries: int) -> None:
    seen = _listening.get()
    if seen is not None:
        seen.retries = retries


class RawResponse(Generic[R]):
    """One call's HTTP answer. `parse()` gives what the plain method returns."""

    def __init__(self, parsed: R, answer: UpstreamResponse, retries_taken: int) -> None:
        self._parsed = parsed
        self.status_code = answer.status
        #: Case-insensitive, as httpx's.
        self.headers = httpx.Headers(dict(answer.headers))
        self.retries_taken = retries_taken
        #: Seconds from sending the request to its whole answer.
        self.elapsed = answer.elapsed_ms / 1000

    @property
    def request_id(self) -> str | None:
        """The gateway's `x-request-id`: quote it when asking about a request."""
        value: str | None = self.headers.get("x-request-id")
        return value

    @property
    def credits_charged(self) -> int | None:
        """The credits a gateway charged for this call (`x-reapi-credits-charged`): an image
        request's, or a video's once it has settled. None where the answer does not say (a
        video still running, a provider called directly, an answer of another kind)."""
        value = self.headers.get("x-reapi-credits-charged")
        return int(value) if value is not None and value.isdigit() else None

    def parse(self) -> R:
        return self._parsed

    def __repr__(self) -> str:
        return f"<RawResponse status_code={self.status_code} request_id={self.request_id!r}>"


def _finish(parsed: R, seen: _Seen) -> RawResponse[R]:
    if seen.answer is None:  # every gateway protocol notes its answer: this is a bug
        raise RuntimeError("no HTTP answer was recorded for this call")
    return RawResponse(parsed, seen.answer, seen.retries)


def raw_sync(method: Callable[P, R]) -> Callable[P, RawResponse[R]]:
    @functools.wraps(method)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> RawResponse[R]:
        seen = _Seen()
        token = _listening.set(seen)
        try:
            parsed = method(*args, **kwargs)
        finally:
            _listening.reset(token)
        return _finish(parsed, seen)

    return wrapped


def raw_async(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[RawResponse[R]]]:
    @functools.wraps(method)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> RawResponse[R]:
        seen = _Seen()
        token = _listening.set(seen)
        try:
            parsed = await method(*args, **kwargs)
        finally:
            _listening.reset(token)
        return _finish(parsed, seen)

    return wrapped
