"""`videos.wait()` in gateway mode follows the video's event stream (Server-Sent Events) instead
of polling: it reconnects with Last-Event-ID when a stream ends before the video does, and falls
back to polling when the gateway has no events route (404: an older gateway) or a stream breaks.
Both twins, against a scripted gateway on a real socket."""

from __future__ import annotations

import time

import pytest
from tests.sdk.event_gateway import EventGateway, Stream, event, video

from reapi import APITimeoutError, AsyncReAPI, NotFoundError, ReAPI

QUEUED = video(status="queued", progress=0)
RUNNING = video(status="in_progress", progress=40)
DONE = video()


@pytest.fixture(params=["sync", "async"])
def twin(request):
    return request.param


async def wait(gateway: EventGateway, twin: str, **kw):
    if twin == "sync":
        with ReAPI(base_url=gateway.base_url, api_key="rk_test", max_retries=0) as client:
            return client.videos.wait("video_1", **kw)
    async with AsyncReAPI(base_url=gateway.base_url, api_key="rk_test", max_retries=0) as client:
        return await client.videos.wait("video_1", **kw)


async def test_wait_follows_the_stream_without_polling(twin):
    stream = Stream(
        [
            b"retry: 2000\n\n",
            event("video.updated", QUEUED, "q"),
            b": keep-alive\n\n",
            event("video.updated", RUNNING, "r"),
            event("video.completed", DONE, "c"),
        ]
    )
    seen = []
    with EventGateway(stream) as gateway:
        done = await wait(gateway, twin, on_progress=seen.append)
    assert done.status == "completed" and done.progress == 100
    assert [(v.status, v.progress) for v in seen] == [
        ("queued", 0),
        ("in_progress", 40),
        ("completed", 100),
    ]
    assert gateway.paths() == ["/v1/videos/video_1/events"]
    sent = gateway.seen[0].headers
    assert sent["Authorization"] == "Bearer rk_test"
    assert sent["Accept"] == "text/event-stream"
    assert "Last-Event-ID" not in sent


async def test_a_stream_that_ends_early_is_resumed_with_last_event_id(twin):
    first = Stream([event("video.updated", RUNNING, "r-40")])
    second = Stream([event("video.completed", DONE, "c")])
    with EventGateway(first, second) as gateway:
        done = await wait(gateway, twin)
    assert done.status == "completed"
    assert gateway.paths() == ["/v1/videos/video_1/events"] * 2
    assert gateway.seen[1].headers["Last-Event-ID"] == "r-40"


async def test_the_gateways_retry_delay_comes_before_a_reconnection(twin):
    first = Stream([b"retry: 400\n\n", event("video.updated", RUNNING, "r")])
    second = Stream([event("video.completed", DONE, "c")])
    started = time.monotonic()
    with EventGateway(first, second) as gateway:
        assert (await wait(gateway, twin)).status == "completed"
    assert time.monotonic() - started >= 0.4
    assert gateway.paths() == ["/v1/videos/video_1/events"] * 2


async def test_an_older_gateway_without_the_route_is_polled(twin):
    with EventGateway(Stream(status=404), polled=DONE) as gateway:
        done = await wait(gateway, twin, poll_interval=0.01)
    assert done.status == "completed"
    assert gateway.paths() == ["/v1/videos/video_1/events", "/v1/videos/video_1"]


async def test_a_broken_stream_falls_back_to_polling(twin):
    seen = []
    broken = Stream([event("video.updated", RUNNING, "r")], end="break")
    with EventGateway(broken, polled=DONE) as gateway:
        done = await wait(gateway, twin, poll_interval=0.01, on_progress=seen.append)
    assert done.status == "completed"
    assert gateway.paths() == ["/v1/videos/video_1/events", "/v1/videos/video_1"]
    assert [(v.status, v.progress) for v in seen] == [("in_progress", 40), ("completed", 100)]


async def test_streams_that_end_with_nothing_fall_back_to_polling(twin):
    """A stream that ends again and again without an event is no way to wait: poll."""
    with EventGateway(Stream([b": keep-alive\n\n"]), polled=DONE) as gateway:
        done = await wait(gateway, twin, poll_interval=0.01)
    assert done.status == "completed"
    assert gateway.paths()[-1] == "/v1/videos/video_1"
    assert 2 <= gateway.paths().count("/v1/videos/video_1/events") <= 3


async def test_a_deleted_video_is_polled_and_said_so(twin):
    deleted = Stream([event("video.deleted", {"id": "video_1", "deleted": True})])
    with EventGateway(deleted, polled={"error": {"message": "no such video"}}) as gateway:
        with pytest.raises(NotFoundError):
            await wait(gateway, twin, poll_interval=0.01)


async def test_the_wait_timeout_bounds_a_quiet_stream(twin):
    quiet = Stream([event("video.updated", RUNNING, "r")], end="hang")
    started = time.monotonic()
    with EventGateway(quiet) as gateway:
        with pytest.raises(APITimeoutError) as info:
            await wait(gateway, twin, timeout=0.5)
    assert info.value.code == "wait_timeout" and "in_progress" in info.value.message
    assert time.monotonic() - started < 3


async def test_keep_alive_comments_keep_a_long_quiet_stream(twin, monkeypatch):
    """Comments (what the gateway sends every 15 s so that proxies keep an idle stream open)
    count as life: a stream quiet for longer than the idle bound, save for them, is followed
    to its end without polling."""
    monkeypatch.setattr("reapi.resources.videos.STREAM_IDLE", 0.5)
    chunks = [event("video.updated", RUNNING, "r"), *[b": keep-alive\n\n"] * 5]
    quiet = Stream([*chunks, event("video.completed", DONE, "c")], pause=0.25)
    with EventGateway(quiet, polled=video(status="in_progress", progress=40)) as gateway:
        done = await wait(gateway, twin, poll_interval=0.01, timeout=10)
    assert done.status == "completed"
    assert gateway.paths() == ["/v1/videos/video_1/events"]


async def test_a_stream_silent_past_the_idle_bound_is_left_for_polling(twin, monkeypatch):
    monkeypatch.setattr("reapi.resources.videos.STREAM_IDLE", 0.5)
    silent = Stream([event("video.updated", RUNNING, "r")], end="hang")
    with EventGateway(silent, polled=DONE) as gateway:
        done = await wait(gateway, twin, poll_interval=0.01)
    assert done.status == "completed"
    assert gateway.paths() == ["/v1/videos/video_1/events", "/v1/videos/video_1"]
