"""The /v1/videos endpoints: create (JSON or multipart), retrieve, list, content, delete, and
the stream of a video's events (Server-Sent Events)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from ..idempotency.service import RecordAnswer
from ..jobs import service, submission
from ..jobs.events import EventStream, event_stream
from ..webhooks.service import check_url
from .dependencies import Caller, Context, Rt
from .files import stored_response
from .idempotent import Created, idempotent
from .requests import VideoBody, json_schema, video_request_of
from .responses import (
    CREDITS_CHARGED_HEADERS,
    Video,
    VideoDeleted,
    VideoList,
    error_responses,
    json_response,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["Videos"])

_VIDEO_SCHEMA = json_schema(VideoBody)
_MULTIPART_SCHEMA = {
    **_VIDEO_SCHEMA,
    "properties": {
        **{k: v for k, v in _VIDEO_SCHEMA["properties"].items() if k != "input_reference"},
        "input_reference": {"type": "string", "format": "binary"},
    },
}
VideoId = Annotated[str, Path(max_length=64)]


@router.post(
    "/videos",
    summary="Start a video job",
    response_model=Video,
    responses=error_responses(400, 401, 402, 404, 409, 410, 413, 429, 502, 503, 504),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _VIDEO_SCHEMA},
                "multipart/form-data": {"schema": _MULTIPART_SCHEMA},
            },
        }
    },
)
async def create_video(request: Request, rt: Rt, principal: Caller, context: Context) -> Response:
    # A reference given by URL (or file id) is loaded by `submission.create` once the job is
    # checked and its credit held (see `references.service`).
    params, payload, webhook_url = await video_request_of(
        request, rt.settings.max_body_bytes, rt.fetcher.policy
    )
    # Refused here, before any credit is held or job made (and checked again at delivery).
    webhook = await check_url(rt.webhook_fetcher, webhook_url) if webhook_url else None
    fingerprinted = dataclasses.asdict(params)
    if webhook is not None:
        fingerprinted["webhook_url"] = webhook.url

    async def run(record: RecordAnswer | None) -> Created:
        body = await submission.create(
            rt, principal, context, params, payload, record=record, webhook=webhook
        )
        # Held, not charged: what it costs is known once it settles (`retrieve_video`).
        return 200, body, submission.replay_snapshot(body["id"]), None

    async def replay(snapshot: dict[str, Any]) -> dict[str, Any]:
        return await service.replay(rt, principal, snapshot["id"])

    return await idempotent(
        rt,
        principal,
        request,
        "videos.create",
        fingerprinted,
        payload,
        run=run,
        replay=replay,
    )


@router.get(
    "/videos",
    summary="List this account's videos",
    response_model=VideoList,
    responses=error_responses(400, 401, 404, 429),
)
async def list_videos(
    rt: Rt,
    principal: Caller,
    limit: Annotated[int, Query(ge=0, le=100)] = 20,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    return json_response(
        await service.list_videos(rt, principal, limit=limit, after=after, order=order)
    )


@router.get(
    "/videos/{video_id}",
    summary="Retrieve a video job",
    response_model=Video,
    # Once the video has ended, what it was charged (`json_response(charged=)`).
    responses={**error_responses(400, 401, 404, 429), 200: {"headers": CREDITS_CHARGED_HEADERS}},
)
async def retrieve_video(video_id: VideoId, rt: Rt, principal: Caller) -> Response:
    body, charged = await service.retrieve_charged(rt, principal, video_id)
    return json_response(body, charged=charged)


@router.delete(
    "/videos/{video_id}",
    summary="Delete a video (an unfinished one is cancelled and not charged)",
    response_model=VideoDeleted,
    responses=error_responses(400, 401, 404, 429),
)
async def delete_video(video_id: VideoId, rt: Rt, principal: Caller) -> Response:
    return json_response(await service.delete(rt, principal, video_id))


class _EventsResponse(StreamingResponse):
    """The event stream's answer, which gives the stream's place back however it ends: also
    when the client left before its first chunk was read (its generator never ran)."""

    def __init__(self, stream: EventStream) -> None:
        super().__init__(
            stream.chunks,
            media_type="text/event-stream",
            # Proxies must neither cache nor buffer it (nginx reads X-Accel-Buffering).
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._stream.release()


@router.get(
    "/videos/{video_id}/events",
    summary="Follow a video job (Server-Sent Events)",
    description=(
        "reapi's extension. `video.updated` for each change of status or progress, then "
        "`video.completed` or `video.failed` (or `video.deleted`), and the stream ends; each "
        "event's data is the video object. Reconnect with `Last-Event-ID` to get only what "
        "changed since. Comment lines keep an idle stream open; a stream ends after a while "
        "(reconnect to go on)."
    ),
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        **error_responses(400, 401, 404, 429),
    },
)
async def video_events(
    video_id: VideoId,
    rt: Rt,
    principal: Caller,
    last_event_id: Annotated[str | None, Header(max_length=1024)] = None,
) -> Response:
    return _EventsResponse(await event_stream(rt, principal, video_id, last_event_id))


@router.get(
    "/videos/{video_id}/content",
    summary="Download a finished video or its thumbnail",
    response_class=Response,
    responses={
        200: {"content": {"video/mp4": {}, "image/png": {}, "image/webp": {}}},
        304: {"description": "The cached copy (If-None-Match) is still this output"},
        **error_responses(400, 401, 404, 410, 429),
    },
)
async def video_content(
    request: Request,
    video_id: VideoId,
    rt: Rt,
    principal: Caller,
    variant: Annotated[Literal["video", "thumbnail", "spritesheet"], Query()] = "video",
) -> Response:
    output = await service.content(rt, principal, video_id, variant)
    # Streamed through the gateway, never redirected: API clients (the SDK) do not follow them.
    return await stored_response(rt, request, output, redirect=False)
