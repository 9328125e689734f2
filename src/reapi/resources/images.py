"""`client.images`: generate and edit, OpenAI-style. Sync and async twins differ only in I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._engine import AsyncEngine, SyncEngine
from ..types import ImagesResponse
from ._inputs import FileInput, image_request

if TYPE_CHECKING:
    from .._client import _Setup

__all__ = ["AsyncImages", "Images"]


def _options(**kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


class Images:
    def __init__(self, setup: _Setup, engine: SyncEngine) -> None:
        self._setup = setup
        self._engine = engine

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
        idempotency_key: str | None = None,
    ) -> ImagesResponse:
        """Generate images. `aspect_ratio`/`resolution` are reapi extensions to OpenAI's shape."""
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
        return self._run(params, payload, edit=False, idempotency_key=idempotency_key)

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
        idempotency_key: str | None = None,
    ) -> ImagesResponse:
        """Edit or compose from one or more input images (and an optional mask)."""
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
        return self._run(params, payload, edit=True, idempotency_key=idempotency_key)

    def _run(
        self, params: Any, payload: Any, *, edit: bool, idempotency_key: str | None
    ) -> ImagesResponse:
        setup, engine = self._setup, self._engine
        if setup.gateway is not None:
            protocol = setup.gateway.images(
                params, payload, edit=edit, idempotency_key=idempotency_key
            )
            return engine.drive(protocol, "reapi-gateway", setup.router.config.first_byte_timeout)
        core = setup.core
        assert core is not None
        prepared = core.prepare_image(params, payload, edit=edit)
        outcome = engine.run(
            prepared.routes,
            lambda route: engine.drive(
                core.image_attempt(prepared, route),
                route.provider,
                setup.router.first_byte_timeout(route),
            ),
        )
        return core.images_response(prepared, outcome)


class AsyncImages:
    def __init__(self, setup: _Setup, engine: AsyncEngine) -> None:
        self._setup = setup
        self._engine = engine

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
        idempotency_key: str | None = None,
    ) -> ImagesResponse:
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
        return await self._run(params, payload, edit=False, idempotency_key=idempotency_key)

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
        idempotency_key: str | None = None,
    ) -> ImagesResponse:
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
        return await self._run(params, payload, edit=True, idempotency_key=idempotency_key)

    async def _run(
        self, params: Any, payload: Any, *, edit: bool, idempotency_key: str | None
    ) -> ImagesResponse:
        setup, engine = self._setup, self._engine
        if setup.gateway is not None:
            protocol = setup.gateway.images(
                params, payload, edit=edit, idempotency_key=idempotency_key
            )
            return await engine.drive(
                protocol, "reapi-gateway", setup.router.config.first_byte_timeout
            )
        core = setup.core
        assert core is not None
        prepared = core.prepare_image(params, payload, edit=edit)

        async def attempt(route: Any) -> Any:
            return await engine.drive(
                core.image_attempt(prepared, route),
                route.provider,
                setup.router.first_byte_timeout(route),
            )

        outcome = await engine.run(prepared.routes, attempt)
        return core.images_response(prepared, outcome)
