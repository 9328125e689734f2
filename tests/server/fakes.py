"""A fake OpenAI-wire upstream behind httpx.MockTransport: two hosts (primary, backup), each with
a fault switch, and video tasks whose final state the test chooses. Its error messages echo the
prompt and `user`, as OpenAI's own do, so that the gateway's reduction to codes is exercised."""

from __future__ import annotations

import base64
import itertools
import json
import time
from dataclasses import dataclass, field
from email.utils import formatdate

import anyio
import httpx

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\0" * 64
PRIMARY = "http://primary.test/v1"
BACKUP = "http://backup.test/v1"
BASE_URLS = {"primary": PRIMARY, "backup": BACKUP}
KEYS = {"primary": "sk-primary-secret", "backup": "sk-backup-secret"}


@dataclass
class Task:
    outcome: str  # completed | failed | blocked
    polls: int = 0


@dataclass
class FakeUpstream:
    #: host ("primary.test"/"backup.test") → ok | 500 | 400_echo | 429 | hang | reset |
    #: truncated | slow_body
    faults: dict[str, str] = field(default_factory=dict)
    #: faults for video polls only
    poll_faults: dict[str, str] = field(default_factory=dict)
    video_outcome: str = "completed"
    polls_before_done: int = 1
    #: While set, polls answer "queued" and count for nothing: a test keeps a job where it is
    #: (its stream open first) however soon the poller comes.
    videos_held: bool = False
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    #: The headers of each request, in the order of `calls`.
    headers: list[httpx.Headers] = field(default_factory=list)
    tasks: dict[str, Task] = field(default_factory=dict)
    hang_seconds: float = 30.0
    #: When set, a "hang" lasts until this event is set (at most `hang_seconds`): a test holds
    #: a request at the upstream for exactly as long as its step takes, whatever the load.
    release: anyio.Event | None = None
    #: When set, set as a hang begins: the request is at the upstream.
    held: anyio.Event | None = None
    #: What a finished task's video download returns.
    video_body: bytes = MP4
    #: When set, the video download sends this many bytes, then stalls for `hang_seconds`.
    video_stall_after: int | None = None
    #: What image answers hold, and the `output_format` they claim it is.
    image_body: bytes = PNG
    image_format: str = "png"
    #: When set, image answers hold this URL (`{"url": ...}`) instead of the bytes.
    image_url: str | None = None
    #: What any other host answers (a URL an answer named: a CDN, or a host inside the network).
    elsewhere: bytes = PNG
    #: Images an answer holds beyond the `n` asked (a model making a set, a broken answer).
    extra_images: int = 0
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def count(self, path_suffix: str, method: str = "POST", host: str | None = None) -> int:
        return sum(
            1
            for h, m, p in self.calls
            if m == method and p.endswith(path_suffix) and (host is None or h == host)
        )

    async def handle(self, request: httpx.Request) -> httpx.Response:
        host, path, method = request.url.host, request.url.path, request.method
        self.calls.append((host, method, path))
        self.headers.append(request.headers)
        if host not in ("primary.test", "backup.test"):
            return httpx.Response(200, content=self.elsewhere)
        polling = method == "GET" and "/videos/" in path and not path.endswith("/content")
        fault = (self.poll_faults if polling else self.faults).get(host, "ok")
        if fault == "hang":
            await self._hang()
        if fault == "reset":
            raise httpx.ReadError("connection reset by peer")
        if fault == "500":
            return httpx.Response(500, json={"error": {"message": "server error", "code": None}})
        if fault == "429":
            return httpx.Response(
                429, headers={"retry-after": "7"}, json={"error": {"code": "rate_limit_exceeded"}}
            )
        if fault == "429_date":
            when = formatdate(time.time() + 30, usegmt=True)
            return httpx.Response(429, headers={"retry-after": when}, json={"error": {}})
        if fault == "400_echo":
            echoed = _echo(request)
            return httpx.Response(
                400,
                json={"error": {"message": f"Invalid request: {echoed}", "code": "invalid_value"}},
            )
        if fault == "slow_body":
            return httpx.Response(200, stream=_SlowBody(self.hang_seconds))
        if fault == "truncated":
            return httpx.Response(200, content=b'{"created": 1, "data": [{"b64_')
        return self._answer(request, host, method, path)

    async def _hang(self) -> None:
        if self.held is not None:
            self.held.set()
        if self.release is None:
            await anyio.sleep(self.hang_seconds)
            return
        with anyio.move_on_after(self.hang_seconds):
            await self.release.wait()

    def _answer(self, request: httpx.Request, host: str, method: str, path: str) -> httpx.Response:
        if path.endswith("/images/generations") or path.endswith("/images/edits"):
            n = 1
            if path.endswith("/generations"):
                n = int(json.loads(request.content).get("n", 1))
            item = {"b64_json": base64.b64encode(self.image_body).decode()}
            if self.image_url is not None:
                item = {"url": self.image_url}
            return httpx.Response(
                200,
                json={
                    "created": 1,
                    "data": [item] * (n + self.extra_images),
                    "output_format": self.image_format,
                    "size": "1024x1024",
                    "quality": "high",
                    "background": "opaque",
                },
            )
        if path.endswith("/videos") and method == "POST":
            task_id = f"task_{host.split('.')[0]}_{next(self._ids)}"
            self.tasks[task_id] = Task(self.video_outcome)
            return httpx.Response(200, json={"id": task_id, "object": "video", "status": "queued"})
        parts = path.split("/")
        if "videos" in parts:
            task_id = parts[parts.index("videos") + 1]
            task = self.tasks.get(task_id)
            if task is None:
                return httpx.Response(404, json={"error": {"code": "not_found"}})
            if method == "DELETE":
                return httpx.Response(200, json={"id": task_id, "deleted": True})
            if path.endswith("/content"):
                if request.url.params.get("variant") == "thumbnail":
                    return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})
                if self.video_stall_after is not None:
                    head = self.video_body[: self.video_stall_after]
                    return httpx.Response(
                        200,
                        stream=_StalledBody(head, self.hang_seconds),
                        headers={"content-type": "video/mp4"},
                    )
                return httpx.Response(
                    200, content=self.video_body, headers={"content-type": "video/mp4"}
                )
            if self.videos_held:
                return httpx.Response(200, json={"id": task_id, "status": "queued", "progress": 0})
            task.polls += 1
            if task.polls <= self.polls_before_done:
                return httpx.Response(
                    200, json={"id": task_id, "status": "in_progress", "progress": 40}
                )
            if task.outcome == "completed":
                return httpx.Response(
                    200,
                    json={"id": task_id, "status": "completed", "seconds": "4", "size": "1280x720"},
                )
            code = "moderation_blocked" if task.outcome == "blocked" else "internal_error"
            return httpx.Response(
                200, json={"id": task_id, "status": "failed", "error": {"code": code}}
            )
        return httpx.Response(404, json={"error": {"code": "not_found"}})


class _SlowBody(httpx.AsyncByteStream):
    """Headers at once, then the body stalls: the engine's body deadline must cut it off."""

    def __init__(self, stall: float) -> None:
        self.stall = stall

    async def __aiter__(self):
        yield b'{"created": 1, "data": ['
        await anyio.sleep(self.stall)
        yield b"]}"


class _StalledBody(httpx.AsyncByteStream):
    """A download that sends its first bytes, then nothing for `stall` seconds."""

    def __init__(self, head: bytes, stall: float) -> None:
        self.head = head
        self.stall = stall

    async def __aiter__(self):
        for start in range(0, len(self.head), 64 * 1024):
            yield self.head[start : start + 64 * 1024]
        await anyio.sleep(self.stall)


def _echo(request: httpx.Request) -> str:
    """What a careless upstream puts in its error message: the submitted text."""
    try:
        body = json.loads(request.content)
        return f"{body.get('prompt')} (user {body.get('user')})"
    except ValueError:
        return request.content[:2000].decode("latin-1")
