"""In-process mode: everything between the public call and the engine, minus the I/O.

It resolves the model in the catalog, refuses what the model cannot do, picks eligible routes that
have keys, builds each attempt's protocol and turns results into OpenAI-shaped objects.
"""

from __future__ import annotations

import dataclasses
import time
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._engine import Outcome
from ._exceptions import ConfigurationError, ModelNotFoundError, RouteRefusedError
from ._excerpt import excerpt
from ._frozen import quick_init
from ._jobs import VideoHandle
from ._params import ImageParams, Shape, VideoParams
from ._payload import Payload, input_sizes
from ._random_hex import random_hex
from ._suggest import did_you_mean
from .catalog import (
    Catalog,
    ModelSpec,
    Route,
    check_image,
    check_video,
    eligible_routes,
    video_size_label,
)
from .providers import (
    ADAPTERS,
    Adapter,
    Batch,
    Connection,
    ImageCall,
    ImageResult,
    Protocol,
    SourceVideo,
    TaskStatus,
    UpstreamResponse,
    VideoCall,
    source_limit,
    source_video,
)
from .types import Attempt, ImagesResponse, ReapiInfo, Video, VideoError

__all__ = [
    "GATEWAY_HINTS",
    "SDK_HINTS",
    "CatalogHints",
    "LocalCore",
    "PreparedImage",
    "PreparedVideo",
]


@quick_init
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
    #: An enhancement model's source, vetted once for every route (`LocalCore.vet_video`).
    source: SourceVideo | None = None


@dataclass(frozen=True, slots=True)
class CatalogHints:
    """Where the caller of this core can look models up, for error messages."""

    #: What lists the model ids.
    models: str
    #: What shows each route's limits ("" when the caller has nothing that does).
    capabilities: str


SDK_HINTS = CatalogHints("`reapi models`", "see `reapi models` for what each route accepts")
GATEWAY_HINTS = CatalogHints("GET /v1/models", "")


def _new_key() -> str:
    # 32 random hex digits, as `uuid4().hex` gave (a quarter of its CPU: no UUID object), from
    # a pool of the OS's random bytes (no system call each).
    return f"reapi-{random_hex(32)}"


class LocalCore:
    def __init__(
        self,
        catalog: Catalog,
        connections: Mapping[str, Connection],
        *,
        hints: CatalogHints = SDK_HINTS,
    ) -> None:
        self.catalog = catalog
        self.connections = dict(connections)
        self.hints = hints
        self._adapters: dict[str, Adapter] = {}

    # -- lookups -----------------------------------------------------------------------------
    def model(self, model_id: str) -> ModelSpec:
        spec = self.catalog.models.get(model_id)
        if spec is None:
            raise ModelNotFoundError(
                f"model '{excerpt(model_id)}' is not in the catalog"
                f"{did_you_mean(model_id, self.catalog.models)}; {self.hints.models} lists them",
                param="model",
            )
        return spec

    def host_of(self, route: Route) -> str | None:
        """Where a route's provider lives (host and port only), for error messages."""
        connection = self.connections.get(route.provider)
        if connection is None:
            return None
        parts = urlsplit(connection.base_url)
        try:
            port = parts.port
        except ValueError:  # a malformed port: the host alone still helps
            port = None
        host = parts.hostname or ""
        return f"{host}:{port}" if port else host or None

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
        inputs = payload.get("images") or ()
        images = len(inputs)
        sizes, mask_size = input_sizes(payload)
        shape = check_image(
            spec,
            params,
            input_images=images,
            has_mask="mask" in payload,
            input_sizes=sizes,
            mask_size=mask_size,
        )
        routes = eligible_routes(
            spec, shape, n=params.n, input_images=images, hint=self.hints.capabilities
        )
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
        if len(result.images) > prepared.params.n:
            # Never more than asked: the request is priced and held for `n` images, so any
            # more an upstream sent (a model that makes a set, a broken or hostile answer)
            # would be handed out, downloaded and stored for nothing.
            result = dataclasses.replace(result, images=result.images[: prepared.params.n])
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
        return ImagesResponse.model_validate(self.images_answer(prepared, outcome))

    def images_answer(
        self, prepared: PreparedImage, outcome: Outcome[ImageResult]
    ) -> dict[str, Any]:
        """`images_response` as the JSON object it dumps to (fields that are None left out),
        built without pydantic: a server answers it as it is. An image the provider sent as
        base64 keeps the provider's text. Raises pydantic's `ValidationError`, as
        `images_response` does, when the provider's answer gave a field of the wrong type."""
        result = outcome.result
        data: list[dict[str, str]] = []
        expiries = []
        for image in result.images:
            if image.data is not None:
                encoded = image.b64 if image.b64 is not None else b64encode(image.data).decode()
                data.append({"b64_json": encoded})
            else:
                data.append({"url": image.url} if image.url is not None else {})
                if image.url_expires_at:
                    expiries.append(image.url_expires_at)
        params = prepared.params
        answer: dict[str, Any] = {"created": int(time.time()), "data": data}
        plain = True
        for name, value in (
            ("background", result.background or params.background),
            ("output_format", result.output_format or params.output_format),
            ("size", result.size or prepared.shape.size),
            ("quality", result.quality or params.quality),
        ):
            if value is not None:
                answer[name] = value
                plain = plain and isinstance(value, str)
        if result.usage:
            answer["usage"] = dict(result.usage)
        answer["reapi"] = _info_object(outcome, min(expiries) if expiries else None)
        if not plain:  # what the model refuses, refused the same way
            ImagesResponse.model_validate(answer)
        return answer

    # -- videos ------------------------------------------------------------------------------
    def prepare_video(self, params: VideoParams, payload: Payload) -> PreparedVideo:
        spec = self.model(params.model)
        shape = check_video(
            spec,
            params,
            has_reference="input_reference" in payload,
            has_prompt="prompt" in payload,
        )
        routes = eligible_routes(spec, shape, hint=self.hints.capabilities)
        return PreparedVideo(
            spec, params, shape, payload, self._with_keys(spec, routes), _new_key()
        )

    def vet_video(self, prepared: PreparedVideo) -> Protocol[PreparedVideo]:
        """Before the routes are tried: an enhancement model's source taken from bytes reapi
        holds (a caller's URL fetched by the engine's safe fetcher) and held to the length the
        price covers, once for every route. A refusal is the request's, whatever the route."""
        if not prepared.spec.capabilities.input_video or prepared.source is not None:
            return prepared
        limit = prepared.spec.capabilities.max_source_seconds
        source = yield from source_video(prepared.payload, limit)
        return dataclasses.replace(prepared, source=source)

    def video_attempt(self, prepared: PreparedVideo, route: Route) -> Protocol[str]:
        if prepared.spec.capabilities.input_video:
            # A host that did not vet first (`vet_video`) gets the same check here.
            prepared = yield from self.vet_video(prepared)
            _check_route_length(prepared, route)
        call = VideoCall(
            route,
            prepared.params,
            prepared.shape,
            prepared.payload,
            prepared.idempotency_key,
            source=prepared.source,
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
            size=video_size_label(prepared.spec, prepared.shape),
        )

    def poll_video(self, route: Route, task_id: str) -> Protocol[TaskStatus]:
        """The task's status, its poll hint replaced by the provider's configured
        `poll_interval` when the catalog sets one."""
        status: TaskStatus = yield from self.adapter(route).poll_video(route, task_id)
        interval = self.connections[route.provider].poll_interval
        if interval is None or status.state in ("completed", "failed"):
            return status
        return dataclasses.replace(status, poll_after=interval)

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


def _info_object(outcome: Outcome[object], url_expires_at: int | None) -> dict[str, Any]:
    """`ReapiInfo` as the JSON object it dumps to (fields that are None left out)."""
    log = []
    for a in outcome.attempts:
        attempt: dict[str, Any] = {"provider": a.provider, "route": a.route, "code": a.code}
        if a.status is not None:
            attempt["status"] = a.status
        attempt["elapsed_ms"] = float(a.elapsed_ms)
        log.append(attempt)
    info: dict[str, Any] = {
        "provider": outcome.route.provider,
        "route": outcome.route.key,
        "attempts": len(log),
        "attempt_log": log,
    }
    if url_expires_at is not None:
        info["url_expires_at"] = url_expires_at
    return info


def _check_route_length(prepared: PreparedVideo, route: Route) -> None:
    """A route narrower than its model (`limits` or option `max_source_seconds`) leaves a longer
    source to the next route: refused before anything is sent, like any option it lacks."""
    limit = source_limit(prepared.spec, route)
    source = prepared.source
    if source is not None and limit is not None and source.info.duration > limit:
        raise RouteRefusedError(
            f"input_reference is longer than {route.provider} takes for this model ({limit:g} s)",
            param="input_reference",
            code="video_too_long",
        )
