"""GET /v1/files/{file_id}/content: mirrored outputs at stable URLs.

The URL is the capability: file ids carry 192 random bits and are only ever given to the account
that paid for the output, so the URL works without a key (as `response_format=url` answers
must, for browsers and `<img>` tags) and cannot be guessed. A request that does present a key is
held to the usual rule: another account's file answers 404.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from ..errors import NotFound
from ..mirror.repository import owner_of
from .dependencies import Rt
from .responses import error_responses

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["Files"])

_FILE_ID = re.compile(r"^file_[0-9a-f]{48}$")


@router.get(
    "/files/{file_id}/content",
    summary="Download a generated output",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "video/mp4": {}}},
        **error_responses(401, 404, 422),
    },
)
async def file_content(
    request: Request, file_id: Annotated[str, Path(max_length=64)], rt: Rt
) -> Response:
    if not _FILE_ID.match(file_id):
        raise NotFound("no such file", param="file_id")
    authorization = request.headers.get("authorization")
    if authorization is not None:
        principal = await rt.auth.authenticate(authorization)
        async with rt.db.read() as session:
            owner = await owner_of(session, file_id)
        if owner != principal.account_id:
            raise NotFound("no such file", param="file_id")
    stored = await rt.store.get(f"outputs/{file_id}")
    if stored is None:
        raise NotFound("no such file", param="file_id")
    return Response(
        stored.data,
        media_type=stored.content_type,
        headers={"cache-control": "private, max-age=31536000, immutable"},
    )
