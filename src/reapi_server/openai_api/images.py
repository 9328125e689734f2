"""POST /v1/images/generations (JSON) and POST /v1/images/edits (multipart)."""

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
from .requests import (
    ImageEditForm,
    ImageGenerationBody,
    image_edit_from_form,
    image_generation,
    parse_model,
)
from .responses import ImagesResponse, error_responses

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["Images"])

_ERRORS = error_responses(400, 401, 402, 404, 409, 413, 422, 429, 502, 503, 504)


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
    summary="Edit or compose images from uploaded images (multipart)",
    response_model=ImagesResponse,
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": _EDIT_SCHEMA}},
        }
    },
)
async def edit_image(request: Request, rt: Rt, principal: Caller, context: Context) -> Response:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise GatewayError(
            "send images/edits as multipart/form-data with the images as files", param="image"
        )
    form = await read_form(request, rt.settings.max_body_bytes)
    _, params, payload = image_edit_from_form(form)
    del form  # the upload now lives only in the sealed payload
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
