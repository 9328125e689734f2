"""In-process mode: everything between the public call and the engine, minus the I/O.

It resolves the model in the catalog, refuses what the model cannot do, picks eligible routes that
have keys, builds each attempt's protocol and turns results into OpenAI-shaped objects.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from ._engine import Outcome
from ._exceptions import ConfigurationError, ModelNotFoundError
from ._excerpt import excerpt
from ._jobs import VideoHandle
from ._params import ImageParams, Shape, VideoParams
from ._payload import Payload
from .catalog import Catalog, ModelSpec, Route, check_image, check_video, eligible_routes
from .providers import (
    ADAPTERS,
    Adapter,
    Batch,
    Connection,
    ImageCall,
    ImageResult,
    Protocol,
    TaskStatus,
    UpstreamResponse,
    VideoCall,
)
from .types import Attempt, Image, ImagesResponse, ReapiInfo, Video, VideoError

__all__ = ["LocalCore", "PreparedImage", "PreparedVideo"]


@dataclass(frozen=True, slots=True)
class PreparedImage:
    spec: ModelSpec
    params: ImageParams
    shape: Shape
    payload: Payload
    routes: tuple[Route, ...]
    edit: bool
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class PreparedVideo:
    spec: ModelSpec
    params: VideoParams
    shape: Shape
    payload: Payload
    routes: tuple[Route, ...]
    idempotency_key: str


def _new_key() -> str:
    return f"reapi-{uuid.uuid4().hex}"


class LocalCore:
    def __init__(self, catalog: Catalog, connections: Mapping[str, Connection]) -> None:
        self.catalog = catalog
        self.connections = dict(connections)
        self._adapters: dict[str, Adapter] = {}

    # -- lookups -----------------------------------------------------------------------------
    def model(self, model_id: str) -> ModelSpec:
        spec = self.catalog.models.get(model_id)
        if spec is None:
            raise ModelNotFoundError(
                f"model '{excerpt(model_id)}' is not in the catalog; `reapi models` lists them",
                param="model",
            )
        return spec

    def adapter(self, route: Route) -> Adapter:
        adapter = self._adapters.get(route.provider)
        if adapter is None:
            provider = self.catalog.providers[route.provider]
            adapter_cls = ADAPTERS.get(provider.adapter)
            if adapter_cls is None:
                raise ConfigurationError(
                    f"provider {route.provider!r} names unknown adapter {provider.adapter!r}"
                )
            adapter = adapter_cls(self.connections[route.provider])
            self._adapters[route.provider] = adapter
        return adapter

    def _with_keys(self, spec: ModelSpec, routes: tuple[Route, ...]) -> tuple[Route, ...]:
        usable = tuple(r for r in routes if r.provider in self.connections)
        if not usable:
            envs = sorted(
                {env for r in routes for env in self.catalog.providers[r.provider].api_key_env}
            )
            raise ConfigurationError(
                f"no provider key for {spec.id}: set one of {', '.join(envs) or 'its keys'}",
                code="no_provider_key",
            )
        return usable

    # -- images ------------------------------------------------------------------------------
    def prepare_image(self, params: ImageParams, payload: Payload, *, edit: bool) -> PreparedImage:
        spec = self.model(params.model)
        images = len(payload.get("images") or ())
        shape = check_image(spec, params, input_images=images, has_mask="mask" in payload)
        routes = eligible_routes(spec, shape, n=params.n, input_images=images)
        return PreparedImage(
            spec, params, shape, payload, self._with_keys(spec, routes), edit, _new_key()
        )

    def image_attempt(self, prepared: PreparedImage, route: Route) -> Protocol[ImageResult]:
        adapter = self.adapter(route)
        call = ImageCall(
            route,
            prepared.params,
            prepared.shape,
            prepared.payload,
            prepared.idempotency_key,
            prepared.edit,
        )
        result = yield from adapter.generate_image(call)
        if prepared.params.response_format == "url":
            return result
        # Fetch URL results now: upstream URLs expire (1-24 h) and the caller asked for bytes.
        pending = [i for i, f in enumerate(result.images) if f.data is None and f.fetch]
        if not pending:
            return result
        replies: tuple[UpstreamResponse, ...] = yield Batch(
            tuple(result.images[i].fetch for i in pending)  # type: ignore[misc]
        )
        images = list(result.images)
        for index, reply in zip(pending, replies, strict=True):
            adapter.check(reply)
            images[index] = type(images[index])(images[index].content_type, data=reply.content)
        return ImageResult(
            tuple(images),
            result.usage,
            result.output_format,
            result.size,
            result.quality,
            result.background,
        )

    def images_response(
        self, prepared: PreparedImage, outcome: Outcome[ImageResult]
    ) -> ImagesResponse:
        result = outcome.result
        data = []
        expiries = []
        for image in result.images:
            if image.data is not None:
                data.append(Image(b64_json=base64.b64encode(image.data).decode()))
            else:
                data.append(Image(url=image.url))
                if image.url_expires_at:
                    expiries.append(image.url_expires_at)
        return ImagesResponse(
            created=int(time.time()),
            data=data,
            background=result.background or prepared.params.background,
            output_format=result.output_format or prepared.params.output_format,
            size=result.size or prepared.shape.size,
            quality=result.quality or prepared.params.quality,
            usage=dict(result.usage) if result.usage else None,
            reapi=_info(outcome, min(expiries) if expiries else None),
        )

    # -- videos ------------------------------------------------------------------------------
    def prepare_video(self, params: VideoParams, payload: Payload) -> PreparedVideo:
        spec = self.model(params.model)
        shape = check_video(
            spec,
            params,
            has_reference="input_reference" in payload,
            has_prompt="prompt" in payload,
        )
        routes = eligible_routes(spec, shape)
        return PreparedVideo(
            spec, params, shape, payload, self._with_keys(spec, routes), _new_key()
        )

    def video_attempt(self, prepared: PreparedVideo, route: Route) -> Protocol[str]:
        call = VideoCall(
            route, prepared.params, prepared.shape, prepared.payload, prepared.idempotency_key
        )
        task_id: str = yield from self.adapter(route).submit_video(call)
        return task_id

    def handle_for(self, prepared: PreparedVideo, outcome: Outcome[str]) -> VideoHandle:
        return VideoHandle(
            model=prepared.spec.id,
            provider=outcome.route.provider,
            upstream_model=outcome.route.upstream_model,
            task_id=outcome.result,
            created_at=int(time.time()),
            seconds=prepared.shape.seconds,
            size=prepared.shape.size or _size_label(prepared.shape),
        )

    def route_of(self, handle: VideoHandle) -> Route:
        if handle.provider not in self.connections:
            raise ConfigurationError(
                f"this video was made by '{excerpt(handle.provider)}', which has no key "
                "configured here",
                code="no_provider_key",
            )
        spec = self.catalog.models.get(handle.model)
        for route in spec.routes if spec else ():
            if route.provider == handle.provider and route.upstream_model == handle.upstream_model:
                return route
        return Route(provider=handle.provider, upstream_model=handle.upstream_model)

    def video_object(
        self,
        handle: VideoHandle,
        status: TaskStatus | None,
        *,
        attempts: tuple[Attempt, ...] = (),
        resubmitted_from: str | None = None,
    ) -> Video:
        state = status.state if status else "queued"
        expires = status.outputs[0].url_expires_at if status and status.outputs else None
        return Video(
            id=handle.encode(),
            model=handle.model,
            status=state,
            progress=status.progress if status else 0,
            created_at=handle.created_at,
            completed_at=int(time.time()) if state == "completed" else None,
            expires_at=expires,
            seconds=str(status.seconds if status and status.seconds else handle.seconds or "")
            or None,
            size=(status.size if status and status.size else handle.size),
            error=VideoError(
                code=status.error_code or "generation_failed", message=_failure_text(status)
            )
            if status and state == "failed"
            else None,
            reapi=ReapiInfo(
                provider=handle.provider,
                route=f"{handle.provider}/{handle.upstream_model}",
                attempts=len(attempts) or 1,
                attempt_log=list(attempts),
                url_expires_at=expires,
                resubmitted_from=resubmitted_from,
            ),
        )


def _size_label(shape: Shape) -> str | None:
    if shape.aspect_ratio and shape.resolution:
        return f"{shape.aspect_ratio}@{shape.resolution}"
    return None


def _failure_text(status: TaskStatus) -> str:
    if status.content_blocked:
        return "the provider blocked this video under its content policy"
    return "the provider could not generate this video"


def attempts_of(outcome: Outcome[object]) -> tuple[Attempt, ...]:
    return tuple(
        Attempt(
            provider=a.provider,
            route=a.route,
            code=a.code,
            status=a.status,
            elapsed_ms=a.elapsed_ms,
        )
        for a in outcome.attempts
    )


def _info(outcome: Outcome[object], url_expires_at: int | None) -> ReapiInfo:
    log = attempts_of(outcome)
    return ReapiInfo(
        provider=outcome.route.provider,
        route=outcome.route.key,
        attempts=len(log),
        attempt_log=list(log),
        url_expires_at=url_expires_at,
    )
