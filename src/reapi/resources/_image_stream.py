"""`stream=True` on `client.images.generate` / `edit`: an iterator of `ImageStreamEvent`s, as
openai-python's `Stream[ImageGenStreamEvent]` yields them.

Pointed at a gateway, the events are read off its answer as they come (partial images
included). In-process there is no one to stream from but the provider: the request runs as
one that is not streamed, and its images come as the completed events only (an OpenAI
provider is still asked for the partial images, which prove it alive but are not passed on).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

from .._engine import AsyncEngine, SyncEngine
from .._exceptions import InvalidRequestError
from .._gateway import GatewayProtocols
from .._options import CallOptions
from .._params import ImageParams
from .._payload import Payload
from .._sse import MAX_UPSTREAM_EVENT_BYTES, EventDecoder
from ..types import ImagesResponse, ImageStreamEvent

__all__ = ["completed_events", "listed", "open_async", "open_sync", "streamed"]

_NAME = "reapi-gateway"


def streamed(
    params: ImageParams, partial_images: int | None, idempotency_key: str | None
) -> ImageParams:
    """The parameters of a streamed call: `partial_images` marks it (0-3). Refused as a
    gateway refuses them: an idempotency key (it was dropped unsaid), a `url` answer."""
    if idempotency_key is not None:
        raise InvalidRequestError(
            "stream cannot be combined with an idempotency_key: a streamed answer is not "
            "replayed; call without one, or without stream",
            param="stream",
        )
    if params.response_format == "url":
        raise InvalidRequestError(
            "response_format url cannot be streamed: streamed images come as b64_json",
            param="response_format",
        )
    count = partial_images or 0
    if not 0 <= count <= 3:
        raise InvalidRequestError("partial_images must be between 0 and 3", param="partial_images")
    return replace(params, partial_images=count)


def completed_events(answer: ImagesResponse, *, edit: bool) -> list[ImageStreamEvent]:
    kind = "image_edit" if edit else "image_generation"
    return [
        ImageStreamEvent(
            type=f"{kind}.completed",
            b64_json=image.b64_json or "",
            created_at=answer.created,
            size=answer.size,
            quality=answer.quality,
            background=answer.background,
            output_format=answer.output_format,
            usage=answer.usage,
            reapi=answer.reapi,
        )
        for image in answer.data
    ]


def open_sync(
    engine: SyncEngine,
    gateway: GatewayProtocols,
    params: ImageParams,
    payload: Payload,
    call: CallOptions,
    *,
    edit: bool,
    deadline: float,
) -> Iterator[ImageStreamEvent]:
    """The gateway's stream, opened now (a refusal raises here, as openai-python's does)."""
    request = gateway.image_stream(params, payload, call, edit=edit)
    stack = contextlib.ExitStack()
    status, chunks = stack.enter_context(
        engine.stream_chunks(request, _NAME, first_byte=deadline, idle=deadline)
    )
    if status >= 400:
        with stack:
            content = b"".join(chunks)
        raise gateway.stream_error(status, content)
    return _events(gateway, chunks, stack)


def _events(
    gateway: GatewayProtocols, chunks: Iterator[bytes], stack: contextlib.ExitStack
) -> Iterator[ImageStreamEvent]:
    with stack:
        decoder = EventDecoder(max_event_bytes=MAX_UPSTREAM_EVENT_BYTES)
        for chunk in chunks:
            for event in decoder.feed(chunk):
                yield gateway.stream_event(event)


async def open_async(
    engine: AsyncEngine,
    gateway: GatewayProtocols,
    params: ImageParams,
    payload: Payload,
    call: CallOptions,
    *,
    edit: bool,
    deadline: float,
) -> AsyncIterator[ImageStreamEvent]:
    request = gateway.image_stream(params, payload, call, edit=edit)
    stack = contextlib.AsyncExitStack()
    status, chunks = await stack.enter_async_context(
        engine.stream_chunks(request, _NAME, first_byte=deadline, idle=deadline)
    )
    if status >= 400:
        async with stack:
            content = b"".join([chunk async for chunk in chunks])
        raise gateway.stream_error(status, content)
    return _async_events(gateway, chunks, stack)


async def _async_events(
    gateway: GatewayProtocols, chunks: AsyncIterator[bytes], stack: contextlib.AsyncExitStack
) -> AsyncIterator[ImageStreamEvent]:
    async with stack:
        decoder = EventDecoder(max_event_bytes=MAX_UPSTREAM_EVENT_BYTES)
        async for chunk in chunks:
            for event in decoder.feed(chunk):
                yield gateway.stream_event(event)


async def listed(events: list[ImageStreamEvent]) -> AsyncIterator[ImageStreamEvent]:
    for event in events:
        yield event
