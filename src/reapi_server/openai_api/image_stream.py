"""`stream: true` on POST /v1/images/generations and /v1/images/edits: the answer as server-sent
events, as OpenAI sends them (`kind` is `image_generation` or `image_edit`):

- `<kind>.partial_image`: a draft (`b64_json`, `partial_image_index` from 0, `size`, `quality`,
  `background`, `output_format`, `created_at`), at most `partial_images` of them, and only from
  an upstream that streams them (OpenAI's image models): passed on as they arrive, never stored;
- `<kind>.completed`: one per image (`b64_json`, `usage`, the same settings, `created_at`, and
  reapi's `reapi` object with the request's `credits_charged`: a streamed answer's head leaves
  before the charge is known, so it has no `x-reapi-credits-charged` header);
- `error` (data `{"type": "error", "error": {...}}`, the error body of a JSON answer) when the
  request fails after the first event went out.

The request is the one a JSON answer would have (`images.service.generate`: checks, hold,
failover, settlement, usage row and outputs alike); only what the caller sees differs. Nothing
is sent before the first event, so a failure before it (a refusal, every host failing) is the
usual JSON error with its status. Partial images wait in a buffer for the caller's socket, as
many as a stream sends (3 at most): a slow reader never holds up the upstream read, and holds
no more than those in memory. A caller that goes away mid-stream is treated as one that leaves
a request answered in JSON: the generation runs to its end and is charged. A stream cut by the
drain's end (`drain_seconds`) still sends the images it was charged for (a settlement, once
begun, commits); cut before them, it ends with an `error` event (`server_shutting_down`), or,
if nothing was sent yet, the access layer's 503.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from reapi.core import ServerSentEvent, Tap

from ..errors import GatewayError
from ..images.service import ImageAnswer
from ..observability.middleware import note_code
from .error_answers import answer_with, handler_for

__all__ = ["ImageEventStream", "refuse_unstreamable"]

#: Partial images waiting for the caller's socket: all a stream sends (`partial_images` <= 3).
_BUFFER = 3
#: The settings an event repeats from the image it is about.
_SETTINGS = ("size", "quality", "background", "output_format")
#: How long a stream cut by the drain's end may still take to send the images it was charged
#: for (a caller's socket that stopped reading holds its last writes).
_CUT_DELIVERY_SECONDS = 5.0
#: The `error` event of a stream cut before its images (nothing was charged for it).
_SHUT_DOWN = {
    "message": "this gateway instance shut down before the image was ready; retry the request",
    "type": "server_error",
    "param": None,
    "code": "server_shutting_down",
}
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # a proxy in front must not hold events back
]


def refuse_unstreamable(params: Any, idempotency_key: str | None) -> None:
    """What a streamed request may not ask for, refused before anything is held."""
    if idempotency_key is not None:
        raise GatewayError(
            "stream cannot be combined with an Idempotency-Key: a streamed answer is not "
            "replayed; send the request without one, or without stream",
            param="stream",
        )
    if params.response_format == "url":
        raise GatewayError(
            "response_format url cannot be streamed: streamed images come as b64_json",
            param="response_format",
        )


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class ImageEventStream(Response):
    """The ASGI answer of one streamed request. `run` is the generation, given the tap that
    hears the upstream's events. A `Response` for its callers' types; it sends itself."""

    media_type = "text/event-stream"

    def __init__(
        self, run: Callable[[Tap], Awaitable[ImageAnswer]], *, edit: bool, partial_images: int
    ) -> None:
        super().__init__()
        self._run = run
        self._kind = "image_edit" if edit else "image_generation"
        self._partials = partial_images

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sender, receiver = anyio.create_memory_object_stream[dict[str, Any]](_BUFFER)
        forwarded = 0
        #: The generation's answer or error, once it has one.
        outcome: ImageAnswer | Exception | None = None

        def tap(event: ServerSentEvent) -> None:
            nonlocal forwarded
            if forwarded >= self._partials or not event.event.endswith(".partial_image"):
                return
            partial = self._partial(event, forwarded)
            if partial is None:
                return
            try:
                sender.send_nowait(partial)
            except anyio.WouldBlock:
                return  # not with `_BUFFER` drafts at most: the upstream read never waits
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return  # the answer is being cut (the drain's end): no one reads drafts
            forwarded += 1

        async def generate() -> None:
            nonlocal outcome
            with sender:  # closed with the outcome in: the drafts end there
                try:
                    outcome = await self._run(tap)
                except Exception as error:  # answered below: as JSON, or as an error event
                    outcome = error

        writer = _Writer(send)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(generate)
                async with receiver:
                    async for partial in receiver:
                        await writer.start()
                        await writer.write(_event(f"{self._kind}.partial_image", partial))
            await self._finish(scope, receive, send, writer, outcome)
        except anyio.get_cancelled_exc_class():
            # Cut (the drain's end): the generation, cancelled with it, may have been charged
            # all the same (a settlement commits once begun). Its images are owed and still
            # go out (from where the cut stopped them); an answer cut before them says why it
            # ends.
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CUT_DELIVERY_SECONDS):
                await self._finish(scope, receive, send, writer, outcome, cut=True)
            raise

    async def _finish(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        writer: _Writer,
        outcome: ImageAnswer | Exception | None,
        *,
        cut: bool = False,
    ) -> None:
        """The answer's end: the completed events, or the error (as JSON before the first
        event, as an `error` event after it). Unstarted and cut, or cut before an outcome, it
        is left to the access layer (503 `server_shutting_down`)."""
        if isinstance(outcome, ImageAnswer):
            events = [
                _event(f"{self._kind}.completed", completed)
                for completed in self._completed(outcome)
            ]
            await writer.finish(events)
            return
        if not writer.started:
            if isinstance(outcome, Exception) and not cut:
                answer = await _error_answer(scope, receive, outcome)
                await answer(scope, receive, send)
            return
        error = _SHUT_DOWN
        if isinstance(outcome, Exception):
            answer = await _error_answer(scope, receive, outcome)
            error = orjson.loads(bytes(answer.body)).get("error")
        # Its status went out as 200: the access log says it failed by its code.
        note_code(scope, error.get("code") if isinstance(error, dict) else None)
        await writer.finish([_event("error", {"type": "error", "error": error})])

    def _partial(self, event: ServerSentEvent, index: int) -> dict[str, Any] | None:
        """The upstream's draft in OpenAI's shape, numbered by what this stream sent (a second
        host's drafts follow a first one's); None for data that is not a draft."""
        try:
            data = orjson.loads(event.data)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("b64_json"), str):
            return None
        return {
            "type": f"{self._kind}.partial_image",
            "b64_json": data["b64_json"],
            "created_at": data.get("created_at"),
            "partial_image_index": index,
            **{name: data.get(name) for name in _SETTINGS},
        }

    def _completed(self, answer: ImageAnswer) -> list[dict[str, Any]]:
        body = answer.body
        settings = {name: body.get(name) for name in _SETTINGS}
        reapi = body.get("reapi")
        if isinstance(reapi, dict) and answer.charged is not None:
            # The head went out before the charge was known (with the first draft, or with
            # these events: the same head either way): it is told here, the request's whole
            # charge in each completed event.
            reapi = {**reapi, "credits_charged": answer.charged}
        return [
            {
                "type": f"{self._kind}.completed",
                "b64_json": image.get("b64_json"),
                "created_at": body.get("created"),
                **settings,
                "usage": body.get("usage"),
                "reapi": reapi,
            }
            for image in body["data"]
        ]


class _Writer:
    """The answer's bytes to the caller: the head once, then events. A caller that has gone
    away is written to no more; the request goes on (see the module's notes). What was sent is
    noted once sent: a write cut before it (waiting for a slow reader) is made again."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self._ended = False
        self._gone = False
        #: The answer's last events (`finish`), and how many of them went out.
        self._last: list[bytes] | None = None
        self._last_sent = 0

    async def start(self) -> None:
        if not self.started:
            await self._message({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            self.started = True

    async def write(self, chunk: bytes) -> None:
        await self._message({"type": "http.response.body", "body": chunk, "more_body": True})

    async def finish(self, events: list[bytes]) -> None:
        """The last events, then the end. Called again (the first call cut), it goes on where
        that one stopped: nothing is sent twice."""
        if self._last is None:
            self._last = events
        await self.start()
        while self._last_sent < len(self._last):
            await self.write(self._last[self._last_sent])
            self._last_sent += 1
        if not self._ended:
            await self._message({"type": "http.response.body", "body": b"", "more_body": False})
            self._ended = True

    async def _message(self, message: dict[str, Any]) -> None:
        if self._gone:
            return
        try:
            await self._send(message)
        except OSError:  # the server's "client disconnected" (uvicorn's is an OSError)
            self._gone = True


async def _error_answer(scope: Scope, receive: Receive, error: Exception) -> Response:
    """The JSON answer the app gives `error`: its exception middleware's handler, else (an
    unexpected error) the app's handler of last resort, Exception's."""
    app = scope["app"]
    handler = handler_for(app, error) or app.exception_handlers[Exception]
    return await answer_with(handler, Request(scope, receive), error)
