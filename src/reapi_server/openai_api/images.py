"""POST /v1/images/generations (JSON) and POST /v1/images/edits (multipart, or JSON with the
images by URL or file id: fetched by the gateway once the request is checked and its credit held,
see `references.service`)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from reapi.core import ImageParams, Payload, Tap

from ..api_keys.auth import Principal
from ..idempotency.service import RecordAnswer
from ..images import service
from ..observability.middleware import RequestContext
from ..runtime import Runtime
from .dependencies import Caller, Context, Rt, base_url_of
from .direct_route import DirectRoute
from .idempotent import Created, idempotent
from .image_stream import ImageEventStream, refuse_unstreamable
from .requests import (
    ImageEditBody,
    ImageEditForm,
    ImageGenerationBody,
    image_edit_request,
    image_generation_request,
    json_schema,
)
from .responses import CREDITS_CHARGED_HEADERS, ImagesResponse, error_responses

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["Images"], route_class=DirectRoute)

_ERRORS = error_responses(400, 401, 402, 404, 409, 410, 413, 429, 502, 503, 504)
#: `stream: true`: the answer as server-sent events (`image_stream`).
_ANSWERS = {
    **_ERRORS,
    200: {
        "headers": CREDITS_CHARGED_HEADERS,
        "content": {
            "text/event-stream": {
                # One event (its `event` and `data` lines), as a stream's schema describes
                # each (OpenAPI 3.2's itemSchema; schemathesis reads `schema` so).
                "schema": {
                    "type": "object",
                    "description": "with stream: true, server-sent events: <kind>.partial_image, "
                    "<kind>.completed (one per image) and error, as OpenAI's Images API sends "
                    "them; each event's data is one JSON object whose type is the event's",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"type": "string"},
                        "data": {"type": "string", "contentMediaType": "application/json"},
                    },
                }
            }
        },
    },
}


def _binary(schema: dict[str, Any], *names: str) -> dict[str, Any]:
    properties = dict(schema.get("properties", {}))
    for name in names:
        properties[name] = {"type": "string", "format": "binary"}
    return {**schema, "properties": properties, "required": [*schema.get("required", []), names[0]]}


def _streamed(
    rt: Runtime,
    principal: Principal,
    context: RequestContext,
    request: Request,
    params: ImageParams,
    payload: Payload,
    edit: bool,
    base_url: str,
) -> Response:
    """The answer to `stream: true`: server-sent events (`image_stream`)."""
    refuse_unstreamable(params, request.headers.get("idempotency-key"))

    def run(tap: Tap) -> Awaitable[service.ImageAnswer]:
        return service.generate(
            rt, principal, context, params, payload, edit=edit, base_url=base_url, tap=tap
        )

    return ImageEventStream(run, edit=edit, partial_images=params.partial_images or 0)


_EDIT_SCHEMA = _binary(ImageEditForm.model_json_schema(), "image", "mask")
_EDIT_SCHEMA["required"] = ["prompt", "image"]


@router.post(
    "/images/generations",
    summary="Create images from a prompt",
    response_model=ImagesResponse,
    responses=_ANSWERS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ImageGenerationBody.model_json_schema()}},
        }
    },
)
async def create_image(request: Request, rt: Rt, principal: Caller, context: Context) -> Response:
    # Only the parameters and the sealed payload outlive this line: the body is gone.
    params, payload = await image_generation_request(request, rt.settings.max_body_bytes)
    base_url = base_url_of(request, rt)
    if params.partial_images is not None:  # stream: true
        return _streamed(rt, principal, context, request, params, payload, False, base_url)

    def run(record: RecordAnswer | None) -> Awaitable[Created]:
        # The generation's own coroutine, not one around it: one frame less per resumption.
        return service.generate(
            rt, principal, context, params, payload, edit=False, base_url=base_url, record=record
        )

    return await idempotent(
        rt,
        principal,
        request,
        "images.generations",
        params,
        payload,
        run=run,
        replay=lambda snapshot: service.replay(rt, snapshot, base_url),
    )


@router.post(
    "/images/edits",
    summary="Edit or compose images: uploads (multipart) or references (JSON)",
    response_model=ImagesResponse,
    responses=_ANSWERS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": _EDIT_SCHEMA},
                "application/json": {"schema": json_schema(ImageEditBody)},
            },
        }
    },
)
async def edit_image(request: Request, rt: Rt, principal: Caller, context: Context) -> Response:
    params, payload = await image_edit_request(
        request, rt.settings.max_body_bytes, rt.fetcher.policy
    )
    base_url = base_url_of(request, rt)
    if params.partial_images is not None:  # stream: true
        return _streamed(rt, principal, context, request, params, payload, True, base_url)

    def run(record: RecordAnswer | None) -> Awaitable[Created]:
        # The generation's own coroutine, not one around it: one frame less per resumption.
        return service.generate(
            rt, principal, context, params, payload, edit=True, base_url=base_url, record=record
        )

    return await idempotent(
        rt,
        principal,
        request,
        "images.edits",
        params,
        payload,
        run=run,
        replay=lambda snapshot: service.replay(rt, snapshot, base_url),
    )
