"""GET /v1/videos/{id}/events: Server-Sent Events of a job's status and progress, a final event,
then the end of the stream. Woken by the poller in the same process, and by a periodic re-read
for changes made by another; Last-Event-ID resumes; comments keep idle streams open; a stream
lives a bounded time, and ends when the server stops. Over a real server (uvicorn on loopback):
an in-process ASGI transport would hold the whole stream back until it ended."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update
from tests.server.helpers import auth
from tests.server.live import LiveGateway, live_gateway
from tests.server.served import served_gateway

from reapi_server.db import Database
from reapi_server.models import ApiKey, VideoJob


@dataclass
class Event:
    id: str | None = None
    event: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)

    @property
    def video(self) -> dict:
        return json.loads(self.data)


class Stream:
    """One open event stream, read event by event (comments kept with the next event)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.iter_lines()
        self.retry: str | None = None
        self.comments: list[str] = []

    def next(self) -> Event | None:
        """The next event, or None when the stream ended."""
        event = Event()
        for line in self.lines:
            if line == "":
                if event.event or event.data:
                    event.comments, self.comments = self.comments, []
                    return event
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "retry":
                self.retry = value
            elif name == "id":
                event.id = value
            elif name == "event":
                event.event = value
            elif name == "data":
                event.data += value
        return None

    def read_comments(self, count: int) -> None:
        """Read on until `count` comments are held (bounded by the client's read timeout, not
        by wall time: a loaded machine may send its heartbeats late, but it must send them)."""
        for line in self.lines:
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                if len(self.comments) >= count:
                    return
            elif line:
                raise AssertionError(f"an event came before {count} comments: {line!r}")
        raise AssertionError(f"the stream ended before {count} comments")


def open_stream(
    gw: LiveGateway, video_id: str, *, key: str | None = None, last_event_id: str | None = None
):
    headers = auth(key or gw.key)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    client = httpx.Client(base_url=gw.base_url, timeout=10)
    return client, client.stream("GET", f"/v1/videos/{video_id}/events", headers=headers)


class streaming:
    """`with streaming(gw, id) as stream:` — the stream, closed (with its client) on exit."""

    def __init__(self, gw: LiveGateway, video_id: str, **kw) -> None:
        self.client, self.context = open_stream(gw, video_id, **kw)

    def __enter__(self) -> Stream:
        response = self.context.__enter__()
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        return Stream(response)

    def __exit__(self, *exc) -> None:
        self.context.__exit__(*exc)
        self.client.close()


def create(gw: LiveGateway, **fields) -> dict:
    body = {"model": "sim-video", "prompt": "p", "size": "1280x720", **fields}
    response = httpx.post(f"{gw.base_url}/v1/videos", json=body, headers=auth(gw.key))
    assert response.status_code == 200, response.text
    return response.json()


def set_job(gw: LiveGateway, video_id: str, **values) -> None:
    """What another process does: a write on its own connection, with no wake-up here."""

    async def write() -> None:
        db = Database(gw.runtime.settings.resolved_database_url)
        try:
            async with db.write() as session:
                await session.execute(
                    update(VideoJob).where(VideoJob.id == video_id).values(**values)
                )
        finally:
            await db.dispose()

    asyncio.run(write())


@pytest.fixture
def polled(tmp_path: Path, migrated_template: Path) -> Iterator[LiveGateway]:
    """The poller runs in the server: queued → in_progress (40 %) → completed. Streams re-read
    the job only every 30 s: what they show promptly, the poller's wake-up brought."""
    with live_gateway(
        tmp_path / "d",
        migrated_template,
        run_background_tasks=True,
        poll_interval=0.3,
        video_events_reread_seconds=30.0,
    ) as gw:
        yield gw


@pytest.fixture
def quiet(tmp_path: Path, migrated_template: Path) -> Iterator[LiveGateway]:
    """No poller: the test changes the job itself, as another process would."""
    with live_gateway(
        tmp_path / "d",
        migrated_template,
        video_events_reread_seconds=0.2,
        video_events_heartbeat_seconds=0.3,
    ) as gw:
        yield gw


def test_a_stream_follows_the_job_to_its_end(polled):
    # The job stays queued until the stream has shown it so: on a loaded machine the poller
    # (every 0.3 s) moved it on before the stream was open, and "queued" was never seen.
    polled.upstream.videos_held = True
    video = create(polled)
    started = time.monotonic()
    with streaming(polled, video["id"]) as stream:
        seen = [stream.next()]
        polled.upstream.videos_held = False
        while (event := stream.next()) is not None:
            seen.append(event)
        assert stream.retry is not None and int(stream.retry) > 0
    assert time.monotonic() - started < 10  # woken by the poller, not by the 30 s re-read
    names = [e.event for e in seen]
    states = [(e.video["status"], e.video["progress"]) for e in seen]
    assert names == ["video.updated", "video.updated", "video.completed"]
    assert states == [("queued", 0), ("in_progress", 40), ("completed", 100)]
    assert all(e.video["id"] == video["id"] and e.video["prompt"] is None for e in seen)
    assert len({e.id for e in seen}) == 3 and all(e.id for e in seen)
    final = httpx.get(f"{polled.base_url}/v1/videos/{video['id']}", headers=auth(polled.key))
    assert seen[-1].video == final.json()


def test_a_failed_job_ends_with_video_failed(polled):
    polled.upstream.video_outcome = "blocked"
    video = create(polled)
    with streaming(polled, video["id"]) as stream:
        events = []
        while (event := stream.next()) is not None:
            events.append(event)
    assert events[-1].event == "video.failed"
    assert events[-1].video["error"]["code"] == "content_policy_violation"


def test_a_change_by_another_process_is_seen_by_the_re_read(quiet):
    video = create(quiet)
    with streaming(quiet, video["id"]) as stream:
        assert stream.next().video["status"] == "queued"
        set_job(quiet, video["id"], status="in_progress", progress=55)
        changed_at = time.monotonic()
        event = stream.next()
        assert (event.video["status"], event.video["progress"]) == ("in_progress", 55)
        assert time.monotonic() - changed_at < 2.0


def test_last_event_id_resumes_after_what_was_seen(quiet):
    video = create(quiet)
    with streaming(quiet, video["id"]) as stream:
        queued = stream.next()
    set_job(quiet, video["id"], status="in_progress", progress=40)
    with streaming(quiet, video["id"], last_event_id=queued.id) as stream:
        progressed = stream.next()  # what changed since, at once
        assert (progressed.event, progressed.video["progress"]) == ("video.updated", 40)
    with streaming(quiet, video["id"], last_event_id=progressed.id) as stream:
        # nothing new yet: only keep-alive comments, until the job ends
        time.sleep(0.7)
        set_job(quiet, video["id"], status="failed", error_code="generation_failed")
        final = stream.next()
        assert final.event == "video.failed" and final.comments  # comments came first
        assert stream.next() is None
    with streaming(quiet, video["id"], last_event_id=final.id) as stream:
        assert stream.next() is None  # the end was seen already: nothing more to say


def test_an_unknown_last_event_id_gets_the_current_state(quiet):
    video = create(quiet)
    with streaming(quiet, video["id"], last_event_id="x" * 500) as stream:
        assert stream.next().video["status"] == "queued"


def test_heartbeats_keep_an_idle_stream_open(quiet):
    video = create(quiet)
    with streaming(quiet, video["id"]) as stream:
        stream.next()
        stream.read_comments(2)
        set_job(quiet, video["id"], progress=10)
        event = stream.next()
        assert event.video["progress"] == 10
        assert event.comments.count("keep-alive") >= 2


def test_a_stream_ends_after_its_lifetime(tmp_path, migrated_template):
    with live_gateway(tmp_path / "d", migrated_template, video_events_max_seconds=0.5) as gw:
        video = create(gw)
        started = time.monotonic()
        with streaming(gw, video["id"]) as stream:
            assert stream.next().video["status"] == "queued"
            assert stream.next() is None  # ended without a final event: reconnect to go on
        assert 0.4 < time.monotonic() - started < 3


def test_a_job_deleted_while_streaming(quiet):
    video = create(quiet)
    with streaming(quiet, video["id"]) as stream:
        stream.next()
        httpx.delete(f"{quiet.base_url}/v1/videos/{video['id']}", headers=auth(quiet.key))
        event = stream.next()
        assert event.event == "video.deleted" and event.video["deleted"] is True
        assert stream.next() is None


def _change_key(gw: LiveGateway, **values) -> None:
    """What another process does to the key (a revocation from the command line)."""

    async def write() -> None:
        db = Database(gw.runtime.settings.resolved_database_url)
        try:
            async with db.write() as session:
                await session.execute(update(ApiKey).values(**values))
        finally:
            await db.dispose()

    asyncio.run(write())


@pytest.mark.parametrize("change", [{"revoked_at": 1.0}, {"expires_at": 1.0}])
def test_a_stream_ends_when_its_key_is_revoked_or_expires(quiet, change):
    """A stream opened before a revocation went on telling the job's changes to whoever held
    the key, for the stream's whole lifetime (600 s by default)."""
    video = create(quiet)
    with streaming(quiet, video["id"]) as stream:
        assert stream.next().event == "video.updated"
        _change_key(quiet, **change)
        set_job(quiet, video["id"], status="in_progress", progress=50)
        assert stream.next() is None  # ended at the next re-read, the change untold
    # Reconnecting within the authentication cache's two seconds: a stream that tells nothing.
    again = httpx.get(f"{quiet.base_url}/v1/videos/{video['id']}/events", headers=auth(quiet.key))
    assert "event:" not in again.text


def test_streams_are_authenticated_and_scoped_like_every_v1_route(quiet):
    video = create(quiet)
    path = f"{quiet.base_url}/v1/videos/{video['id']}/events"
    assert httpx.get(path).status_code == 401
    assert httpx.get(path, headers={"authorization": "Bearer rk_live_bad"}).status_code == 401
    unknown = httpx.get(f"{quiet.base_url}/v1/videos/video_nope/events", headers=auth(quiet.key))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert httpx.get(path + "?key=" + quiet.key).status_code == 401  # never a query parameter


def _queued_job(data_dir: Path) -> str:
    """A queued job of the served gateway's one key, written straight into its database."""

    async def write() -> str:
        db = Database(f"sqlite+aiosqlite:///{(data_dir / 'reapi.db').resolve()}")
        try:
            async with db.write() as session:
                key = (await session.execute(select(ApiKey))).scalars().one()
                session.add(
                    VideoJob(
                        id="video_served",
                        account_id=key.account_id,
                        api_key_id=key.id,
                        request_id="req_served",
                        model="sim-video",
                        status="queued",
                        progress=0,
                        attempts=1,
                        poll_failures=0,
                        next_poll_at=0,
                        created_at=time.time(),
                    )
                )
        finally:
            await db.dispose()
        return "video_served"

    return asyncio.run(write())


def test_the_server_stops_promptly_with_a_stream_open(tmp_path):
    """SIGTERM: open streams end, so the graceful shutdown does not wait out their lifetime."""
    env = {
        "REAPI_VIDEO_EVENTS_MAX_SECONDS": "600",
        "REAPI_VIDEO_EVENTS_HEARTBEAT_SECONDS": "600",
        "REAPI_RUN_BACKGROUND_TASKS": "false",
    }
    with served_gateway(tmp_path, env=env) as gw:
        video_id = _queued_job(tmp_path)
        with (
            httpx.Client(base_url=gw.base_url, timeout=10) as client,
            client.stream("GET", f"/v1/videos/{video_id}/events", headers=auth(gw.key)) as answer,
        ):
            assert answer.status_code == 200
            lines = answer.iter_lines()
            assert next(lines).startswith("retry:")
            started = time.monotonic()
            gw.process.send_signal(signal.SIGTERM)
            rest = list(lines)  # the server ends the stream
        assert any("video.updated" in line for line in rest)
        assert time.monotonic() - started < 10
        gw.process.wait(timeout=10)


def test_a_key_has_a_bounded_number_of_open_streams(tmp_path, migrated_template):
    with live_gateway(tmp_path / "d", migrated_template, video_events_max_streams=1) as gw:
        video = create(gw)
        path = f"{gw.base_url}/v1/videos/{video['id']}/events"
        with streaming(gw, video["id"]) as stream:
            stream.next()
            refused = httpx.get(path, headers=auth(gw.key))
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["code"] == "too_many_event_streams"
            assert int(refused.headers["retry-after"]) >= 1
        deadline = time.monotonic() + 5
        # a closed stream gives its place back as soon as the server sees the disconnect
        while (status := _status_of_stream(gw, video["id"])) == 429:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert status == 200


def _status_of_stream(gw: LiveGateway, video_id: str) -> int:
    client, context = open_stream(gw, video_id)
    with client, context as response:
        return response.status_code


def test_a_burst_of_streams_is_bounded_like_streams_opened_one_by_one(tmp_path, migrated_template):
    """Twelve requests at once: each is counted when admitted, not when its first chunk goes
    out (then many passed the check before any counted: up to 11 of 20 opened with a bound of 2)."""
    with live_gateway(tmp_path / "d", migrated_template, video_events_max_streams=2) as gw:
        path = f"/v1/videos/{create(gw)['id']}/events"

        async def burst() -> list[int]:
            limits = httpx.Limits(max_connections=20)
            async with httpx.AsyncClient(base_url=gw.base_url, timeout=10, limits=limits) as client:
                answers: list[httpx.Response] = []

                async def open_one() -> int:
                    request = client.build_request("GET", path, headers=auth(gw.key))
                    answers.append(await client.send(request, stream=True))
                    return answers[-1].status_code

                try:
                    return await asyncio.gather(*(open_one() for _ in range(12)))
                finally:
                    for answer in answers:
                        await answer.aclose()

        statuses = asyncio.run(burst())
        assert sorted(statuses) == [200, 200] + [429] * 10, statuses
        deadline = time.monotonic() + 5
        while gw.runtime.event_streams:  # every place given back once the streams closed
            assert time.monotonic() < deadline, gw.runtime.event_streams
            time.sleep(0.05)
