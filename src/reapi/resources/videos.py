"""`client.videos`: create → retrieve/wait → download_content, OpenAI-style.

Failover happens at submit. A task that later ends failed upstream (for any reason but a content
block) is resubmitted once to the next route while this client is alive.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio
from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from .._engine import AsyncEngine, SyncEngine
from .._exceptions import APITimeoutError, InvalidRequestError, JobFailedError, ReapiError
from .._jobs import VideoHandle
from .._local import attempts_of
from ..providers import TaskStatus
from ..types import BinaryContent, Video, VideoDeleted, VideoList
from ._inputs import FileInput, video_request
from ._jobs_memory import JobMemory, RememberedJob

if TYPE_CHECKING:
    from .._client import _Setup

__all__ = ["AsyncVideos", "Videos"]

Variant = Literal["video", "thumbnail", "spritesheet"]
ProgressCallback = Callable[[Video], None]
_GATEWAY = "reapi-gateway"
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


def _finished(video: Video) -> bool:
    return video.status in ("completed", "failed")


def _not_ready(video_id: str) -> InvalidRequestError:
    return InvalidRequestError(
        "this video is not completed yet; wait for it first",
        param="video_id",
        code="video_not_ready",
    )


def _take_if_failed(memory: JobMemory, video_id: str, status: TaskStatus) -> RememberedJob | None:
    """A final state ends what the client keeps of the job's body: handed over for its one
    resubmission when the task failed (other than by a content block), else dropped."""
    if status.state not in ("completed", "failed"):
        return None
    if status.state == "failed" and not status.content_blocked:
        return memory.take(video_id)
    memory.finished(video_id)
    return None


def _pick(status: TaskStatus, variant: Variant) -> Any:
    if variant == "video":
        return status.outputs[0] if status.outputs else None
    return status.thumbnail


class Videos:
    def __init__(self, setup: _Setup, engine: SyncEngine) -> None:
        self._setup = setup
        self._engine = engine
        self._memory = JobMemory()

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
    ) -> Video:
        options = {
            k: v
            for k, v in {
                "size": size,
                "aspect_ratio": aspect_ratio,
                "resolution": resolution,
                "seed": seed,
            }.items()
            if v is not None
        }
        params, payload = video_request(
            prompt=prompt, model=model, seconds=seconds, input_reference=input_reference, **options
        )
        setup, engine = self._setup, self._engine
        if setup.gateway is not None:
            return engine.drive(
                setup.gateway.create_video(params, payload, idempotency_key=idempotency_key),
                _GATEWAY,
                setup.router.config.first_byte_timeout,
            )
        core = setup.core
        assert core is not None
        prepared = core.prepare_video(params, payload)
        return self._submit(RememberedJob(prepared), prepared.routes, None)

    def _submit(self, job: RememberedJob, routes: Any, previous: str | None) -> Video:
        core, engine, router = self._setup.core, self._engine, self._setup.router
        assert core is not None
        outcome = engine.run(
            routes,
            lambda route: engine.drive(
                core.video_attempt(job.prepared, route),
                route.provider,
                router.first_byte_timeout(route),
            ),
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

    def _poll(self, video_id: str) -> tuple[Video, TaskStatus | None]:
        setup, engine = self._setup, self._engine
        if setup.gateway is not None:
            for attempt in Retrying(**_POLL_RETRY):
                with attempt:
                    video = engine.drive(
                        setup.gateway.retrieve_video(video_id),
                        _GATEWAY,
                        setup.router.config.first_byte_timeout,
                    )
            return video, None
        core = setup.core
        assert core is not None
        video_id = self._memory.resolve(video_id)
        handle = VideoHandle.decode(video_id)
        route = core.route_of(handle)
        for attempt in Retrying(**_POLL_RETRY):
            with attempt:
                status = engine.drive(
                    core.adapter(route).poll_video(route, handle.task_id),
                    route.provider,
                    setup.router.first_byte_timeout(route),
                )
        job = _take_if_failed(self._memory, video_id, status)
        if job is not None:
            setup.router.record_failure(
                route, JobFailedError("task failed upstream", provider=route.provider)
            )
            remaining = job.next_routes()
            if remaining:
                job.resubmitted = True
                return self._submit(job, remaining, video_id), None
        origin = self._memory.origin(video_id)
        return core.video_object(handle, status, resubmitted_from=origin), status

    def retrieve(self, video_id: str) -> Video:
        return self._poll(video_id)[0]

    def wait(
        self,
        video_id: str,
        *,
        timeout: float = 1800.0,
        poll_interval: float = 2.0,
        on_progress: ProgressCallback | None = None,
    ) -> Video:
        """Poll until the video is completed or failed; `on_progress` sees every change."""
        deadline = time.monotonic() + timeout
        last: tuple[str, int] | None = None
        while True:
            video, status = self._poll(video_id)
            video_id = video.id
            if on_progress is not None and (video.status, video.progress) != last:
                on_progress(video)
            last = (video.status, video.progress)
            if _finished(video):
                return video
            if time.monotonic() >= deadline:
                raise APITimeoutError(
                    f"video still {video.status} after {timeout:g}s", code="wait_timeout"
                )
            hint = status.poll_after if status and status.poll_after is not None else None
            time.sleep(min(poll_interval if hint is None else hint, max(poll_interval, 0.0)))

    def create_and_wait(self, **kwargs: Any) -> Video:
        on_progress = kwargs.pop("on_progress", None)
        video = self.create(**kwargs)
        return self.wait(video.id, on_progress=on_progress)

    def download_content(self, video_id: str, *, variant: Variant = "video") -> BinaryContent:
        setup, engine = self._setup, self._engine
        if setup.gateway is not None:
            return engine.drive(
                setup.gateway.video_content(video_id, variant),
                _GATEWAY,
                setup.router.config.first_byte_timeout,
            )
        video, status = self._poll(video_id)
        chosen = _pick(status, variant) if status and status.state == "completed" else None
        if chosen is None or chosen.fetch is None:
            raise _not_ready(video.id)
        core = setup.core
        assert core is not None
        route = core.route_of(VideoHandle.decode(video.id))
        reply = engine.send(chosen.fetch, route.provider, setup.router.first_byte_timeout(route))
        core.adapter(route).check(reply)
        return BinaryContent(reply.content, reply.header("content-type") or chosen.content_type)

    def list(
        self, *, limit: int = 20, after: str | None = None, order: Literal["asc", "desc"] = "desc"
    ) -> VideoList:
        setup = self._setup
        if setup.gateway is not None:
            return self._engine.drive(
                setup.gateway.list_videos(limit=limit, after=after, order=order),
                _GATEWAY,
                setup.router.config.first_byte_timeout,
            )
        ids = (
            list(reversed(self._memory.created)) if order == "desc" else list(self._memory.created)
        )
        if after is not None and after in ids:
            ids = ids[ids.index(after) + 1 :]
        page = [self.retrieve(i) for i in ids[:limit]]
        return VideoList(
            data=page,
            first_id=page[0].id if page else None,
            last_id=page[-1].id if page else None,
            has_more=len(ids) > limit,
        )

    def delete(self, video_id: str) -> VideoDeleted:
        setup = self._setup
        if setup.gateway is not None:
            return self._engine.drive(
                setup.gateway.delete_video(video_id),
                _GATEWAY,
                setup.router.config.first_byte_timeout,
            )
        core = setup.core
        assert core is not None
        resolved = self._memory.resolve(video_id)
        handle = VideoHandle.decode(resolved)
        route = core.route_of(handle)
        self._engine.drive(
            core.adapter(route).cancel_video(route, handle.task_id),
            route.provider,
            setup.router.first_byte_timeout(route),
        )
        self._memory.forget(resolved)
        return VideoDeleted(id=video_id)


class AsyncVideos:
    def __init__(self, setup: _Setup, engine: AsyncEngine) -> None:
        self._setup = setup
        self._engine = engine
        self._memory = JobMemory()

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
    ) -> Video:
        options = {
            k: v
            for k, v in {
                "size": size,
                "aspect_ratio": aspect_ratio,
                "resolution": resolution,
                "seed": seed,
            }.items()
            if v is not None
        }
        params, payload = video_request(
            prompt=prompt, model=model, seconds=seconds, input_reference=input_reference, **options
        )
        setup, engine = self._setup, self._engine
        if setup.gateway is not None:
            return await engine.drive(
                setup.gateway.create_video(params, payload, idempotency_key=idempotency_key),
                _GATEWAY,
                setup.router.config.first_byte_timeout,
            )
        core = setup.core
        assert core is not None
        prepared = core.prepare_video(params, payload)
        return await self._submit(RememberedJob(prepared), prepared.routes, None)

    async def _submit(self, job: RememberedJob, routes: Any, previous: str | None) -> Video:
        core, engine, router = self._setup.core, self._engine, self._setup.router
        assert core is not None

        async def attempt(route: Any) -> str:
            return await engine.drive(
                core.video_attempt(job.prepared, route),
                route.provider,
                router.first_byte_timeout(route),
            )

        outcome = await engine.run(routes, attempt)
        job.tried.add(outcome.route.key)
        handle = core.handle_for(job.prepared, outcome)
        video_id = handle.encode()
        self._memory.remember(video_id, job)
        if previous is not None:
            self._memory.forward(previous, video_id)
        return core.video_object(
            handle, None, attempts=attempts_of(outcome), resubmitted_from=previous
        )

    async def _retrying(self, call: Callable[[], Awaitable[_T]]) -> _T:
        async for attempt in AsyncRetrying(**_POLL_RETRY):
            with attempt:
                return await call()
        raise AssertionError("unreachable")

    async def _poll(self, video_id: str) -> tuple[Video, TaskStatus | None]:
        setup, engine = self._setup, self._engine
        if setup.gateway is not None:
            gateway = setup.gateway
            video = await self._retrying(
                lambda: engine.drive(
                    gateway.retrieve_video(video_id),
                    _GATEWAY,
                    setup.router.config.first_byte_timeout,
                )
            )
            return video, None
        core = setup.core
        assert core is not None
        video_id = self._memory.resolve(video_id)
        handle = VideoHandle.decode(video_id)
        route = core.route_of(handle)
        status = await self._retrying(
            lambda: engine.drive(
                core.adapter(route).poll_video(route, handle.task_id),
                route.provider,
                setup.router.first_byte_timeout(route),
            )
        )
        job = _take_if_failed(self._memory, video_id, status)
        if job is not None:
            setup.router.record_failure(
                route, JobFailedError("task failed upstream", provider=route.provider)
            )
            remaining = job.next_routes()
            if remaining:
                job.resubmitted = True
                return await self._submit(job, remaining, video_id), None
        origin = self._memory.origin(video_id)
        return core.video_object(handle, status, resubmitted_from=origin), status

    async def retrieve(self, video_id: str) -> Video:
        return (await self._poll(video_id))[0]

    async def wait(
        self,
        video_id: str,
        *,
        timeout: float = 1800.0,  # noqa: ASYNC109 - the sync twin's and openai-python's signature
        poll_interval: float = 2.0,
        on_progress: ProgressCallback | None = None,
    ) -> Video:
        deadline = time.monotonic() + timeout
        last: tuple[str, int] | None = None
        while True:
            video, status = await self._poll(video_id)
            video_id = video.id
            if on_progress is not None and (video.status, video.progress) != last:
                on_progress(video)
            last = (video.status, video.progress)
            if _finished(video):
                return video
            if time.monotonic() >= deadline:
                raise APITimeoutError(
                    f"video still {video.status} after {timeout:g}s", code="wait_timeout"
                )
            hint = status.poll_after if status and status.poll_after is not None else None
            await anyio.sleep(min(poll_interval if hint is None else hint, max(poll_interval, 0.0)))

    async def create_and_wait(self, **kwargs: Any) -> Video:
        on_progress = kwargs.pop("on_progress", None)
        video = await self.create(**kwargs)
        return await self.wait(video.id, on_progress=on_progress)

    async def download_content(self, video_id: str, *, variant: Variant = "video") -> BinaryContent:
        setup, engine = self._setup, self._engine
        if setup.gateway is not None:
            return await engine.drive(
                setup.gateway.video_content(video_id, variant),
                _GATEWAY,
                setup.router.config.first_byte_timeout,
            )
        video, status = await self._poll(video_id)
        chosen = _pick(status, variant) if status and status.state == "completed" else None
        if chosen is None or chosen.fetch is None:
            raise _not_ready(video.id)
        core = setup.core
        assert core is not None
        route = core.route_of(VideoHandle.decode(video.id))
        reply = await engine.send(
            chosen.fetch, route.provider, setup.router.first_byte_timeout(route)
        )
        core.adapter(route).check(reply)
        return BinaryContent(reply.content, reply.header("content-type") or chosen.content_type)

    async def list(
        self, *, limit: int = 20, after: str | None = None, order: Literal["asc", "desc"] = "desc"
    ) -> VideoList:
        setup = self._setup
        if setup.gateway is not None:
            return await self._engine.drive(
                setup.gateway.list_videos(limit=limit, after=after, order=order),
                _GATEWAY,
                setup.router.config.first_byte_timeout,
            )
        ids = (
            list(reversed(self._memory.created)) if order == "desc" else list(self._memory.created)
        )
        if after is not None and after in ids:
            ids = ids[ids.index(after) + 1 :]
        page = [await self.retrieve(i) for i in ids[:limit]]
        return VideoList(
            data=page,
            first_id=page[0].id if page else None,
            last_id=page[-1].id if page else None,
            has_more=len(ids) > limit,
        )

    async def delete(self, video_id: str) -> VideoDeleted:
        setup = self._setup
        if setup.gateway is not None:
            return await self._engine.drive(
                setup.gateway.delete_video(video_id),
                _GATEWAY,
                setup.router.config.first_byte_timeout,
            )
        core = setup.core
        assert core is not None
        resolved = self._memory.resolve(video_id)
        handle = VideoHandle.decode(resolved)
        route = core.route_of(handle)
        await self._engine.drive(
            core.adapter(route).cancel_video(route, handle.task_id),
            route.provider,
            setup.router.first_byte_timeout(route),
        )
        self._memory.forget(resolved)
        return VideoDeleted(id=video_id)
