"""`client.videos`: create → retrieve/wait → download_content, OpenAI-style.

Failover happens at submit. A task that later ends failed upstream (for any reason but a content
block) is resubmitted once to the next route while this client is alive.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Literal, TypeVar

import anyio
from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from .._detached import translated, translated_async
from .._exceptions import APIConnectionError, InvalidRequestError, JobFailedError, ReapiError
from .._jobs import VideoHandle
from .._local import LocalCore, attempts_of
from .._options import CallOptions, Headers, Query, TimeoutOption
from .._raw_clients import AsyncVideosWithRawResponse, VideosWithRawResponse
from ..providers import GeneratedFile, TaskStatus
from ..types import BinaryContent, Video, VideoDeleted, VideoList
from ._base import GATEWAY, AsyncResource, SyncResource
from ._inputs import FileInput, video_request
from ._jobs_memory import JobMemory, RememberedJob
from ._pages import AsyncVideoPage, AsyncVideoPaginator, SyncVideoPage
from ._video_waits import (
    FIRST_BYTE,
    STREAM_IDLE,
    EventWait,
    Progress,
    ProgressCallback,
    finished,
)

__all__ = ["AsyncVideos", "Videos"]

Variant = Literal["video", "thumbnail", "spritesheet"]
_T = TypeVar("_T")


def _transient(error: BaseException) -> bool:
    return isinstance(error, ReapiError) and error.retryable


#: Polls are read-only: a passing fault on one poll should not end a wait.
_POLL_RETRY: dict[str, Any] = {
    "retry": retry_if_exception(_transient),
    "stop": stop_after_attempt(3),
    "wait": wait_exponential(multiplier=0.2, max=2),
    "reraise": True,
}


def _poll_retry(until: float | None) -> dict[str, Any]:
    """`_POLL_RETRY`, for a wait's poll: no try starts after the wait's deadline (`until`)."""
    if until is None:
        return _POLL_RETRY
    left = max(until - time.monotonic(), 0.0)
    return {**_POLL_RETRY, "stop": stop_after_attempt(3) | stop_after_delay(left)}


def _past(until: float) -> bool:
    return time.monotonic() >= until


def _within(seconds: float, until: float | None) -> float:
    """A poll's first-byte deadline, cut to what is left of a wait that ends at `until`."""
    if until is None:
        return seconds
    return max(min(seconds, until - time.monotonic()), 0.01)


def _cut(error: BaseException, until: float, progress: Progress) -> BaseException:
    """A poll that failed to connect or answer: the wait's timeout when it was cut at the
    wait's deadline (`_within`), else its own error."""
    return progress.timed_out() if _past(until) else error


def _options(**kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


def _take_if_failed(memory: JobMemory, video_id: str, status: TaskStatus) -> RememberedJob | None:
    """A final state ends what the client keeps of the job's body: handed over for its one
    resubmission when the task failed (other than by a content block), else dropped."""
    if status.state not in ("completed", "failed"):
        return None
    if status.state == "failed" and not status.content_blocked:
        return memory.take(video_id)
    memory.finished(video_id)
    return None


def _pick(video: Video, status: TaskStatus | None, variant: Variant) -> GeneratedFile:
    """The output to download, or why there is none: not finished yet, or (for a finished
    video) the provider makes no such variant."""
    if status is None or status.state != "completed":
        raise InvalidRequestError(
            f"this video is {video.status}, not completed; wait for it first",
            param="video_id",
            code="video_not_ready",
        )
    chosen = (status.outputs[0] if status.outputs else None) if variant == "video" else None
    if variant == "thumbnail":
        chosen = status.thumbnail
    if chosen is None or chosen.fetch is None:
        provider = video.reapi.provider if video.reapi else None
        raise InvalidRequestError(
            f"this video has no {variant}: {provider or 'its provider'} does not make one",
            param="variant",
            code="variant_unavailable",
        )
    return chosen


def _interval(poll_interval_ms: int | None) -> float:
    """openai-python's poll interval (milliseconds) as `wait`'s (seconds; 2 s by default)."""
    return 2.0 if poll_interval_ms is None else poll_interval_ms / 1000


def _wait_seconds(status: TaskStatus | None, poll_interval: float) -> float:
    hint = status.poll_after if status and status.poll_after is not None else None
    return min(poll_interval if hint is None else hint, max(poll_interval, 0.0))


def _local_page(
    memory: JobMemory, limit: int, after: str | None, order: str
) -> tuple[list[str], bool]:
    """The ids of one page of the videos this client created, and whether more follow."""
    ids = list(reversed(memory.created)) if order == "desc" else list(memory.created)
    if after is not None and after in ids:
        ids = ids[ids.index(after) + 1 :]
    return ids[:limit], len(ids) > limit


def _as_list(page: list[Video], has_more: bool) -> VideoList:
    return VideoList(
        data=page,
        first_id=page[0].id if page else None,
        last_id=page[-1].id if page else None,
        has_more=has_more,
    )


class Videos(SyncResource):
    @property
    def with_raw_response(self) -> VideosWithRawResponse:
        """These methods, each returning a `RawResponse` (openai-python's
        `client.videos.with_raw_response`). Gateway mode only."""
        self._setup.raw_responses()
        return VideosWithRawResponse(self)

    @property
    def _memory(self) -> JobMemory:
        return self._setup.jobs

    @property
    def _core(self) -> LocalCore:
        core = self._setup.core
        assert core is not None
        return core

    def create(
        self,
        *,
        model: str,
        prompt: str | None = None,
        seconds: int | str | None = None,
        size: str | None = None,
        input_reference: FileInput | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        seed: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> Video:
        params, payload = video_request(
            prompt=prompt,
            model=model,
            seconds=seconds,
            input_reference=input_reference,
            **_options(size=size, aspect_ratio=aspect_ratio, resolution=resolution, seed=seed),
        )
        call = self._call(timeout, extra_headers, extra_query, extra_body)
        if self._setup.gateway is not None:
            key = call.idempotency_key(idempotency_key)
            return self._through_gateway(
                lambda gateway: gateway.create_video(params, payload, call, idempotency_key=key),
                call,
                retry=key is not None,
            )
        prepared = self._core.prepare_video(params, payload)
        first = prepared.routes[0]
        vetted = self._engine.drive(
            self._core.vet_video(prepared), first.provider, self._deadline(first, call)
        )
        return self._submit(RememberedJob(vetted), vetted.routes, None, call)

    def _submit(
        self, job: RememberedJob, routes: Any, previous: str | None, call: CallOptions
    ) -> Video:
        core, engine = self._core, self._engine
        outcome = engine.run(
            routes,
            lambda route: engine.drive(
                core.video_attempt(job.prepared, route), route.provider, self._deadline(route, call)
            ),
            host_of=core.host_of,
        )
        job.tried.add(outcome.route.key)
        handle = core.handle_for(job.prepared, outcome)
        video_id = handle.encode()
        self._memory.remember(video_id, job)
        if previous is not None:
            self._memory.forward(previous, video_id)
        return core.video_object(
            handle, None, attempts=attempts_of(outcome), resubmitted_from=previous
        )

    def _poll(
        self, video_id: str, call: CallOptions, until: float | None = None
    ) -> tuple[Video, TaskStatus | None]:
        """The video now. `until`: the end of a wait, which no poll outlasts."""
        if self._setup.gateway is not None:
            if until is not None:
                call = dataclasses.replace(
                    call, timeout=_within(self._gateway_deadline(call), until)
                )
            video = self._through_gateway(
                lambda gateway: gateway.retrieve_video(video_id, call), call
            )
            return video, None
        core, engine = self._core, self._engine
        video_id = self._memory.resolve(video_id)
        handle = VideoHandle.decode(video_id)
        route = core.route_of(handle)
        for attempt in Retrying(**_poll_retry(until)):
            with attempt:
                status = engine.drive(
                    core.poll_video(route, handle.task_id),
                    route.provider,
                    _within(self._deadline(route, call), until),
                )
        job = _take_if_failed(self._memory, video_id, status)
        if job is not None:
            self._setup.router.record_failure(
                route, JobFailedError("task failed upstream", provider=route.provider)
            )
            remaining = job.next_routes()
            if remaining:
                job.resubmitted = True
                return self._submit(job, remaining, video_id, call), None
        origin = self._memory.origin(video_id)
        return core.video_object(handle, status, resubmitted_from=origin), status

    def retrieve(
        self,
        video_id: str,
        *,
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
    ) -> Video:
        return self._poll(video_id, self._call(timeout, extra_headers, extra_query))[0]

    def wait(
        self,
        video_id: str,
        *,
        timeout: float = 1800.0,
        poll_interval: float = 2.0,
        on_progress: ProgressCallback | None = None,
    ) -> Video:
        """Wait until the video is completed or failed; `on_progress` sees every change.
        `timeout` bounds the whole wait. On a gateway, the video's event stream tells each
        change as it happens (polling when the gateway has none); in-process, it polls."""
        deadline = time.monotonic() + timeout
        call = self._call()
        progress = Progress(on_progress, timeout)
        if self._setup.gateway is not None:
            followed = self._follow_events(video_id, call, deadline, progress)
            if followed is not None:
                return followed
        while True:
            video, status = translated(
                partial(self._poll, video_id, call, deadline),
                APIConnectionError,
                lambda error: _cut(error, deadline, progress),
            )
            video_id = video.id
            progress.see(video)
            if finished(video):
                return video
            if time.monotonic() >= deadline:
                raise progress.timed_out()
            time.sleep(_wait_seconds(status, poll_interval))

    def _follow_events(
        self, video_id: str, call: CallOptions, deadline: float, progress: Progress
    ) -> Video | None:
        """The finished video, followed through its event streams; None: poll instead."""
        events = EventWait(self._gateway, progress)
        pause = 0.0
        while not events.done:
            time.sleep(max(min(pause, deadline - time.monotonic()), 0.0))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise progress.timed_out()
            broke, pause = False, 0.0
            try:
                with self._engine.stream_chunks(
                    events.request(video_id, call),
                    GATEWAY,
                    first_byte=min(FIRST_BYTE, remaining),
                    idle=min(STREAM_IDLE, remaining),
                ) as (status, chunks):
                    if events.opened(status):
                        for chunk in chunks:
                            if events.chunk(chunk) or time.monotonic() >= deadline:
                                break
                        else:
                            pause = events.ended()
            except APIConnectionError:  # a timeout too: the deadline's or the stream's idle one
                broke = True
            if not events.done and time.monotonic() >= deadline:
                raise progress.timed_out()
            if broke:
                events.broke()
        return events.final

    def poll(
        self,
        video_id: str,
        *,
        poll_interval_ms: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Video:
        """openai-python's name for `wait` (the interval in milliseconds, as there; 2 s when
        not given): until the video is completed or failed, which is returned, not raised."""
        return self.wait(
            video_id, poll_interval=_interval(poll_interval_ms), on_progress=on_progress
        )

    def create_and_poll(
        self,
        *,
        model: str,
        prompt: str | None = None,
        seconds: int | str | None = None,
        size: str | None = None,
        input_reference: FileInput | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        seed: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
        poll_interval_ms: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Video:
        """`create`, then `poll` until the video is completed or failed, as openai-python's
        `create_and_poll`; `timeout` is the create call's, as there."""
        video = self.create(
            model=model,
            prompt=prompt,
            seconds=seconds,
            size=size,
            input_reference=input_reference,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            seed=seed,
            idempotency_key=idempotency_key,
            timeout=timeout,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
        )
        return self.poll(video.id, poll_interval_ms=poll_interval_ms, on_progress=on_progress)

    def create_and_wait(self, **kwargs: Any) -> Video:
        on_progress = kwargs.pop("on_progress", None)
        video = self.create(**kwargs)
        return self.wait(video.id, on_progress=on_progress)

    def download_content(
        self,
        video_id: str,
        *,
        variant: Variant = "video",
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
    ) -> BinaryContent:
        call = self._call(timeout, extra_headers, extra_query)
        if self._setup.gateway is not None:
            return self._through_gateway(
                lambda gateway: gateway.video_content(video_id, variant, call), call
            )
        video, status = self._poll(video_id, call)
        chosen = _pick(video, status, variant)
        core = self._core
        route = core.route_of(VideoHandle.decode(video.id))
        assert chosen.fetch is not None
        reply = self._engine.send(chosen.fetch, route.provider, self._deadline(route, call))
        core.adapter(route).check(reply)
        return BinaryContent(reply.content, reply.header("content-type") or chosen.content_type)

    def list(
        self,
        *,
        limit: int = 20,
        after: str | None = None,
        order: Literal["asc", "desc"] = "desc",
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
    ) -> SyncVideoPage:
        """One page of videos, newest first. Iterate it for every video (further pages are
        fetched as needed), or use `iter_pages()`. In-process: the videos this client made."""
        call = self._call(timeout, extra_headers, extra_query)

        def after_(cursor: str) -> SyncVideoPage:
            return self.list(
                limit=limit,
                after=cursor,
                order=order,
                timeout=timeout,
                extra_headers=extra_headers,
                extra_query=extra_query,
            )

        if self._setup.gateway is not None:
            page = self._through_gateway(
                lambda gateway: gateway.list_videos(call, limit=limit, after=after, order=order),
                call,
            )
            return SyncVideoPage.of(page, after_)
        ids, has_more = _local_page(self._memory, limit, after, order)
        videos = [self._poll(i, call)[0] for i in ids]
        return SyncVideoPage.of(_as_list(videos, has_more), after_)

    def delete(
        self,
        video_id: str,
        *,
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
    ) -> VideoDeleted:
        call = self._call(timeout, extra_headers, extra_query)
        if self._setup.gateway is not None:
            return self._through_gateway(lambda gateway: gateway.delete_video(video_id, call), call)
        core = self._core
        resolved = self._memory.resolve(video_id)
        handle = VideoHandle.decode(resolved)
        route = core.route_of(handle)
        self._engine.drive(
            core.adapter(route).cancel_video(route, handle.task_id),
            route.provider,
            self._deadline(route, call),
        )
        self._memory.forget(resolved)
        return VideoDeleted(id=video_id)


class AsyncVideos(AsyncResource):
    @property
    def with_raw_response(self) -> AsyncVideosWithRawResponse:
        """These methods, each returning a `RawResponse` (openai-python's
        `client.videos.with_raw_response`). Gateway mode only."""
        self._setup.raw_responses()
        return AsyncVideosWithRawResponse(self)

    @property
    def _memory(self) -> JobMemory:
        return self._setup.jobs

    @property
    def _core(self) -> LocalCore:
        core = self._setup.core
        assert core is not None
        return core

    async def create(
        self,
        *,
        model: str,
        prompt: str | None = None,
        seconds: int | str | None = None,
        size: str | None = None,
        input_reference: FileInput | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        seed: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,  # noqa: ASYNC109 - openai-python's per-call option
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> Video:
        params, payload = video_request(
            prompt=prompt,
            model=model,
            seconds=seconds,
            input_reference=input_reference,
            **_options(size=size, aspect_ratio=aspect_ratio, resolution=resolution, seed=seed),
        )
        call = self._call(timeout, extra_headers, extra_query, extra_body)
        if self._setup.gateway is not None:
            key = call.idempotency_key(idempotency_key)
            return await self._through_gateway(
                lambda gateway: gateway.create_video(params, payload, call, idempotency_key=key),
                call,
                retry=key is not None,
            )
        prepared = self._core.prepare_video(params, payload)
        first = prepared.routes[0]
        vetted = await self._engine.drive(
            self._core.vet_video(prepared), first.provider, self._deadline(first, call)
        )
        return await self._submit(RememberedJob(vetted), vetted.routes, None, call)

    async def _submit(
        self, job: RememberedJob, routes: Any, previous: str | None, call: CallOptions
    ) -> Video:
        core, engine = self._core, self._engine

        async def attempt(route: Any) -> str:
            return await engine.drive(
                core.video_attempt(job.prepared, route), route.provider, self._deadline(route, call)
            )

        outcome = await engine.run(routes, attempt, host_of=core.host_of)
        job.tried.add(outcome.route.key)
        handle = core.handle_for(job.prepared, outcome)
        video_id = handle.encode()
        self._memory.remember(video_id, job)
        if previous is not None:
            self._memory.forward(previous, video_id)
        return core.video_object(
            handle, None, attempts=attempts_of(outcome), resubmitted_from=previous
        )

    async def _retrying(self, call: Callable[[], Awaitable[_T]], until: float | None) -> _T:
        async for attempt in AsyncRetrying(**_poll_retry(until)):
            with attempt:
                return await call()
        raise AssertionError("unreachable")

    async def _poll(
        self, video_id: str, call: CallOptions, until: float | None = None
    ) -> tuple[Video, TaskStatus | None]:
        """The video now. `until`: the end of a wait, which no poll outlasts."""
        if self._setup.gateway is not None:
            if until is not None:
                call = dataclasses.replace(
                    call, timeout=_within(self._gateway_deadline(call), until)
                )
            video = await self._through_gateway(
                lambda gateway: gateway.retrieve_video(video_id, call), call
            )
            return video, None
        core, engine = self._core, self._engine
        video_id = self._memory.resolve(video_id)
        handle = VideoHandle.decode(video_id)
        route = core.route_of(handle)
        status = await self._retrying(
            lambda: engine.drive(
                core.poll_video(route, handle.task_id),
                route.provider,
                _within(self._deadline(route, call), until),
            ),
            until,
        )
        job = _take_if_failed(self._memory, video_id, status)
        if job is not None:
            self._setup.router.record_failure(
                route, JobFailedError("task failed upstream", provider=route.provider)
            )
            remaining = job.next_routes()
            if remaining:
                job.resubmitted = True
                return await self._submit(job, remaining, video_id, call), None
        origin = self._memory.origin(video_id)
        return core.video_object(handle, status, resubmitted_from=origin), status

    async def retrieve(
        self,
        video_id: str,
        *,
        timeout: TimeoutOption = None,  # noqa: ASYNC109 - openai-python's per-call option
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
    ) -> Video:
        return (await self._poll(video_id, self._call(timeout, extra_headers, extra_query)))[0]

    async def wait(
        self,
        video_id: str,
        *,
        timeout: float = 1800.0,  # noqa: ASYNC109 - the sync twin's and openai-python's signature
        poll_interval: float = 2.0,
        on_progress: ProgressCallback | None = None,
    ) -> Video:
        deadline = time.monotonic() + timeout
        call = self._call()
        progress = Progress(on_progress, timeout)
        if self._setup.gateway is not None:
            followed = await self._follow_events(video_id, call, deadline, progress)
            if followed is not None:
                return followed
        while True:
            video, status = await translated_async(
                partial(self._poll, video_id, call, deadline),
                APIConnectionError,
                lambda error: _cut(error, deadline, progress),
            )
            video_id = video.id
            progress.see(video)
            if finished(video):
                return video
            if time.monotonic() >= deadline:
                raise progress.timed_out()
            await anyio.sleep(_wait_seconds(status, poll_interval))

    async def _follow_events(
        self, video_id: str, call: CallOptions, deadline: float, progress: Progress
    ) -> Video | None:
        """The async twin of `Videos._follow_events`: the deadline cancels the stream."""
        events = EventWait(self._gateway, progress)
        pause = 0.0
        while not events.done:
            await anyio.sleep(max(min(pause, deadline - time.monotonic()), 0.0))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise progress.timed_out()
            broke, pause = False, 0.0
            with anyio.move_on_after(remaining) as waited:
                try:
                    async with self._engine.stream_chunks(
                        events.request(video_id, call),
                        GATEWAY,
                        first_byte=min(FIRST_BYTE, remaining),
                        idle=min(STREAM_IDLE, remaining),
                    ) as (status, chunks):
                        if events.opened(status):
                            async for chunk in chunks:
                                if events.chunk(chunk):
                                    break
                            else:
                                pause = events.ended()
                except APIConnectionError:
                    broke = True
            if waited.cancelled_caught:
                raise progress.timed_out()
            if broke:
                events.broke()
        return events.final

    async def poll(
        self,
        video_id: str,
        *,
        poll_interval_ms: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Video:
        """openai-python's name for `wait` (the interval in milliseconds, as there; 2 s when
        not given): until the video is completed or failed, which is returned, not raised."""
        return await self.wait(
            video_id, poll_interval=_interval(poll_interval_ms), on_progress=on_progress
        )

    async def create_and_poll(
        self,
        *,
        model: str,
        prompt: str | None = None,
        seconds: int | str | None = None,
        size: str | None = None,
        input_reference: FileInput | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        seed: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,  # noqa: ASYNC109 - openai-python's per-call option
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
        poll_interval_ms: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Video:
        """`create`, then `poll` until the video is completed or failed, as openai-python's
        `create_and_poll`; `timeout` is the create call's, as there."""
        video = await self.create(
            model=model,
            prompt=prompt,
            seconds=seconds,
            size=size,
            input_reference=input_reference,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            seed=seed,
            idempotency_key=idempotency_key,
            timeout=timeout,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
        )
        return await self.poll(video.id, poll_interval_ms=poll_interval_ms, on_progress=on_progress)

    async def create_and_wait(self, **kwargs: Any) -> Video:
        on_progress = kwargs.pop("on_progress", None)
        video = await self.create(**kwargs)
        return await self.wait(video.id, on_progress=on_progress)

    async def download_content(
        self,
        video_id: str,
        *,
        variant: Variant = "video",
        timeout: TimeoutOption = None,  # noqa: ASYNC109 - openai-python's per-call option
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
    ) -> BinaryContent:
        call = self._call(timeout, extra_headers, extra_query)
        if self._setup.gateway is not None:
            return await self._through_gateway(
                lambda gateway: gateway.video_content(video_id, variant, call), call
            )
        video, status = await self._poll(video_id, call)
        chosen = _pick(video, status, variant)
        core = self._core
        route = core.route_of(VideoHandle.decode(video.id))
        assert chosen.fetch is not None
        reply = await self._engine.send(chosen.fetch, route.provider, self._deadline(route, call))
        core.adapter(route).check(reply)
        return BinaryContent(reply.content, reply.header("content-type") or chosen.content_type)

    def list(
        self,
        *,
        limit: int = 20,
        after: str | None = None,
        order: Literal["asc", "desc"] = "desc",
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
    ) -> AsyncVideoPaginator:
        """`await` it for one page of videos, newest first; `async for` over it for every
        video (further pages are fetched as needed). In-process: the videos this client made."""
        call = self._call(timeout, extra_headers, extra_query)

        async def after_(cursor: str) -> AsyncVideoPage:
            return await self.list(
                limit=limit,
                after=cursor,
                order=order,
                timeout=timeout,
                extra_headers=extra_headers,
                extra_query=extra_query,
            )

        async def first_page() -> AsyncVideoPage:
            if self._setup.gateway is not None:
                page = await self._through_gateway(
                    lambda gateway: gateway.list_videos(
                        call, limit=limit, after=after, order=order
                    ),
                    call,
                )
                return AsyncVideoPage.of(page, after_)
            ids, has_more = _local_page(self._memory, limit, after, order)
            videos = [(await self._poll(i, call))[0] for i in ids]
            return AsyncVideoPage.of(_as_list(videos, has_more), after_)

        return AsyncVideoPaginator(first_page)

    async def delete(
        self,
        video_id: str,
        *,
        timeout: TimeoutOption = None,  # noqa: ASYNC109 - openai-python's per-call option
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
    ) -> VideoDeleted:
        call = self._call(timeout, extra_headers, extra_query)
        if self._setup.gateway is not None:
            return await self._through_gateway(
                lambda gateway: gateway.delete_video(video_id, call), call
            )
        core = self._core
        resolved = self._memory.resolve(video_id)
        handle = VideoHandle.decode(resolved)
        route = core.route_of(handle)
        await self._engine.drive(
            core.adapter(route).cancel_video(route, handle.task_id),
            route.provider,
            self._deadline(route, call),
        )
        self._memory.forget(resolved)
        return VideoDeleted(id=video_id)
