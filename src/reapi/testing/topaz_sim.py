"""A simulator of the Topaz Labs Video API for tests: `POST /video/`, `PATCH /video/{id}/accept`,
the signed upload URLs, `PATCH /video/{id}/complete-upload/` and `GET /video/{id}/status`
(PROVIDERS.md §10).

It speaks Topaz's wire format field by field: `X-API-Key`, a create body whose `source`,
`filters` and `output` are validated strictly, FastAPI-style errors (`{"detail": "..."}`, or a
list of `{loc, msg, type}` for a 422), and credits reserved at accept. Accept hands out one
upload URL per `part_bytes` of the declared size; the URLs point back at the simulator
(`<origin>/uploads/<id>/<part>?X-Amz-Signature=...`), take a `PUT` without the key (a request
carrying `X-API-Key` there is refused, so a leaked key shows) and answer with a quoted MD5
`ETag`, as object storage does. Complete-upload checks each part's ETag and that the parts add
up to the declared size. The status then goes preprocessing → processing → complete with a
signed `download.url` back at the simulator (the enhanced video is the sample MP4).
Status words are assumed (UNVERIFIED in Topaz's reference), as in the adapter.

Fault switches (`sim.faults`) apply to the create call and answer the Topaz way: `ERROR_500` /
`ERROR_503`, `RATE_LIMIT` (429 with Retry-After), `QUOTA_EXHAUSTED` (402 at accept, when credits
are reserved; assumed), `TASK_FAILS` (the request ends `failed`). Topaz documents no content
policy, so `CONTENT_POLICY` has no Topaz form and is ignored. Refuse, reset, hang, slow body and
truncated JSON come from `SimServer`.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from math import ceil
from typing import Any

from ._faults import Fault
from ._media import sample_mp4
from ._messages import Answer, SimRequest, json_answer
from ._provider_sim import ProviderSimulator, Refusal, json_object

__all__ = ["TopazSimulator"]

_CONTAINERS = frozenset({"mp4", "mov", "mkv", "m4v", "webm"})
_MODELS = frozenset({"prob-4", "ahq-12", "amq-13", "alq-13", "iris-3", "nyx-3", "gcg-5", "slp-2.6"})
_ROUTE = re.compile(
    r"/video/(?:(?P<id>[0-9a-f\-]{36})/(?P<step>accept|complete-upload/|status))?"
    r"|/uploads/(?P<upload>[0-9a-f\-]{36})/(?P<part>\d{1,3})"
    r"|/files/(?P<file>[0-9a-f\-]{36})\.mp4"
)
#: Topaz splits uploads in 500 MB parts.
_PART_BYTES = 500 * 1024 * 1024


def _detail(status: int, detail: object, headers: Mapping[str, str] | None = None) -> Refusal:
    return Refusal(json_answer(status, {"detail": detail}, headers))


def _invalid(*loc: str) -> Refusal:
    return _detail(422, [{"loc": ["body", *loc], "msg": "invalid value", "type": "value_error"}])


@dataclass
class _Request:
    size: int
    parts: int = 0
    state: str = "requested"
    fails: bool = False
    short_of_credits: bool = False
    polls: int = 0
    uploads: dict[int, bytes] = field(default_factory=dict)


class TopazSimulator(ProviderSimulator):
    """One simulated Topaz account. Thread-safe; state lives in memory."""

    #: The path the provider's base URL ends with.
    base_path = ""
    _routes = _ROUTE
    #: Polls after complete-upload before the request is complete.
    polls_before_done: int

    def __init__(
        self, api_key: str = "sk-sim", *, polls_before_done: int = 2, part_bytes: int = _PART_BYTES
    ) -> None:
        super().__init__(api_key, polls_before_done=polls_before_done)
        #: Bytes per upload URL (lower it to exercise multi-part uploads).
        self.part_bytes = part_bytes
        #: The bytes received for each finished upload, for assertions.
        self.received: dict[str, bytes] = {}
        self._videos: dict[str, _Request] = {}

    # -- entry point -------------------------------------------------------------------------
    def _serve_without_key(self, request: SimRequest, route: re.Match[str]) -> Answer | None:
        """Upload and result URLs are signed object-storage URLs: they take no key."""
        if route["file"]:
            return self._serve_result(route["file"], request.method, request.query)
        if route["upload"]:
            return self._put(route["upload"], int(route["part"]), request)
        return None

    def _serve(self, request: SimRequest, route: re.Match[str]) -> Answer:
        step, method = route["step"], request.method
        if step is None and method == "POST":
            return self._create(_json_body(request.body))
        if step == "accept" and method == "PATCH":
            return self._accept(route["id"], request.origin)
        if step == "complete-upload/" and method == "PATCH":
            return self._complete(route["id"], _json_body(request.body))
        if step == "status" and method == "GET":
            return self._status(route["id"], request.origin)
        raise _detail(405, "Method Not Allowed")

    def _unknown_path(self) -> Refusal:
        return _detail(404, "Not Found")

    def _template(self, route: re.Match[str]) -> str:
        if route["file"]:
            return "/files/{id}.mp4"
        if route["upload"]:
            return "/uploads/{id}/{part}"
        if route["step"]:
            return "/video/{id}/" + route["step"]
        return "/video/"

    def _authenticate(self, request: SimRequest) -> None:
        if request.headers.get("x-api-key") != self.api_key:
            raise _detail(401, "Unauthorized")

    def _find(self, request_id: str) -> _Request:
        video = self._videos.get(request_id)
        if video is None:
            raise _detail(404, "Enhancement request with the provided ID not found")
        return video

    # -- create, accept, upload, complete ------------------------------------------------------
    def _create(self, request: dict[str, Any]) -> Answer:
        source = _check_source(request.get("source"))
        _check_filters(request.get("filters"))
        _check_output(request.get("output"))
        if set(request) - {"source", "filters", "output", "destination", "notifications"}:
            raise _invalid(sorted(request)[0])
        state = self.faults.take()
        if state.fault in (Fault.ERROR_500, Fault.ERROR_503):
            raise _detail(500 if state.fault is Fault.ERROR_500 else 503, "Internal server error")
        if state.fault is Fault.RATE_LIMIT:
            raise _detail(429, "Too Many Requests", {"retry-after": str(state.retry_after)})
        request_id = str(uuid.uuid4())
        with self._lock:
            self._videos[request_id] = _Request(
                size=source["size"],
                fails=state.fault is Fault.TASK_FAILS,
                short_of_credits=state.fault is Fault.QUOTA_EXHAUSTED,
            )
        seconds = ceil(source["duration"])
        estimates = {"cost": [seconds, seconds + 1], "time": [10 * seconds, 20 * seconds]}
        return json_answer(200, {"requestId": request_id, "estimates": estimates})

    def _accept(self, request_id: str, origin: str) -> Answer:
        with self._lock:
            video = self._find(request_id)
            if video.short_of_credits:
                raise _detail(402, "Insufficient credits")
            if video.state != "requested":
                raise _detail(409, "Request already accepted")
            video.state = "accepted"
            video.parts = max(ceil(video.size / self.part_bytes), 1)
        urls = [
            f"{origin}/uploads/{request_id}/{part}?X-Amz-Signature=sim{part}"
            for part in range(1, video.parts + 1)
        ]
        return json_answer(200, {"uploadId": f"upload-{request_id[:8]}", "urls": urls})

    def _put(self, request_id: str, part: int, request: SimRequest) -> Answer:
        if request.method != "PUT" or "X-Amz-Signature=" not in request.query:
            raise _detail(403, "SignatureDoesNotMatch")
        if "x-api-key" in request.headers or "authorization" in request.headers:
            raise _detail(400, "Only one auth mechanism allowed")  # the key must not travel here
        with self._lock:
            video = self._find(request_id)
            if video.state != "accepted" or not 1 <= part <= video.parts:
                raise _detail(403, "SignatureDoesNotMatch")
            video.uploads[part] = request.body
        return 200, {"etag": f'"{_md5(request.body)}"'}, b""

    def _complete(self, request_id: str, request: dict[str, Any]) -> Answer:
        results = request.get("uploadResults")
        if not isinstance(results, list) or set(request) - {"uploadResults", "md5Hash"}:
            raise _invalid("uploadResults")
        with self._lock:
            video = self._find(request_id)
            if video.state != "accepted":
                raise _detail(409, "Upload already completed")
            etags = {r.get("partNum"): r.get("eTag") for r in results if isinstance(r, dict)}
            for part in range(1, video.parts + 1):
                data = video.uploads.get(part)
                expected = _md5(data) if data is not None else None
                if expected is None or str(etags.get(part, "")).strip('"') != expected:
                    raise _detail(400, f"Part {part} is missing or its ETag does not match")
            assembled = b"".join(video.uploads[p] for p in range(1, video.parts + 1))
            if len(assembled) != video.size or len(etags) != video.parts:
                raise _detail(400, "The uploaded size does not match the request")
            video.state = "preprocessing"
            self.received[request_id] = assembled
        return json_answer(200, {"message": "Processing has been queued"})

    # -- status --------------------------------------------------------------------------------
    def _status(self, request_id: str, origin: str) -> Answer:
        with self._lock:
            video = self._find(request_id)
            if video.state in ("preprocessing", "processing"):
                video.polls += 1
                if video.polls > self.polls_before_done:
                    video.state = "failed" if video.fails else "complete"
                elif video.polls > 1:
                    video.state = "processing"
            body: dict[str, Any] = {
                "status": video.state,
                "progress": {"complete": 100, "processing": 50}.get(video.state, 0),
                "estimates": {"cost": [1, 2], "time": [10, 20]},
                "averageFps": 24.0,
                "combinedFps": 48.0,
                "processingJobs": [],
            }
            if video.state == "failed":
                body["message"] = "Processing failed"
            if video.state == "complete":
                now_ms = int(time.time() * 1000)
                body["outputSize"] = str(len(sample_mp4()))
                body["download"] = {
                    "url": f"{origin}/files/{request_id}.mp4?X-Amz-Signature=dl",
                    "expiresIn": 86_400_000,
                    "expiresAt": now_ms + 86_400_000,
                }
        return json_answer(200, body)

    def _serve_result(self, request_id: str, method: str, query: str) -> Answer:
        with self._lock:
            video = self._videos.get(request_id)
        if video is None or video.state != "complete" or method != "GET" or not query:
            raise _detail(403, "AccessDenied")
        return 200, {"content-type": "video/mp4"}, sample_mp4()


def _md5(data: bytes) -> str:
    """What object storage puts in an ETag for a single-part upload."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _number(value: object, *loc: str, integer: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        raise _invalid(*loc)
    return value


def _resolution(value: object, *loc: str) -> None:
    if not isinstance(value, dict) or set(value) != {"width", "height"}:
        raise _invalid(*loc)
    _number(value["width"], *loc, "width", integer=True)
    _number(value["height"], *loc, "height", integer=True)


def _check_source(source: object) -> dict[str, Any]:
    """Every field but md5Hash and external is required on `POST /video/`."""
    required = {"container", "size", "duration", "frameRate", "frameCount", "resolution"}
    if not isinstance(source, dict) or not required <= set(source):
        raise _invalid("source")
    if set(source) - required - {"md5Hash", "external"}:
        raise _invalid("source")
    if str(source["container"]).lower() not in _CONTAINERS:
        raise _invalid("source", "container")
    _number(source["size"], "source", "size", integer=True)
    _number(source["duration"], "source", "duration")
    _number(source["frameRate"], "source", "frameRate")
    _number(source["frameCount"], "source", "frameCount", integer=True)
    _resolution(source["resolution"], "source", "resolution")
    return source


def _check_filters(filters: object) -> None:
    if not isinstance(filters, list) or not filters:
        raise _invalid("filters")
    for index, item in enumerate(filters):
        if not isinstance(item, dict) or item.get("model") not in _MODELS:
            raise _invalid("filters", str(index), "model")


def _check_output(output: object) -> None:
    known = {
        "resolution",
        "frameRate",
        "audioCodec",
        "audioTransfer",
        "container",
        "videoEncoder",
        "videoProfile",
        "dynamicCompressionLevel",
        "cropToFit",
    }
    if not isinstance(output, dict) or set(output) - known or "resolution" not in output:
        raise _invalid("output")
    _resolution(output["resolution"], "output", "resolution")
    if "frameRate" in output:
        _number(output["frameRate"], "output", "frameRate")
    if output.get("audioTransfer", "Copy") not in ("Copy", "Convert", "None"):
        raise _invalid("output", "audioTransfer")
    if output.get("audioCodec", "AAC") not in ("AAC", "AC3", "PCM"):
        raise _invalid("output", "audioCodec")
    if str(output.get("container", "mp4")).lower() not in _CONTAINERS:
        raise _invalid("output", "container")


def _json_body(body: bytes) -> dict[str, Any]:
    return json_object(body, lambda: _detail(400, "Invalid JSON body"))
