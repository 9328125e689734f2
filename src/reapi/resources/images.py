"""`client.images`: generate and edit, OpenAI-style. Sync and async twins differ only in I/O."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal, overload

from .._options import CallOptions, Headers, Query, TimeoutOption
from .._params import ImageParams
from .._raw_clients import AsyncImagesWithRawResponse, ImagesWithRawResponse
from ..types import ImagesResponse, ImageStreamEvent
from ._base import AsyncResource, SyncResource
from ._image_stream import completed_events, listed, open_async, open_sync, streamed
from ._inputs import FileInput, image_request

__all__ = ["AsyncImages", "Images"]


def _options(**kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


class Images(SyncResource):
    @property
    def with_raw_response(self) -> ImagesWithRawResponse:
        """These methods, each returning a `RawResponse` (openai-python's
        `client.images.with_raw_response`). Gateway mode only."""
        self._setup.raw_responses()
        return ImagesWithRawResponse(self)

    @overload
    def generate(
        self,
        *,
        prompt: str,
        model: str,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        output_format: str | None = None,
        output_compression: int | None = None,
        moderation: str | None = None,
        response_format: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        seed: int | None = None,
        user: str | None = None,
        stream: Literal[False] | None = None,
        partial_images: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> ImagesResponse: ...

    @overload
    def generate(
        self,
        *,
        prompt: str,
        model: str,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        output_format: str | None = None,
        output_compression: int | None = None,
        moderation: str | None = None,
        response_format: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        seed: int | None = None,
        user: str | None = None,
        stream: Literal[True],
        partial_images: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> Iterator[ImageStreamEvent]: ...

    @overload
    def generate(
        self,
        *,
        prompt: str,
        model: str,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        output_format: str | None = None,
        output_compression: int | None = None,
        moderation: str | None = None,
        response_format: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        seed: int | None = None,
        user: str | None = None,
        stream: bool,
        partial_images: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> ImagesResponse | Iterator[ImageStreamEvent]: ...

    def generate(
        self,
        *,
        prompt: str,
        model: str,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        output_format: str | None = None,
        output_compression: int | None = None,
        moderation: str | None = None,
        response_format: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        seed: int | None = None,
        user: str | None = None,
        stream: bool | None = None,
        partial_images: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> ImagesResponse | Iterator[ImageStreamEvent]:
        """Generate images. `aspect_ratio`/`resolution` are reapi extensions to OpenAI's shape.
        `stream=True`: an iterator of `ImageStreamEvent`s instead (`partial_images`, 0-3)."""
        params, payload = image_request(
            prompt=prompt,
            model=model,
            user=user,
            **_options(
                n=n,
                size=size,
                quality=quality,
                background=background,
                output_format=output_format,
                output_compression=output_compression,
                moderation=moderation,
                response_format=response_format,
                aspect_ratio=aspect_ratio,
                resolution=resolution,
                seed=seed,
            ),
        )
        call = self._call(timeout, extra_headers, extra_query, extra_body)
        if stream:
            return self._stream(
                streamed(params, partial_images, idempotency_key), payload, call, edit=False
            )
        return self._run(params, payload, call, edit=False, idempotency_key=idempotency_key)

    @overload
    def edit(
        self,
        *,
        image: FileInput | list[FileInput],
        prompt: str,
        model: str,
        mask: FileInput | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        output_format: str | None = None,
        output_compression: int | None = None,
        input_fidelity: str | None = None,
        response_format: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        user: str | None = None,
        stream: Literal[False] | None = None,
        partial_images: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> ImagesResponse: ...

    @overload
    def edit(
        self,
        *,
        image: FileInput | list[FileInput],
        prompt: str,
        model: str,
        mask: FileInput | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        output_format: str | None = None,
        output_compression: int | None = None,
        input_fidelity: str | None = None,
        response_format: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        user: str | None = None,
        stream: Literal[True],
        partial_images: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> Iterator[ImageStreamEvent]: ...

    @overload
    def edit(
        self,
        *,
        image: FileInput | list[FileInput],
        prompt: str,
        model: str,
        mask: FileInput | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        output_format: str | None = None,
        output_compression: int | None = None,
        input_fidelity: str | None = None,
        response_format: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        user: str | None = None,
        stream: bool,
        partial_images: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> ImagesResponse | Iterator[ImageStreamEvent]: ...

    def edit(
        self,
        *,
        image: FileInput | list[FileInput],
        prompt: str,
        model: str,
        mask: FileInput | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        output_format: str | None = None,
        output_compression: int | None = None,
        input_fidelity: str | None = None,
        response_format: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        user: str | None = None,
        stream: bool | None = None,
        partial_images: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> ImagesResponse | Iterator[ImageStreamEvent]:
        """Edit or compose from one or more input images (and an optional mask); `stream=True`
        as for `generate`."""
        images: list[FileInput] = image if isinstance(image, list) else [image]
        params, payload = image_request(
            prompt=prompt,
            model=model,
            images=images,
            mask=mask,
            user=user,
            **_options(
                n=n,
                size=size,
                quality=quality,
                background=background,
                output_format=output_format,
                output_compression=output_compression,
                input_fidelity=input_fidelity,
                response_format=response_format,
                aspect_ratio=aspect_ratio,
                resolution=resolution,
            ),
        )
        call = self._call(timeout, extra_headers, extra_query, extra_body)
        if stream:
            return self._stream(
                streamed(params, partial_images, idempotency_key), payload, call, edit=True
            )
        return self._run(params, payload, call, edit=True, idempotency_key=idempotency_key)

    def _run(
        self,
        params: Any,
        payload: Any,
        call: CallOptions,
        *,
        edit: bool,
        idempotency_key: str | None,
    ) -> ImagesResponse:
        setup, engine = self._setup, self._engine
        if setup.gateway is not None:
            key = call.idempotency_key(idempotency_key)
            return self._through_gateway(
                lambda gateway: gateway.images(
                    params, payload, call, edit=edit, idempotency_key=key
                ),
                call,
                retry=key is not None,
            )
        core = setup.core
        assert core is not None
        prepared = core.prepare_image(params, payload, edit=edit)
        outcome = engine.run(
            self._bounded(prepared.routes, call),
            lambda route: engine.drive(
                core.image_attempt(prepared, route), route.provider, self._deadline(route, call)
            ),
            host_of=core.host_of,
            hedge_for=prepared.spec.id,
        )
        return core.images_response(prepared, outcome)

    def _stream(
        self, params: ImageParams, payload: Any, call: CallOptions, *, edit: bool
    ) -> Iterator[ImageStreamEvent]:
        if self._setup.gateway is None:
            answer = self._run(params, payload, call, edit=edit, idempotency_key=None)
            return iter(completed_events(answer, edit=edit))
        deadline = self._gateway_deadline(call)
        return open_sync(
            self._engine, self._gateway, params, payload, call, edit=edit, deadline=deadline
        )


class AsyncImages(AsyncResource):
    @property
    def with_raw_response(self) -> AsyncImagesWithRawResponse:
        """These methods, each returning a `RawResponse` (openai-python's
        `client.images.with_raw_response`). Gateway mode only."""
        self._setup.raw_responses()
        return AsyncImagesWithRawResponse(self)

    @overload
    async def generate(
        self,
        *,
        prompt: str,
        model: str,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        output_format: str | None = None,
        output_compression: int | None = None,
        moderation: str | None = None,
        response_format: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        seed: int | None = None,
        user: str | None = None,
        stream: Literal[False] | None = None,
        partial_images: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,  # noqa: ASYNC109 - openai-python's per-call option
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> ImagesResponse: ...

    @overload
    async def generate(
        self,
        *,
        prompt: str,
        model: str,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        output_format: str | None = None,
        output_compression: int | None = None,
        moderation: str | None = None,
        response_format: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        seed: int | None = None,
        user: str | None = None,
        stream: Literal[True],
        partial_images: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,  # noqa: ASYNC109 - openai-python's per-call option
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> AsyncIterator[ImageStreamEvent]: ...

    @overload
    async def generate(
        self,
        *,
        prompt: str,
        model: str,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        output_format: str | None = None,
        output_compression: int | None = None,
        moderation: str | None = None,
        response_format: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        seed: int | None = None,
        user: str | None = None,
        stream: bool,
        partial_images: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,  # noqa: ASYNC109 - openai-python's per-call option
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> ImagesResponse | AsyncIterator[ImageStreamEvent]: ...

    async def generate(
        self,
        *,
        prompt: str,
        model: str,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        output_format: str | None = None,
        output_compression: int | None = None,
        moderation: str | None = None,
        response_format: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        seed: int | None = None,
        user: str | None = None,
        stream: bool | None = None,
        partial_images: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,  # noqa: ASYNC109 - openai-python's per-call option
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> ImagesResponse | AsyncIterator[ImageStreamEvent]:
        params, payload = image_request(
            prompt=prompt,
            model=model,
            user=user,
            **_options(
                n=n,
                size=size,
                quality=quality,
                background=background,
                output_format=output_format,
                output_compression=output_compression,
                moderation=moderation,
                response_format=response_format,
                aspect_ratio=aspect_ratio,
                resolution=resolution,
                seed=seed,
            ),
        )
        call = self._call(timeout, extra_headers, extra_query, extra_body)
        if stream:
            return await self._stream(
                streamed(params, partial_images, idempotency_key), payload, call, edit=False
            )
        return await self._run(params, payload, call, edit=False, idempotency_key=idempotency_key)

    @overload
    async def edit(
        self,
        *,
        image: FileInput | list[FileInput],
        prompt: str,
        model: str,
        mask: FileInput | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        output_format: str | None = None,
        output_compression: int | None = None,
        input_fidelity: str | None = None,
        response_format: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        user: str | None = None,
        stream: Literal[False] | None = None,
        partial_images: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,  # noqa: ASYNC109 - openai-python's per-call option
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> ImagesResponse: ...

    @overload
    async def edit(
        self,
        *,
        image: FileInput | list[FileInput],
        prompt: str,
        model: str,
        mask: FileInput | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        output_format: str | None = None,
        output_compression: int | None = None,
        input_fidelity: str | None = None,
        response_format: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        user: str | None = None,
        stream: Literal[True],
        partial_images: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,  # noqa: ASYNC109 - openai-python's per-call option
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> AsyncIterator[ImageStreamEvent]: ...

    @overload
    async def edit(
        self,
        *,
        image: FileInput | list[FileInput],
        prompt: str,
        model: str,
        mask: FileInput | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        output_format: str | None = None,
        output_compression: int | None = None,
        input_fidelity: str | None = None,
        response_format: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        user: str | None = None,
        stream: bool,
        partial_images: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,  # noqa: ASYNC109 - openai-python's per-call option
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> ImagesResponse | AsyncIterator[ImageStreamEvent]: ...

    async def edit(
        self,
        *,
        image: FileInput | list[FileInput],
        prompt: str,
        model: str,
        mask: FileInput | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        output_format: str | None = None,
        output_compression: int | None = None,
        input_fidelity: str | None = None,
        response_format: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        user: str | None = None,
        stream: bool | None = None,
        partial_images: int | None = None,
        idempotency_key: str | None = None,
        timeout: TimeoutOption = None,  # noqa: ASYNC109 - openai-python's per-call option
        extra_headers: Headers | None = None,
        extra_query: Query | None = None,
        extra_body: Query | None = None,
    ) -> ImagesResponse | AsyncIterator[ImageStreamEvent]:
        images: list[FileInput] = image if isinstance(image, list) else [image]
        params, payload = image_request(
            prompt=prompt,
            model=model,
            images=images,
            mask=mask,
            user=user,
            **_options(
                n=n,
                size=size,
                quality=quality,
                background=background,
                output_format=output_format,
                output_compression=output_compression,
                input_fidelity=input_fidelity,
                response_format=response_format,
                aspect_ratio=aspect_ratio,
                resolution=resolution,
            ),
        )
        call = self._call(timeout, extra_headers, extra_query, extra_body)
        if stream:
            return await self._stream(
                streamed(params, partial_images, idempotency_key), payload, call, edit=True
            )
        return await self._run(params, payload, call, edit=True, idempotency_key=idempotency_key)

    async def _run(
        self,
        params: Any,
        payload: Any,
        call: CallOptions,
        *,
        edit: bool,
        idempotency_key: str | None,
    ) -> ImagesResponse:
        setup, engine = self._setup, self._engine
        if setup.gateway is not None:
            key = call.idempotency_key(idempotency_key)
            return await self._through_gateway(
                lambda gateway: gateway.images(
                    params, payload, call, edit=edit, idempotency_key=key
                ),
                call,
                retry=key is not None,
            )
        core = setup.core
        assert core is not None
        prepared = core.prepare_image(params, payload, edit=edit)

        async def attempt(route: Any) -> Any:
            return await engine.drive(
                core.image_attempt(prepared, route), route.provider, self._deadline(route, call)
            )

        outcome = await engine.run(
            self._bounded(prepared.routes, call),
            attempt,
            host_of=core.host_of,
            hedge_for=prepared.spec.id,
        )
        return core.images_response(prepared, outcome)

    async def _stream(
        self, params: ImageParams, payload: Any, call: CallOptions, *, edit: bool
    ) -> AsyncIterator[ImageStreamEvent]:
        if self._setup.gateway is None:
            answer = await self._run(params, payload, call, edit=edit, idempotency_key=None)
            return listed(completed_events(answer, edit=edit))
        deadline = self._gateway_deadline(call)
        return await open_async(
            self._engine, self._gateway, params, payload, call, edit=edit, deadline=deadline
        )
