"""Mirrored outputs at stable URLs, and their deletion.

`GET /v1/files/{file_id}/content`: the URL is the capability. File ids carry 148 random bits
(after the time they were made) and are only ever given to the account that paid for the output,
so the URL works without a key (as `response_format=url` answers must, for browsers and `<img>`
tags) and cannot be guessed. A request that does present a key is held to the usual rule: another
account's file answers 404. When the store has direct URLs (a public bucket domain, or presigned
URLs), the answer redirects there.

`DELETE /v1/files/{file_id}` (OpenAI's shape) deletes one output (a video's with its thumbnail,
`mirror.service.delete_file`); `DELETE /v1/outputs/{task_id}` deletes every output of an image
request (its `x-request-id`) or a video.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel
from starlette.responses import RedirectResponse, Response, StreamingResponse

from ..api_keys.auth import client_address
from ..errors import NotFound
from ..mirror.keys import is_task_id
from ..mirror.media import served_type
from ..mirror.service import delete_file, delete_task_outputs, find_output
from ..mirror.storage import CACHE_CONTROL, OpenedObject
from ..models import StoredOutput
from ..runtime import Runtime
from .dependencies import Caller, Rt
from .responses import error_responses, json_response

__all__ = ["router", "stored_response"]

router = APIRouter(prefix="/v1", tags=["Files"])

_FILE_ID = re.compile(r"^file_[0-9a-f]{48}$")
#: Up to this size an object is read whole and sent with one write.
_WHOLE_LIMIT = 1024 * 1024

FileId = Annotated[str, Path(max_length=64)]


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool


class OutputsDeleted(BaseModel):
    id: str
    object: Literal["outputs.deleted"] = "outputs.deleted"
    deleted: bool


async def _chunks(opened: OpenedObject) -> AsyncIterator[bytes]:
    try:
        async for chunk in opened.chunks:
            yield chunk
    finally:
        await opened.aclose()


def _etag(file_id: str) -> str:
    """Derived from the file id, which it must not reveal: the API serves a video's content by
    video id (only its owner's dashboard shows the file's URL), and an ETag is seen by every
    cache on the way."""
    return '"' + hashlib.sha256(file_id.encode()).hexdigest()[:32] + '"'


def _revalidated(request: Request, etag: str) -> bool:
    """The client's cached copy is this output (`If-None-Match`)."""
    given = request.headers.get("if-none-match", "")
    return any(tag.strip().removeprefix("W/") in (etag, "*") for tag in given.split(","))


async def stored_response(
    rt: Runtime, request: Request, output: StoredOutput, *, redirect: bool
) -> Response:
    """An output's bytes, streamed from storage (a video is never read whole), or a redirect to
    the store's own URL for it when `redirect` is allowed and the store has one.

    Caches must revalidate on every use (`no-cache`, see `CACHE_CONTROL`): a deleted output
    then stops resolving at once. A revalidation costs one row lookup (the caller's) and answers
    304 without touching storage; the ETag names the file, since an output never changes."""
    cached = {"cache-control": CACHE_CONTROL}
    direct = rt.store.url(output.storage_key) if redirect else None
    if direct is not None:
        return RedirectResponse(direct, 307, headers=cached)
    etag = _etag(output.id)
    headers = {**cached, "etag": etag, "x-content-type-options": "nosniff"}
    if _revalidated(request, etag):
        return Response(status_code=304, headers=headers)
    opened = await rt.store.open(output.storage_key)
    if opened is None:
        raise NotFound("no such file", param="file_id")
    media_type = served_type(opened.content_type)
    if opened.size <= _WHOLE_LIMIT:
        return Response(await opened.read(), media_type=media_type, headers=headers)
    headers["content-length"] = str(opened.size)
    return StreamingResponse(_chunks(opened), media_type=media_type, headers=headers)


@router.get(
    "/files/{file_id}/content",
    summary="Download a generated output",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "video/mp4": {}}},
        304: {"description": "The cached copy (If-None-Match) is still this output"},
        307: {"description": "Redirect to the storage's own URL for the output"},
        **error_responses(400, 401, 404),
    },
)
async def file_content(request: Request, file_id: FileId, rt: Rt) -> Response:
    if not _FILE_ID.match(file_id):
        raise NotFound("no such file", param="file_id")
    output = await find_output(rt, file_id)
    authorization = request.headers.get("authorization")
    if authorization is not None:
        principal = await rt.auth.authenticate(authorization, client_address(request))
        if output is not None and output.account_id != principal.account_id:
            output = None
    if output is None:
        raise NotFound("no such file", param="file_id")
    return await stored_response(rt, request, output, redirect=True)


@router.delete(
    "/files/{file_id}",
    summary="Delete a generated output now (its row, then its stored object)",
    response_model=FileDeleted,
    responses=error_responses(400, 401, 404, 429),
)
async def delete_file_endpoint(file_id: FileId, rt: Rt, principal: Caller) -> Response:
    if not _FILE_ID.match(file_id) or not await delete_file(rt, file_id, principal.account_id):
        raise NotFound("no such file", param="file_id")
    return json_response({"id": file_id, "object": "file", "deleted": True})


@router.delete(
    "/outputs/{task_id}",
    summary="Delete every stored output of an image request (x-request-id) or a video",
    response_model=OutputsDeleted,
    responses=error_responses(400, 401, 404, 429),
)
async def delete_outputs(
    task_id: Annotated[str, Path(max_length=64)], rt: Rt, principal: Caller
) -> Response:
    if (
        not is_task_id(task_id)
        or await delete_task_outputs(rt, task_id, principal.account_id) is None
    ):
        raise NotFound("no stored outputs for this id", param="task_id")
    return json_response({"id": task_id, "object": "outputs.deleted", "deleted": True})
