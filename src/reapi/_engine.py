"""The one place the core does I/O. Sync and async twins share everything but send and sleep.

Each attempt gets two deadlines: the first byte (response headers) and the whole body. A route
that hangs therefore costs at most its first-byte deadline before the router moves on. A streamed
answer (a request with `idle_timeout`) is held to its silence instead: at most that long before
the first byte and between reads after it, so an upstream that sends nothing until its work is
done can still be given a short deadline once it streams; the whole answer keeps the usual bound.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import math
import time
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import anyio
import httpx

from ._daemon import in_daemon_thread
from ._detached import detached, first_of_group, translated, translated_async
from ._exceptions import (
    APIConnectionError,
    APIResponseError,
    APITimeoutError,
    AttemptSummary,
    InvalidRequestError,
    NoRouteAvailableError,
    RateLimitError,
    ReapiError,
    RouteRefusedError,
)
from ._fetch import AsyncFetcher, SyncFetcher
from ._frozen import quick_init
from ._interrupts import closed_unless_interrupted, on_interrupt
from ._observe import Attempt, AttemptObserver, Watch
from ._sse import (
    MAX_UPSTREAM_EVENT_BYTES,
    EventDecoder,
    EventTooLarge,
    ServerSentEvent,
    is_event_stream,
)
from .catalog import Route
from .providers import (
    Batch,
    FetchReference,
    Protocol,
    Sleep,
    Step,
    UpstreamRequest,
    UpstreamResponse,
)
from .router import MAX_ANSWER_BYTES, Router

__all__ = ["HEDGE_LOST", "AsyncEngine", "Outcome", "SyncEngine", "Tap"]

#: Hears each event of a provider's streamed answer as it comes (`AsyncEngine.drive` with a tap):
#: called on the engine's task, it must not block. The adapter then reads the answer without
#: its partial images, which are let go as soon as they are heard.
Tap = Callable[[ServerSentEvent], None]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: Metadata only: method, path (no query: it may hold `key=`), status, provider, timing.
log = logging.getLogger("reapi")

_LIMITS = httpx.Limits(max_connections=512, max_keepalive_connections=128, keepalive_expiry=30)
#: The attempt-log code of a hedged attempt that was still running when another route answered:
#: it was cancelled (the upstream may bill it; the caller is charged for the one result).
HEDGE_LOST = "hedge_lost"


@quick_init
@dataclass(frozen=True, slots=True)
class Outcome(Generic[T_co]):
    result: T_co
    route: Route
    attempts: tuple[AttemptSummary, ...]


def _httpx_kwargs(request: UpstreamRequest) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"headers": dict(request.headers)}
    if request.json is not None:
        kwargs["json"] = request.json
    elif request.content is not None:
        kwargs["content"] = request.content
    if request.files:
        kwargs["files"] = list(request.files)
        data: dict[str, list[str]] = {}
        for name, value in request.data:
            data.setdefault(name, []).append(value)
        kwargs["data"] = data
    elif request.data:
        kwargs["data"] = dict(request.data)
    return kwargs


def _new_sync_client() -> httpx.Client:
    return httpx.Client(limits=_LIMITS, follow_redirects=False)


def _timeouts(first_byte: float) -> httpx.Timeout:
    # httpx's own timeouts back up the engine's deadlines (and are all the sync face has).
    return httpx.Timeout(first_byte, pool=first_byte)


def _stream_timeouts(first_byte: float, idle: float) -> httpx.Timeout:
    """A stream: connected within `first_byte`, and never silent for longer than `idle`."""
    return httpx.Timeout(idle, connect=first_byte, pool=first_byte)


#: What a request sent on a pooled connection the upstream had closed or reset raises.
_CLOSED_BY_PEER = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
#: What reading a streamed answer may raise: each becomes an `APIConnectionError`.
_STREAM_ERRORS = (httpx.TransportError, httpx.StreamError)


#: A route's host for error messages (`LocalCore.host_of`), when the caller knows it.
HostOf = Callable[[Route], str | None]


def _summary(
    route: Route, code: str, status: int | None, started: float, host_of: HostOf | None
) -> AttemptSummary:
    """One attempt's line of the attempt log, timed from `started` to now."""
    return AttemptSummary(
        provider=route.provider,
        route=route.key,
        code=code,
        status=status,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 2),
        host=host_of(route) if host_of is not None else None,
    )


class _Tally:
    """The attempts of one request so far, and the error owed when no route succeeds."""

    def __init__(self, routes: Sequence[Route], host_of: HostOf | None = None) -> None:
        self.routes = len(routes)
        self.host_of = host_of
        self.attempts: list[AttemptSummary] = []
        self.last_error: ReapiError | None = None
        self.refusal: RouteRefusedError | None = None

    def _summary(
        self, route: Route, code: str, status: int | None, started: float
    ) -> AttemptSummary:
        return _summary(route, code, status, started, self.host_of)

    def succeeded(
        self, route: Route, started: float, losers: Sequence[tuple[Route, float]] = ()
    ) -> tuple[AttemptSummary, ...]:
        """`losers`: hedged attempts still running, cancelled now (logged before the winner)."""
        for loser, loser_started in losers:
            self.attempts.append(self._summary(loser, HEDGE_LOST, None, loser_started))
        self.attempts.append(self._summary(route, "ok", None, started))
        return tuple(self.attempts)

    def failed(self, route: Route, error: ReapiError, started: float) -> None:
        self.attempts.append(self._summary(route, error.code, error.status, started))
        if isinstance(error, RouteRefusedError):
            self.refusal = self.refusal or error
        else:
            self.last_error = error

    def exhausted(self) -> ReapiError:
        every_route_refused = self.last_error is None and len(self.attempts) == self.routes
        if self.refusal is not None and every_route_refused:
            # Every host refused before sending anything: the request itself is the problem.
            return self.refusal
        last_error = self.last_error
        retry_after = last_error.retry_after if isinstance(last_error, RateLimitError) else None
        tried = "; ".join(attempt.describe() for attempt in self.attempts)
        return NoRouteAvailableError(
            f"all {len(self.attempts)} route(s) failed: {tried or 'none was tried'}",
            attempts=tuple(self.attempts),
            last_error=last_error,
            retry_after=retry_after,
            code="upstream_unavailable"
            if not isinstance(last_error, RateLimitError)
            else "rate_limit_exceeded",
        )


def _first_step(protocol: Protocol[T]) -> Any:
    """Start an attempt. A request refused before any upstream call is the route's limit (an
    option or input its API lacks), not the caller's mistake: mark it so the router moves on."""
    try:
        return next(protocol)
    except InvalidRequestError as refusal:
        error = _route_refusal(refusal)
    raise detached(error)


def _next_step(protocol: Protocol[T], reply: Any, failure: ReapiError | None) -> Any:
    """The protocol's next step: given the last step's reply, or its error raised where that
    step was yielded. An adapter that left something upstream (an uploaded input) can so remove
    it before the error goes on (`try` around its `yield`); one that does not catch lets the
    error leave `drive` as before."""
    if failure is not None:
        return protocol.throw(failure)
    return protocol.send(reply)


def _route_refusal(refusal: BaseException) -> RouteRefusedError:
    if isinstance(refusal, RouteRefusedError):
        return refusal
    assert isinstance(refusal, InvalidRequestError)
    return RouteRefusedError.of(refusal)


def _log_reply(request: UpstreamRequest, provider: str, status: int, elapsed_ms: float) -> None:
    if log.isEnabledFor(logging.DEBUG):
        path = httpx.URL(request.url).path
        log.debug("%s %s %s -> %s in %.1f ms", provider, request.method, path, status, elapsed_ms)


def answer_too_large(provider: str, limit: int) -> APIResponseError:
    """The error of an answer longer than the engine reads (`RouterConfig.max_answer_bytes`,
    `max_download_bytes`): the provider's fault, like any answer that cannot be used."""
    message = f"{provider} sent an answer larger than {limit} bytes"
    return APIResponseError(message, provider=provider)


def connection_error(exc: BaseException, provider: str, phase: str) -> APIConnectionError:
    """The error an attempt fails with when the upstream could not be reached or did not answer
    in time; names the exception's type and the phase, never its message (which may hold a URL)."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return APITimeoutError(f"{provider} did not answer in time ({phase})", provider=provider)
    return APIConnectionError(
        f"{provider} could not be reached ({type(exc).__name__} during {phase})",
        provider=provider,
    )


class AsyncTransport(typing.Protocol):
    """How an `AsyncEngine`'s upstream requests reach the network. The engine decides the
    deadlines, times and logs the exchange; a transport only sends and reads.

    `exchange` answers (status, headers with lower-case names, body) or raises the error of
    `connection_error`; `first_byte` bounds the wait for the answer's first byte (and, for a
    streamed answer, each silence after it), `body` the rest of the answer. An answer of more
    than `limit` bytes (once decompressed) raises `answer_too_large`'s error, its rest unread."""

    async def exchange(
        self,
        request: UpstreamRequest,
        provider: str,
        first_byte: float,
        body: float,
        limit: int = MAX_ANSWER_BYTES,
    ) -> tuple[int, dict[str, str], bytes]: ...

    async def aclose(self) -> None: ...


def _declared_length(headers: httpx.Headers) -> int:
    """The answer's Content-Length (0 when absent or not a number): past the limit, nothing of
    it is read. A compressed answer may still grow past it, so reads are counted as well."""
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() else 0


async def _read_answer(
    response: httpx.Response,
    provider: str,
    limit: int,
    deadline: float,
    kept: Callable[[bytes], list[bytes]] | None = None,
) -> bytes:
    """The body of `response`, read within `deadline` seconds and `limit` bytes (an answer
    over it raises `answer_too_large`'s error, its rest unread), the response closed after.
    `kept`: what of each chunk is kept (all of it without), which may raise an
    `APIResponseError` of the provider's (a tapped stream's event over its bound)."""
    error: APIConnectionError | APIResponseError | None = None
    chunks: list[bytes] = []
    try:
        with anyio.fail_after(deadline):
            if _declared_length(response.headers) > limit:
                error = answer_too_large(provider, limit)
            else:
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        error = answer_too_large(provider, limit)
                        break
                    if kept is None:
                        chunks.append(chunk)
                    else:
                        chunks.extend(kept(chunk))
    except (httpx.TransportError, httpx.StreamError, TimeoutError) as exc:
        error = connection_error(exc, provider, "reading the body")
    except APIResponseError as exc:
        error = exc
    finally:
        await response.aclose()
    if error is not None:
        raise error
    return b"".join(chunks)


class HttpxTransport:
    """The default transport: one pooled `httpx.AsyncClient`."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def exchange(
        self,
        request: UpstreamRequest,
        provider: str,
        first_byte: float,
        body: float,
        limit: int = MAX_ANSWER_BYTES,
    ) -> tuple[int, dict[str, str], bytes]:
        error: APIConnectionError | APIResponseError | None = None
        try:
            built = self.client.build_request(
                request.method, request.url, timeout=_timeouts(first_byte), **_httpx_kwargs(request)
            )
            with anyio.fail_after(first_byte):
                response = await self.client.send(built, stream=True)
        except (httpx.TransportError, TimeoutError) as exc:
            error = connection_error(exc, provider, "waiting for the first byte")
        if error is not None:
            raise error
        content = await _read_answer(response, provider, limit, body)
        return response.status_code, dict(response.headers), content

    async def aclose(self) -> None:
        await self.client.aclose()


def _tapped(decoder: EventDecoder, chunk: bytes, tap: Tap, provider: str) -> list[bytes]:
    """Hand `tap` the events `chunk` completes; what the adapter still reads of them: every
    event but the partial images, which are let go once heard. An event over the bound is the
    provider's fault, as the adapter's own reading would find."""
    events = translated(
        lambda: decoder.feed(chunk),
        EventTooLarge,
        lambda _: APIResponseError(
            f"the provider sent an event larger than {MAX_UPSTREAM_EVENT_BYTES // 2**20} MiB",
            provider=provider,
        ),
    )
    kept = []
    for event in events:
        tap(event)
        if not event.event.endswith(".partial_image"):
            data = event.data.replace("\n", "\ndata: ")
            kept.append(f"event: {event.event}\ndata: {data}\n\n".encode())
    return kept


def _started(watch: Watch | None, route: Route) -> Attempt | None:
    return watch.start(route) if watch is not None else None


def _ended(watch: Watch | None, attempt: Attempt | None, error: BaseException | None) -> None:
    if watch is not None and attempt is not None:
        watch.end(attempt, error)


class _Base:
    def __init__(self, router: Router, observer: AttemptObserver | None = None) -> None:
        self.router = router
        #: Hears of every attempt of `run` (metadata only); None: nothing extra is done.
        self.observer = observer

    def _watch(self, host_of: HostOf | None) -> Watch | None:
        return Watch(self.observer, host_of) if self.observer is not None else None

    def _answer_limit(self, request: UpstreamRequest) -> int:
        cfg = self.router.config
        return cfg.max_download_bytes if request.download else cfg.max_answer_bytes

    def _deadlines(self, request: UpstreamRequest, first_byte: float) -> tuple[float, float]:
        """(seconds to the first byte and per read after it, seconds for the rest): for a
        streamed answer, its idle deadline, and what is left of the usual whole-answer bound."""
        cfg = self.router.config
        body = cfg.download_timeout if request.download else cfg.body_timeout
        idle = request.idle_timeout
        if idle is None:
            return first_byte, body
        return idle, max(first_byte + body - idle, 0.0)

    _connection_error = staticmethod(connection_error)


class SyncEngine(_Base):
    """Blocking I/O on one pooled `httpx.Client`; caller URLs only through `fetcher`."""

    def __init__(
        self,
        router: Router,
        client: httpx.Client | None = None,
        fetcher: SyncFetcher | None = None,
        observer: AttemptObserver | None = None,
    ) -> None:
        super().__init__(router, observer)
        self._owns_client = client is None
        self._client = client or _new_sync_client()
        self.fetcher = fetcher or SyncFetcher()
        # Ctrl-C inside httpcore may leave the pool's lock taken (`reapi._interrupts`): a
        # pool of our own is then swapped for a fresh one, so `close()` and the next
        # request do not wait on it forever. A caller's `http_client` is theirs to replace.
        self._interrupts = on_interrupt(self._drop_the_pool)

    def _drop_the_pool(self) -> None:
        if self._owns_client:
            self._client = _new_sync_client()

    def close(self) -> None:
        self._client.close()

    def send(self, request: UpstreamRequest, provider: str, first_byte: float) -> UpstreamResponse:
        with self._interrupts:
            return self._send(request, provider, first_byte)

    def _send(self, request: UpstreamRequest, provider: str, first_byte: float) -> UpstreamResponse:
        first_byte, body_deadline = self._deadlines(request, first_byte)
        started = time.perf_counter()
        error: APIConnectionError | APIResponseError | None = None
        client = self._client
        try:
            built = client.build_request(
                request.method, request.url, timeout=_timeouts(first_byte), **_httpx_kwargs(request)
            )
            response = client.send(built, stream=True)
        except (httpx.TransportError, TimeoutError) as exc:
            error = self._connection_error(exc, provider, "waiting for the first byte")
        if error is not None:
            raise error
        chunks: list[bytes] = []
        limit, size = self._answer_limit(request), 0
        with closed_unless_interrupted(response.close):
            try:
                if _declared_length(response.headers) > limit:
                    error = answer_too_large(provider, limit)
                else:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > limit:
                            error = answer_too_large(provider, limit)
                            break
                        chunks.append(chunk)
                        if time.perf_counter() - started > first_byte + body_deadline:
                            error = APITimeoutError(
                                f"{provider} did not finish its answer in time", provider=provider
                            )
                            break
            except (httpx.TransportError, httpx.StreamError) as exc:
                error = self._connection_error(exc, provider, "reading the body")
        if error is not None:
            raise error
        elapsed_ms = (time.perf_counter() - started) * 1000
        _log_reply(request, provider, response.status_code, elapsed_ms)
        return UpstreamResponse(
            response.status_code, dict(response.headers), b"".join(chunks), elapsed_ms
        )

    @contextlib.contextmanager
    def stream_chunks(
        self, request: UpstreamRequest, provider: str, *, first_byte: float, idle: float
    ) -> Iterator[tuple[int, Iterator[bytes]]]:
        """An answer read as it comes (Server-Sent Events): its status and its bytes, in the
        chunks they came in; the reader splits them (`reapi._sse`: by the event-stream rules,
        within its bounds). A transport failure, at the start or mid-stream, is an
        `APIConnectionError` (`APITimeoutError` after `idle` seconds without a byte)."""
        client = self._client
        built = client.build_request(
            request.method,
            request.url,
            timeout=_stream_timeouts(first_byte, idle),
            **_httpx_kwargs(request),
        )
        with self._interrupts:
            response = translated(
                lambda: client.send(built, stream=True),
                (httpx.TransportError, TimeoutError),
                lambda e: self._connection_error(e, provider, "waiting for the first byte"),
            )
            with closed_unless_interrupted(response.close):
                yield response.status_code, self._chunks(response, provider)

    def _chunks(self, response: httpx.Response, provider: str) -> Iterator[bytes]:
        chunks = response.iter_bytes()
        while True:
            chunk = translated(
                lambda: next(chunks, None),
                _STREAM_ERRORS,
                lambda e: self._connection_error(e, provider, "reading the stream"),
            )
            if chunk is None:
                return
            yield chunk

    def _reply(self, step: Step, provider: str, first_byte: float) -> Any:
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        if isinstance(step, Batch):
            # Daemon threads (`reapi._daemon`): after Ctrl-C, the program exits at once.
            futures = [
                in_daemon_thread(lambda r: self.send(r, provider, first_byte), r)
                for r in step.requests
            ]
            return tuple(f.result() for f in futures)
        if isinstance(step, FetchReference):
            return self.fetcher.fetch(step.url, accept=step.accept, param=step.param)
        return self.send(step, provider, first_byte)

    def drive(self, protocol: Protocol[T], provider: str, first_byte: float) -> T:
        try:
            step = _first_step(protocol)
            while True:
                reply: Any = None
                failure: ReapiError | None = None
                try:
                    reply = self._reply(step, provider, first_byte)
                except ReapiError as error:
                    failure = error
                step = _next_step(protocol, reply, failure)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            protocol.close()

    def run(
        self,
        routes: Sequence[Route],
        attempt: Callable[[Route], T],
        *,
        host_of: HostOf | None = None,
        hedge_for: str | None = None,
    ) -> Outcome[T]:
        """Try routes in the router's order until one succeeds or a failure must not fail over.
        `host_of` names each route's host in the error when every route failed. `hedge_for`:
        the model of an image request, which the router's hedging policy may hedge."""
        tally = _Tally(routes, host_of)
        watch = self._watch(host_of)
        if self.router.hedges(hedge_for, routes):
            return self._run_hedged(routes, attempt, hedge_for, tally, watch)
        for route in self.router.candidates(routes):
            started = time.perf_counter()
            observed = _started(watch, route)
            try:
                result = attempt(route)
            except ReapiError as error:
                tally.failed(route, error, started)
                _ended(watch, observed, error)
                log.info("route %s failed: %s (status %s)", route.key, error.code, error.status)
                if not self.router.record_failure(route, error):
                    raise
                continue
            except BaseException as error:
                self.router.release(route)
                _ended(watch, observed, error)
                raise
            self.router.record_success(route, time.perf_counter() - started)
            _ended(watch, observed, None)
            return Outcome(result, route, tally.succeeded(route, started))
        raise tally.exhausted()

    def _run_hedged(
        self,
        routes: Sequence[Route],
        attempt: Callable[[Route], T],
        model: str | None,
        tally: _Tally,
        watch: Watch | None,
    ) -> Outcome[T]:
        """A thread cannot be cancelled: a losing attempt runs on to its own deadline and its
        result is dropped (`AsyncEngine` cancels it and closes its connection); it runs on a
        daemon thread, so it never delays the program's exit (`reapi._daemon`)."""
        candidates: Iterator[Route] = self.router.candidates(routes)
        running: dict[concurrent.futures.Future[T], tuple[Route, float]] = {}
        observed: dict[concurrent.futures.Future[T], Attempt | None] = {}
        next_hedge: float | None = None

        def launch() -> None:
            nonlocal next_hedge
            route = next(candidates, None)
            if route is None:
                next_hedge = None
                return
            heard = _started(watch, route)
            started = time.perf_counter()
            future = in_daemon_thread(attempt, route)
            running[future], observed[future] = (route, started), heard
            delay = self.router.hedge_delay(model, route)
            next_hedge = None if delay is None else started + delay

        try:
            launch()
            while running:
                wait = None if next_hedge is None else max(next_hedge - time.perf_counter(), 0.0)
                done, _ = concurrent.futures.wait(
                    running, timeout=wait, return_when=concurrent.futures.FIRST_COMPLETED
                )
                if not done:
                    launch()
                    continue
                for future in done:
                    route, started = running.pop(future)
                    error = future.exception()
                    _ended(watch, observed.pop(future), error)
                    if error is None:
                        self.router.record_success(route, time.perf_counter() - started)
                        losers = tuple(running.values())
                        succeeded = tally.succeeded(route, started, losers)
                        return Outcome(future.result(), route, succeeded)
                    if not isinstance(error, ReapiError):
                        self.router.release(route)
                        raise error
                    tally.failed(route, error, started)
                    if not self.router.record_failure(route, error):
                        raise error
                    launch()
            raise tally.exhausted()
        finally:
            # The attempts still running are left to finish alone (daemon threads: they do not
            # hold up the program's exit), their results dropped. Their routes are released
            # however this ends: a lost hedge, a fatal error, or Ctrl-C (a half-open probe left
            # claimed would keep its route out of every later request).
            for other, _ in running.values():
                self.router.release(other)
            if watch is not None:
                watch.abandon_the_rest()


class AsyncEngine(_Base):
    """Non-blocking I/O; never blocks the event loop. Upstream requests go through `transport`
    (by default one pooled `httpx.AsyncClient`, the same `client`)."""

    def __init__(
        self,
        router: Router,
        client: httpx.AsyncClient | None = None,
        fetcher: AsyncFetcher | None = None,
        transport: AsyncTransport | None = None,
        observer: AttemptObserver | None = None,
        client_setup: Callable[[httpx.AsyncClient], object] | None = None,
    ) -> None:
        """`client_setup`: called with the pooled client when the engine makes it (not with a
        `client` given), before its first request (the gateway pins its connections)."""
        super().__init__(router, observer)
        # Made when first needed: with another transport (the gateway's aiohttp), only streams
        # and mirrored videos use it, and an idle pool with its TLS context costs ~0.8 MiB.
        self._client = client
        self._client_setup = client_setup
        self.transport: AsyncTransport = transport or HttpxTransport(self.client)
        self.fetcher = fetcher or AsyncFetcher()

    async def aclose(self) -> None:
        await self.transport.aclose()
        if self._client is not None:  # closing twice (the default transport shares it): no-op
            await self._client.aclose()

    @property
    def client(self) -> httpx.AsyncClient:
        """The pooled client, for a caller that streams a large body itself instead of reading
        it whole (the gateway mirroring a video into storage)."""
        if self._client is None:
            self._client = httpx.AsyncClient(limits=_LIMITS, follow_redirects=False)
            if self._client_setup is not None:
                self._client_setup(self._client)
        return self._client

    async def send(
        self, request: UpstreamRequest, provider: str, first_byte: float
    ) -> UpstreamResponse:
        first_byte, body_deadline = self._deadlines(request, first_byte)
        started = time.perf_counter()
        status, headers, content = await self.transport.exchange(
            request, provider, first_byte, body_deadline, self._answer_limit(request)
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        _log_reply(request, provider, status, elapsed_ms)
        return UpstreamResponse(status, headers, content, elapsed_ms)

    @contextlib.asynccontextmanager
    async def stream_chunks(
        self, request: UpstreamRequest, provider: str, *, first_byte: float, idle: float
    ) -> AsyncIterator[tuple[int, AsyncIterator[bytes]]]:
        """The async twin of `SyncEngine.stream_chunks`."""
        client = self.client
        built = client.build_request(
            request.method,
            request.url,
            timeout=_stream_timeouts(first_byte, idle),
            **_httpx_kwargs(request),
        )

        async def send() -> httpx.Response:
            with anyio.fail_after(first_byte + idle):
                return await client.send(built, stream=True)

        response = await translated_async(
            send,
            (httpx.TransportError, TimeoutError),
            lambda e: self._connection_error(e, provider, "waiting for the first byte"),
        )
        try:
            yield response.status_code, self._chunks(response, provider)
        finally:
            await response.aclose()

    async def _chunks(self, response: httpx.Response, provider: str) -> AsyncIterator[bytes]:
        chunks = response.aiter_bytes()
        while True:
            chunk = await translated_async(
                lambda: anext(chunks, None),
                _STREAM_ERRORS,
                lambda e: self._connection_error(e, provider, "reading the stream"),
            )
            if chunk is None:
                return
            yield chunk

    async def _reply(
        self, step: Step, provider: str, first_byte: float, tap: Tap | None = None
    ) -> Any:
        if isinstance(step, Sleep):
            await anyio.sleep(step.seconds)
            return None
        if isinstance(step, Batch):
            return await self._send_all(step.requests, provider, first_byte)
        if isinstance(step, FetchReference):
            return await self.fetcher.fetch(step.url, accept=step.accept, param=step.param)
        if tap is not None and step.purpose == "create":
            return await self._send_tapped(step, provider, first_byte, tap)
        return await self.send(step, provider, first_byte)

    async def drive(
        self, protocol: Protocol[T], provider: str, first_byte: float, tap: Tap | None = None
    ) -> T:
        """Run `protocol`'s steps to its result. With `tap`, each event of a streamed answer to
        its creating request is handed to `tap` as it arrives (a caller streaming partial
        images on); such a request is read through the engine's own httpx client, not its
        transport: the transports read answers whole."""
        try:
            step = _first_step(protocol)
            while True:
                reply: Any = None
                failure: ReapiError | None = None
                try:
                    # A sleep, a batch, a fetch (or a subclass) goes through `_reply`.
                    if type(step) is not UpstreamRequest:
                        reply = await self._reply(step, provider, first_byte, tap)
                    elif tap is not None and step.purpose == "create":
                        reply = await self._send_tapped(step, provider, first_byte, tap)
                    else:  # the usual step: one request (`_reply` would find it last)
                        reply = await self.send(step, provider, first_byte)
                except ReapiError as error:
                    failure = error
                # (`_next_step`, written out: once or twice a request)
                step = protocol.send(reply) if failure is None else protocol.throw(failure)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            protocol.close()

    async def _send_tapped(
        self, request: UpstreamRequest, provider: str, first_byte: float, tap: Tap
    ) -> UpstreamResponse:
        first_byte, body_deadline = self._deadlines(request, first_byte)
        limit = self._answer_limit(request)
        started = time.perf_counter()
        response = await self._open_tapped(request, provider, first_byte)
        kept: Callable[[bytes], list[bytes]] | None = None
        if response.status_code < 400 and is_event_stream(response.headers.get("content-type")):
            decoder = EventDecoder(max_event_bytes=MAX_UPSTREAM_EVENT_BYTES)
            kept = partial(_tapped, decoder, tap=tap, provider=provider)
        content = await _read_answer(response, provider, limit, body_deadline, kept)
        elapsed_ms = (time.perf_counter() - started) * 1000
        _log_reply(request, provider, response.status_code, elapsed_ms)
        return UpstreamResponse(response.status_code, dict(response.headers), content, elapsed_ms)

    async def _open_tapped(
        self, request: UpstreamRequest, provider: str, first_byte: float
    ) -> httpx.Response:
        """The head of a tapped request's answer. Sent on a pooled connection the upstream had
        just closed or reset (before any of the answer), it is sent once more, on a new one, as
        the gateway's transports do (`upstream_h1`): else a single-route request failed (502)
        and counted against the breaker. httpx does not say whether it reused a connection; its
        trace does (a request sent without connecting)."""
        client = self.client
        for last in (False, True):
            connected = sent = False

            async def trace(name: str, info: Any) -> None:
                nonlocal connected, sent
                connected = connected or name.startswith("connection.connect_tcp.")
                sent = sent or name.startswith("http11.send_request_headers.")

            built = client.build_request(
                request.method,
                request.url,
                timeout=_timeouts(first_byte),
                extensions={"trace": trace},
                **_httpx_kwargs(request),
            )
            error: APIConnectionError | None = None
            try:
                with anyio.fail_after(first_byte):
                    return await client.send(built, stream=True)
            except _CLOSED_BY_PEER as exc:
                if last or connected or not sent:  # a new connection's failure is the host's
                    error = connection_error(exc, provider, "waiting for the first byte")
            except (httpx.TransportError, TimeoutError) as exc:
                error = connection_error(exc, provider, "waiting for the first byte")
            if error is not None:
                raise error
        raise AssertionError("unreachable: the last try returns or raises")

    async def _send_all(
        self, requests: Sequence[UpstreamRequest], provider: str, first_byte: float
    ) -> tuple[UpstreamResponse, ...]:
        replies: list[UpstreamResponse | None] = [None] * len(requests)

        async def one(index: int, request: UpstreamRequest) -> None:
            replies[index] = await self.send(request, provider, first_byte)

        async def all_at_once() -> None:
            async with anyio.create_task_group() as group:
                for index, request in enumerate(requests):
                    group.start_soon(one, index, request)

        await translated_async(all_at_once, BaseExceptionGroup, first_of_group)
        return tuple(r for r in replies if r is not None)

    async def run(
        self,
        routes: Sequence[Route],
        attempt: Callable[[Route], Awaitable[T]],
        *,
        host_of: HostOf | None = None,
        hedge_for: str | None = None,
    ) -> Outcome[T]:
        watch = self._watch(host_of)
        if self.router.hedges(hedge_for, routes):
            return await self._run_hedged(
                routes, attempt, hedge_for, _Tally(routes, host_of), watch
            )
        # The usual request: the first route answers. Its tally is made at the first failure
        # (a success before any is its one summary), and the watch asked only when there is one.
        tally: _Tally | None = None
        for route in self.router.candidates(routes):
            started = time.perf_counter()
            observed = watch.start(route) if watch is not None else None
            try:
                result = await attempt(route)
            except ReapiError as error:
                if tally is None:
                    tally = _Tally(routes, host_of)
                tally.failed(route, error, started)
                _ended(watch, observed, error)
                log.info("route %s failed: %s (status %s)", route.key, error.code, error.status)
                if not self.router.record_failure(route, error):
                    raise
                continue
            except BaseException as error:
                self.router.release(route)
                _ended(watch, observed, error)
                raise
            self.router.record_success(route, time.perf_counter() - started)
            if watch is not None and observed is not None:
                watch.end(observed, None)
            if tally is None:
                return Outcome(result, route, (_summary(route, "ok", None, started, host_of),))
            return Outcome(result, route, tally.succeeded(route, started))
        raise (tally or _Tally(routes, host_of)).exhausted()

    async def _run_hedged(
        self,
        routes: Sequence[Route],
        attempt: Callable[[Route], Awaitable[T]],
        model: str | None,
        tally: _Tally,
        watch: Watch | None,
    ) -> Outcome[T]:
        """Attempts in one task group: the first success cancels the others, whose sockets
        close as their reads are cancelled (nothing of theirs is kept or charged)."""
        candidates = self.router.candidates(routes)
        send, receive = anyio.create_memory_object_stream[
            tuple[int, T | None, BaseException | None]
        ](max_buffer_size=len(routes) + 1)
        #: Attempts still running: token → (route, started).
        running: dict[int, tuple[Route, float]] = {}
        observed: dict[int, Attempt | None] = {}
        tokens = iter(range(len(routes) + 1))
        winner: Outcome[T] | None = None
        fatal: BaseException | None = None
        next_hedge: float | None = None

        try:
            async with anyio.create_task_group() as group:

                async def run_one(token: int, route: Route) -> None:
                    try:
                        result = await attempt(route)
                    except anyio.get_cancelled_exc_class():
                        self.router.release(route)
                        raise
                    except Exception as exc:  # reported to the loop below, which decides
                        await send.send((token, None, exc))
                        return
                    await send.send((token, result, None))

                def launch() -> None:
                    nonlocal next_hedge
                    route = next(candidates, None)
                    if route is None:
                        next_hedge = None
                        return
                    token, started = next(tokens), time.perf_counter()
                    running[token], observed[token] = (route, started), _started(watch, route)
                    group.start_soon(run_one, token, route)
                    delay = self.router.hedge_delay(model, route)
                    next_hedge = None if delay is None else started + delay

                launch()
                while running and winner is None and fatal is None:
                    wait = math.inf if next_hedge is None else next_hedge - time.perf_counter()
                    with anyio.move_on_after(max(wait, 0.0)) as waited:
                        token, result, error = await receive.receive()
                    if waited.cancelled_caught:
                        launch()
                        continue
                    route, started = running.pop(token)
                    _ended(watch, observed.pop(token), error)
                    if error is None:
                        self.router.record_success(route, time.perf_counter() - started)
                        losers = tuple(running.values())
                        succeeded = tally.succeeded(route, started, losers)
                        winner = Outcome(result, route, succeeded)  # type: ignore[arg-type]
                    elif not isinstance(error, ReapiError):
                        self.router.release(route)
                        fatal = error
                    else:
                        tally.failed(route, error, started)
                        if not self.router.record_failure(route, error):
                            fatal = error
                        else:
                            launch()
                group.cancel_scope.cancel()
        finally:
            # Every attempt has ended with the group: unclosed, the streams warn as they are
            # collected (`ResourceWarning`, on every hedged call), cancelled or not.
            send.close()
            receive.close()
            if watch is not None:
                watch.abandon_the_rest()  # hedges that lost, cancelled with the group
        if fatal is not None:
            raise fatal
        if winner is not None:
            return winner
        raise tally.exhausted()
