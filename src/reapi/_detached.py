"""An error raised in place of another carries nothing of it.

`raise Refusal(...) from None` inside an `except` block hides the original from tracebacks, but
keeps it as the new error's `__context__`. The original is often made of request content or
secrets: an `orjson.JSONDecodeError` whose `.doc` is the whole body, a pydantic `ValidationError`
holding the inputs, an httpx or aiohttp error whose request carries a provider's API key. Whoever
holds the new error (a log handler, an error tracker, a caller's `except`) holds them too.

So one error becomes another here only: the original is caught, the new one built from it (and
never keeping it), and raised once the `except` block has ended, with no chain. A test holds every
module to this (no `raise` of another exception inside an `except` block).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["Catch", "detached", "first_of_group", "translated", "translated_async"]

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)
Catch = type[BaseException] | tuple[type[BaseException], ...]


def detached(error: E) -> E:
    """`error` with its chain cut: no `__cause__`, no `__context__`."""
    error.__cause__ = None
    error.__context__ = None
    error.__suppress_context__ = False
    return error


def translated(call: Callable[[], T], catch: Catch, into: Callable[[BaseException], E]) -> T:
    """`call()`; what it raises of `catch` becomes `into(original)`, raised without a chain."""
    try:
        return call()
    except catch as original:
        error = into(original)
    raise detached(error)


async def translated_async(
    call: Callable[[], Awaitable[T]], catch: Catch, into: Callable[[BaseException], E]
) -> T:
    """The async twin of `translated`."""
    try:
        return await call()
    except catch as original:
        error = into(original)
    raise detached(error)


def first_of_group(group: BaseException) -> BaseException:
    """`into` for a task group's failures: the first one, as its caller expects it."""
    assert isinstance(group, BaseExceptionGroup)
    return group.exceptions[0]
