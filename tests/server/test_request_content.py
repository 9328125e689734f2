"""Request content outside the sealed Payload (issue 9 A5).

- Every error the gateway raises for bad input carries no chained context: a marker sent in
  malformed JSON, wrong types, a bad multipart body, an unknown model, bad sizes, refused URLs,
  bad data URLs, bad idempotency keys, an oversize body, ... is found in no `__context__` or
  `__cause__`, nor in the error itself, nor (once answered) in the locals of the frames the
  error went through.
- While the upstream call is in flight, nothing holds the raw body, its parsed JSON or form, or
  the body model: only the Payload does.
- The body models' reprs hide every value.
"""

from __future__ import annotations

import asyncio
import base64
import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from tests.server.errors_seen import hook_error_handlers
from tests.server.fakes import PNG, FakeUpstream
from tests.server.helpers import auth

from reapi.testing import png_bytes
from reapi_server.json_api.bodies import FormFile, ParsedForm
from reapi_server.openai_api.requests import (
    ImageEditBody,
    ImageEditForm,
    ImageGenerationBody,
    ImageRef,
    VideoBody,
)
from reapi_server.references.reference import Reference

MARKER = "MARKER-input-71d3e0"
IMAGE = png_bytes(16, 16)


@pytest.fixture
async def gateway(make_gateway, media_host):
    gateway = await make_gateway(max_body_bytes=256 * 1024)
    gateway.rt.fetcher = gateway.rt.engine.fetcher = media_host.async_fetcher(
        gateway.rt.settings.url_policy
    )
    return gateway


def data_url(content: bytes) -> str:
    return f"data:image/png;base64,{base64.b64encode(content).decode()}"


async def _send_every_kind_of_bad_input(gateway, key: str, media_host) -> list[int]:
    client, statuses = gateway.client, []

    async def post(path: str, **kwargs: Any) -> None:
        headers = {**auth(key), **kwargs.pop("headers", {})}
        statuses.append((await client.post(path, headers=headers, **kwargs)).status_code)

    async def edit(images: list[dict[str, str]], **extra: Any) -> None:
        body = {"model": "gpt-image-2", "prompt": MARKER, "images": images, **extra}
        await post("/v1/images/edits", json=body)

    async def video(**fields: Any) -> None:
        body = {"model": "sim-video", "prompt": MARKER, "size": "1280x720", **fields}
        await post("/v1/videos", json=body)

    json_type = {"content-type": "application/json"}
    # malformed JSON, wrong types, unknown fields
    await post(
        "/v1/images/generations", content=f'{{"prompt": "{MARKER}'.encode(), headers=json_type
    )
    await post("/v1/videos", content=f'{{"prompt": "{MARKER}", }}'.encode(), headers=json_type)
    await post("/v1/images/generations", json={"prompt": {"x": MARKER}, "n": MARKER})
    await post("/v1/images/generations", json={"prompt": MARKER, "n": True, "user": [MARKER]})
    await post("/v1/images/generations", json=[MARKER])
    await edit([{"image_url": MARKER, "file_id": MARKER}])
    await edit([{"image_url": "https://x.test/a.png", "detail": MARKER}])
    # bad multipart bodies, a wrong content type
    multipart = {"content-type": "multipart/form-data; boundary=b"}
    broken = f"--b\r\n{MARKER}\r\n\r\nx\r\n--b--\r\n".encode()
    await post("/v1/images/edits", content=broken, headers=multipart)
    await post("/v1/videos", content=broken, headers=multipart)
    await post(
        "/v1/images/edits",
        content=MARKER.encode(),
        headers={"content-type": "multipart/form-data"},
    )
    await post("/v1/images/edits", content=MARKER.encode(), headers={"content-type": "text/plain"})
    await post(
        "/v1/images/edits", data={"prompt": MARKER, "model": "gpt-image-2"}, files={"x": b"y"}
    )
    # unknown models, bad sizes and other values
    # A model id is named by a 64-character excerpt (issue 9 A8): the marker sits beyond it.
    await post("/v1/images/generations", json={"prompt": MARKER, "model": "m" * 64 + MARKER})
    await post("/v1/images/generations", json={"prompt": MARKER, "size": f"{MARKER}x16"})
    await post("/v1/images/generations", json={"prompt": MARKER, "quality": MARKER})
    await video(model="m" * 64 + MARKER)
    await video(seconds=MARKER)
    await video(size=f"{MARKER}x720")
    await post(
        "/v1/videos",
        data={"model": "sim-video", "prompt": MARKER, "input_reference": MARKER},
    )
    await post(
        "/v1/images/edits",
        data={"prompt": MARKER, "model": "gpt-image-2"},
        files={"image": ("a.png", MARKER.encode(), "image/png")},
    )
    # refused URLs (before any connection, on a redirect, by the host), bad data URLs, file ids
    for url in (
        f"http://127.0.0.1/{MARKER}.png",
        f"ftp://media.example.com/{MARKER}",
        f"http://[{MARKER}/a.png",
        f"http://user:{MARKER}@media.example.com/a.png",
        media_host.redirect("/go", f"http://169.254.169.254/{MARKER}") + f"?sig={MARKER}",
        media_host.serve("/missing.png", b"", status=404) + f"?sig={MARKER}",
        media_host.serve("/page.png", f"<html>{MARKER}</html>".encode()) + f"?sig={MARKER}",
        f"http://media.example.com:1/{MARKER}.png",
        f"data:image/png;base64,{MARKER}!!",
        f"data:image/png,{MARKER}",
        data_url(MARKER.encode() * 4),
    ):
        await edit([{"image_url": url}])
        await edit([{"image_url": data_url(IMAGE)}], mask={"image_url": url})
        await video(input_reference={"image_url": url})
    await edit([{"file_id": MARKER}])
    await video(input_reference={"file_id": MARKER})
    # bad idempotency keys, an oversize body, a bad key, bad query parameters
    await post(
        "/v1/images/generations",
        json={"prompt": MARKER},
        headers={"idempotency-key": MARKER * 20},
    )
    await post(
        "/v1/images/generations",
        json={"prompt": MARKER, "user": MARKER * 20_000},
    )
    statuses.append(
        (
            await client.post(
                "/v1/images/generations",
                json={"prompt": MARKER},
                headers={"authorization": f"Bearer {MARKER}"},
            )
        ).status_code
    )
    # an upstream that echoes the prompt in its error
    gateway.upstream.faults = {"primary.test": "400_echo"}
    await post("/v1/images/generations", json={"model": "gpt-image-2", "prompt": MARKER})
    await video()
    gateway.upstream.faults = {}
    return statuses


async def test_no_error_raised_for_bad_input_chains_or_keeps_it(gateway, media_host):
    seen = hook_error_handlers(gateway.app, [MARKER])
    _, key = await gateway.account(credits=100_000)
    statuses = await _send_every_kind_of_bad_input(gateway, key, media_host)
    assert all(400 <= status < 500 for status in statuses), str(list(enumerate(statuses)))
    assert len(seen) == len(statuses) >= 50
    for record in seen:
        assert record.chained == [], (record.kind, record.status, record.chained)
        assert not record.marked, (record.kind, record.status)
        assert record.frames_marked == [], (record.kind, record.status, record.frames_marked)
    kinds = {record.kind for record in seen}
    assert {"GatewayError", "RequestValidationError", "InvalidRequestError"} <= kinds
    assert {"ModelNotFoundError", "PayloadTooLarge", "BadRequestError"} <= kinds


# -- nothing but the Payload holds the body during the upstream call ----------------------------
@dataclass
class WatchingUpstream(FakeUpstream):
    """The fake upstream; on each call it looks through the gateway's heap for request content
    that something other than the Payload and the outgoing request still holds."""

    watching: bool = False
    found: list[list[str]] = field(default_factory=list)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if self.watching and request.method == "POST":
            self.found.append(_holders_of_request_content())
        return await super().handle(request)


#: In a body field the gateway ignores: only the raw body and its parsed JSON ever hold it.
IGNORED = "MARKER-ignored-5a0c2d"
#: A unique image whose base64 (in a data URL) only the raw body and its JSON hold.
DATA_IMAGE = png_bytes(16, 16) + b"MARKER-data-image-88e1"
DATA_B64 = base64.b64encode(DATA_IMAGE).decode()[-40:]
BODY_TYPES = (ImageGenerationBody, ImageEditForm, ImageEditBody, ImageRef, VideoBody)


def _holders_of_request_content() -> list[str]:
    gc.collect()
    holders = []
    for obj in gc.get_objects():
        if isinstance(obj, (*BODY_TYPES, ParsedForm, FormFile)):
            holders.append(type(obj).__name__)
            continue
        for ref in gc.get_referents(obj):
            if ref is IGNORED or ref is DATA_B64:
                continue  # this module's own constants
            if isinstance(ref, str | bytes | bytearray) and (
                (IGNORED in ref if isinstance(ref, str) else IGNORED.encode() in ref)
                or (DATA_B64 in ref if isinstance(ref, str) else DATA_B64.encode() in ref)
            ):
                holders.append(type(obj).__name__)
    return holders


@pytest.fixture
def upstream() -> WatchingUpstream:
    return WatchingUpstream()


async def _asgi_call(
    app: Any, method: str, path: str, headers: dict[str, str], body: list[bytes]
) -> int:
    """One request straight into the ASGI app; `body` is handed over chunk by chunk and emptied,
    so the test keeps no copy of what it sent."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1234),
        "server": ("gateway.test", 80),
    }
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        if body:
            return {"type": "http.request", "body": body.pop(0), "more_body": bool(body)}
        await asyncio.Event().wait()  # the client never goes away
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


def _json_parts(document: dict[str, Any]) -> list[bytes]:
    import json

    return [json.dumps(document).encode()]


def _multipart_parts(fields: dict[str, str], files: dict[str, bytes]) -> tuple[str, list[bytes]]:
    request = httpx.Request(
        "POST",
        "http://x/",
        data=fields,
        files={name: (f"{name}.png", content, "image/png") for name, content in files.items()},
    )
    return request.headers["content-type"], [request.read()]


def _data_url_ref() -> dict[str, str]:
    return {"image_url": f"data:image/png;base64,{base64.b64encode(DATA_IMAGE).decode()}"}


def _requests(key: str) -> list[Callable[[], tuple[str, dict[str, str], list[bytes]]]]:
    """Each request built only when sent: the test holds no body while another is in flight."""
    as_json = {**auth(key), "content-type": "application/json"}

    def json_call(path: str, document: dict[str, Any]) -> Any:
        return lambda: (path, as_json, _json_parts({**document, "x_ignored": IGNORED}))

    def form_call(path: str, fields: dict[str, str], files: dict[str, bytes]) -> Any:
        def build() -> tuple[str, dict[str, str], list[bytes]]:
            content_type, parts = _multipart_parts({**fields, "x_ignored": IGNORED}, files)
            return path, {**auth(key), "content-type": content_type}, parts

        return build

    video = {"model": "sim-video", "prompt": "p", "size": "1280x720"}
    return [
        json_call("/v1/images/generations", {"prompt": "p"}),
        json_call("/v1/images/edits", {"prompt": "p", "images": [_data_url_ref()]}),
        json_call("/v1/videos", {**video, "input_reference": _data_url_ref()}),
        form_call("/v1/images/edits", {"prompt": "p", "model": "gpt-image-2"}, {"image": PNG}),
        form_call("/v1/videos", video, {"input_reference": DATA_IMAGE}),
    ]


async def test_nothing_but_the_payload_holds_the_body_during_the_upstream_call(gateway):
    _, key = await gateway.account(credits=100_000)
    requests = _requests(key)
    gateway.upstream.watching = True
    for build in requests:
        assert await _asgi_call(gateway.app, "POST", *build()) == 200
    assert gateway.upstream.found == [[]] * len(requests)


# -- reprs --------------------------------------------------------------------------------------
def test_body_models_hide_every_value():
    models = [
        ImageGenerationBody(prompt=MARKER, user=MARKER, size=MARKER, n=2),
        ImageEditForm(prompt=MARKER, user=MARKER),
        ImageEditBody(prompt=MARKER, images=[{"image_url": MARKER}], mask={"file_id": MARKER}),
        VideoBody(
            model=MARKER, prompt=MARKER, input_reference={"image_url": MARKER}, seconds=MARKER
        ),
        ImageRef(image_url=MARKER),
        ParsedForm([("prompt", MARKER)], [(MARKER, FormFile(MARKER, "image/png", b"x"))]),
        FormFile(MARKER, MARKER, MARKER.encode()),
        Reference(MARKER[:3], frozenset({"image/png"}), url=MARKER, file_id=MARKER),
    ]
    for model in models:
        for text in (repr(model), str(model), f"{model}", f"{model!r}", repr([model])):
            assert MARKER not in text, text
    assert "prompt=<19 chars>" in repr(models[0])  # which fields, and how large: no more
