"""The SDK's `videos.wait()` against this gateway: it follows the video's event stream (no
polls), sees every change, and falls back to polling when the stream cannot serve it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.server.live import LiveGateway, live_gateway

from reapi import AsyncReAPI, ReAPI


@pytest.fixture
def gw(tmp_path: Path, migrated_template: Path) -> Iterator[LiveGateway]:
    with live_gateway(
        tmp_path / "d",
        migrated_template,
        run_background_tasks=True,
        poll_interval=0.2,
        video_events_reread_seconds=30.0,
    ) as gateway:
        yield gateway


def _recorder(paths: list[str]):
    def record(request: httpx.Request) -> None:
        paths.append(f"{request.method} {request.url.path}")

    return record


def test_wait_follows_the_events_of_a_real_gateway(gw):
    paths: list[str] = []
    seen = []
    client = httpx.Client(event_hooks={"request": [_recorder(paths)]})
    with ReAPI(base_url=f"{gw.base_url}/v1", api_key=gw.key, http_client=client) as sdk:
        video = sdk.videos.create(model="sim-video", prompt="p", seconds=4, size="1280x720")
        done = sdk.videos.wait(video.id, timeout=20, on_progress=seen.append)
    assert done.status == "completed" and done.progress == 100
    assert [(v.status, v.progress) for v in seen] == [
        ("queued", 0),
        ("in_progress", 40),
        ("completed", 100),
    ]
    assert paths == ["POST /v1/videos", f"GET /v1/videos/{video.id}/events"]


async def test_async_wait_follows_the_events_of_a_real_gateway(gw):
    paths: list[str] = []

    async def record(request: httpx.Request) -> None:
        paths.append(f"{request.method} {request.url.path}")

    client = httpx.AsyncClient(event_hooks={"request": [record]})
    async with AsyncReAPI(base_url=f"{gw.base_url}/v1", api_key=gw.key, http_client=client) as sdk:
        video = await sdk.videos.create(model="sim-video", prompt="p", seconds=4)
        done = await sdk.videos.wait(video.id, timeout=20)
    assert done.status == "completed"
    assert paths == ["POST /v1/videos", f"GET /v1/videos/{video.id}/events"]


def test_wait_resumes_across_the_gateways_stream_lifetime(tmp_path, migrated_template):
    """Streams end after 1.2 s here; the job takes longer: the SDK reconnects with
    Last-Event-ID (after the gateway's retry delay) and never polls."""
    with live_gateway(
        tmp_path / "d",
        migrated_template,
        run_background_tasks=True,
        poll_interval=1.0,
        video_events_max_seconds=1.2,
    ) as gateway:
        paths: list[str] = []
        client = httpx.Client(event_hooks={"request": [_recorder(paths)]})
        with ReAPI(
            base_url=f"{gateway.base_url}/v1", api_key=gateway.key, http_client=client
        ) as sdk:
            video = sdk.videos.create(model="sim-video", prompt="p")
            assert sdk.videos.wait(video.id, timeout=20).status == "completed"
    events = [p for p in paths if p.endswith("/events")]
    assert len(events) >= 2 and len(events) == len(paths) - 1
