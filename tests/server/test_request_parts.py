"""What the image endpoints compute per request, computed more cheaply, with the same result:
a request's base URL (cached by its parts) and a body's core options (no model dump); and a
cached key is served without its shape being checked again, while garbage still is refused."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from reapi_server.openai_api.dependencies import _base_url
from reapi_server.openai_api.requests import ImageEditBody, ImageEditForm, ImageGenerationBody

SCOPES = [
    {"scheme": "http", "server": ("127.0.0.1", 8000), "host": "127.0.0.1:8000"},
    {"scheme": "https", "server": ("10.0.0.1", 443), "host": "gw.example"},
    {"scheme": "http", "server": ("::1", 80), "host": "[::1]"},
    {"scheme": "http", "server": None, "host": None},
    {"scheme": "http", "server": ("127.0.0.1", 8000), "host": None},
    {"scheme": "http", "server": ("h", 1), "host": "h:1", "root_path": "/api"},
    {"scheme": "http", "server": ("h", 1), "host": "h:1", "root_path": "/a", "app_root_path": "/b"},
]


@pytest.mark.parametrize("parts", SCOPES)
def test_the_cached_base_url_is_starlettes(parts):
    host = parts["host"]
    scope = {
        "type": "http",
        "scheme": parts["scheme"],
        "server": parts["server"],
        "path": "/v1/images/generations",
        "query_string": b"a=1",
        "root_path": parts.get("root_path", ""),
        "headers": [(b"content-type", b"application/json")]
        + ([(b"host", host.encode())] if host else []),
    }
    if "app_root_path" in parts:
        scope["app_root_path"] = parts["app_root_path"]
    expected = str(Request(scope).base_url)
    cached = _base_url(
        scope["scheme"],
        scope["server"],
        host,
        scope["root_path"],
        scope.get("app_root_path"),
    )
    assert cached == expected


BODIES = [
    (ImageGenerationBody, {"prompt": "p"}),
    (
        ImageGenerationBody,
        {
            "prompt": "p",
            "model": "m",
            "n": 2,
            "size": "1024x1024",
            "quality": "high",
            "background": "opaque",
            "output_format": "png",
            "output_compression": 0,
            "response_format": "url",
            "aspect_ratio": "1:1",
            "resolution": "1K",
            "user": "u",
            "stream": False,
            "moderation": "low",
            "seed": 0,
            "style": "vivid",
            "unknown": {"a": 1},
        },
    ),
    (ImageEditForm, {"prompt": "p", "n": "3", "input_fidelity": "high"}),
    (
        ImageEditBody,
        {
            "prompt": "p",
            "images": [{"file_id": "file_1"}],
            "mask": {"image_url": "https://x.test/m.png"},
            "partial_images": 1,
            "input_fidelity": "low",
        },
    ),
]


@pytest.mark.parametrize(("model", "data"), BODIES)
def test_options_are_the_dumped_fields_but_the_named_ones(model, data):
    body = model.model_validate(data)
    skip = {"prompt", "model", "user", "stream", "image", "images", "mask", "partial_images"}
    dumped = {k: v for k, v in body.model_dump().items() if v is not None and k not in skip}
    assert body.options() == dumped


async def test_a_cached_key_is_served_and_garbage_still_refused(gateway):
    from tests.server.helpers import auth

    _, key = await gateway.account()
    body = {"model": "gpt-image-2", "prompt": "p"}
    path = "/v1/images/generations"
    assert (await gateway.client.post(path, json=body, headers=auth(key))).status_code == 200
    assert (await gateway.client.post(path, json=body, headers=auth(key))).status_code == 200
    for garbage in (key[:-1] + ("A" if key[-1] != "A" else "B"), key + "x", "rk_live_x"):
        refused = await gateway.client.post(path, json=body, headers=auth(garbage))
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_api_key"
