"""POST /v1/images/generations (JSON) and POST /v1/images/edits (multipart, or JSON with the
images by URL or file id: fetched by the gateway first, see `references`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from ..errors import GatewayError
from ..images import service
from .bodies import read_body, read_form
from .dependencies import Caller, Context, Rt, base_url_of
from .idempotent import Created, idempotent
from .references import edit_inputs
from .requests import (
    ImageEditBody,
    ImageEditForm,
    ImageGenerationBody,
    image_edit_from_form,
    image_edit_from_json,
    image_generation,
    json_schema,
    parse_model,
    refuse_streaming,
)
from .responses import ImagesResponse, error_responses

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["Images"])

_ERRORS = error_responses(400, 401, 402, 404, 409, 413, 429, 502, 503, 504)


def _binary(schema: dict[str, Any], *names: str) -> dict[str, Any]:
    properties = dict(schema.get("properties", {}))
    for name in names:
        properties[name] = {"type": "string", "format": "binary"}
    return {**schema, "properties": properties, "required": [*schema.get("required", []), names[0]]}


_EDIT_SCHEMA = _binary(ImageEditForm.model_json_schema(), "image", "mask")
_EDIT_SCHEMA["required"] = ["prompt", "image"]


def _json_object(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise GatewayError("the request body is not valid JSON", code="invalid_json") from None


@router.post(
    "/images/generations",
    summary="Create images from a prompt",
    response_model=ImagesResponse,
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ImageGenerationBody.model_json_schema()}},
        }
    },
)
async def create_image(request: Request, rt: Rt, principal: Caller, context: Context) -> Response:
    body = parse_model(
        ImageGenerationBody, _json_object(await read_body(request, rt.settings.max_body_bytes))
    )
    params, payload = image_generation(body)
    base_url = base_url_of(request)

    async def run() -> Created:
        answer = await service.generate(
            rt, principal, context, params, payload, edit=False, base_url=base_url
        )
        return 200, answer.body, answer.snapshot

    return await idempotent(
        rt,
        principal,
        request,
        "images.generations",
        dataclasses.asdict(params),
        payload,
        run=run,
        replay=lambda snapshot: service.replay(rt, snapshot, base_url),
    )


@router.post(
    "/images/edits",
    summary="Edit or compose images: uploads (multipart) or references (JSON)",
    response_model=ImagesResponse,
    responses=_ERRORS,
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
    content_type = request.headers.get("content-type", "")
    limit = rt.settings.max_body_bytes
    if content_type.startswith("multipart/form-data"):
        form = await read_form(request, limit)
        _, params, payload = image_edit_from_form(form)
        del form  # the upload now lives only in the sealed payload
    elif content_type.startswith("application/json"):
        body = parse_model(ImageEditBody, _json_object(await read_body(request, limit)))
        refuse_streaming(body.stream)
        images, mask = await edit_inputs(rt, principal, body)
        params, payload = image_edit_from_json(body, images, mask)
        del body  # the references now live only in the sealed payload
    else:
        raise GatewayError(
            "send images/edits as multipart/form-data (files) or application/json "
            "(images by image_url or file_id)",
            param="image",
        )
    base_url = base_url_of(request)

    async def run() -> Created:
        answer = await service.generate(
            rt, principal, context, params, payload, edit=True, base_url=base_url
        )
        return 200, answer.body, answer.snapshot

    return await idempotent(
        rt,
        principal,
        request,
        "images.edits",
        dataclasses.asdict(params),
        payload,
        run=run,
        replay=lambda snapshot: service.replay(rt, snapshot, base_url),
    )
