"""Every endpoint's answers validate against OpenAI's own schemas for the operation
(data/openai-openapi-subset.json, cut from openai/openai-openapi, MIT licensed)."""

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from tests.server.fakes import PNG
from tests.server.helpers import auth

from reapi_server.jobs.poller import JobPoller

SPEC = json.loads((Path(__file__).parent / "data" / "openai-openapi-subset.json").read_text())


def check(schema_name: str, body: object) -> None:
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": SPEC["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


def check_error(body: dict) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert isinstance(body["error"]["message"], str) and isinstance(body["error"]["type"], str)


async def test_image_answers(gateway):
    _, key = await gateway.account()
    generated = await gateway.client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "p", "size": "1024x1024", "quality": "high"},
        headers=auth(key),
    )
    check("ImagesResponse", generated.json())
    as_url = await gateway.client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "p", "response_format": "url"},
        headers=auth(key),
    )
    check("ImagesResponse", as_url.json())
    edited = await gateway.client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": "p"},
        files={"image": ("a.png", PNG, "image/png")},
        headers=auth(key),
    )
    check("ImagesResponse", edited.json())


async def test_video_answers(gateway):
    _, key = await gateway.account()
    created = await gateway.client.post(
        "/v1/videos",
        json={"model": "sim-video", "prompt": "p", "seconds": "8", "size": "720x1280"},
        headers=auth(key),
    )
    check("VideoResource", created.json())
    video_id = created.json()["id"]
    for _ in range(2):
        await JobPoller(gateway.rt).run_once()
        check(
            "VideoResource",
            (await gateway.client.get(f"/v1/videos/{video_id}", headers=auth(key))).json(),
        )
    check("VideoListResource", (await gateway.client.get("/v1/videos", headers=auth(key))).json())
    gateway.upstream.video_outcome = "blocked"
    failed = await gateway.client.post(
        "/v1/videos", json={"model": "sim-video", "prompt": "p"}, headers=auth(key)
    )
    for _ in range(3):
        await JobPoller(gateway.rt).run_once()
    body = (await gateway.client.get(f"/v1/videos/{failed.json()['id']}", headers=auth(key))).json()
    assert body["status"] == "failed"
    check("VideoResource", body)
    deleted = await gateway.client.delete(f"/v1/videos/{video_id}", headers=auth(key))
    check("DeletedVideoResource", deleted.json())


async def test_model_answers(gateway):
    _, key = await gateway.account()
    check("ListModelsResponse", (await gateway.client.get("/v1/models", headers=auth(key))).json())
    check("Model", (await gateway.client.get("/v1/models/gpt-image-2", headers=auth(key))).json())


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/v1/models", {}),
        ("POST", "/v1/images/generations", {"json": {"prompt": ""}}),
        ("POST", "/v1/images/generations", {"json": {"prompt": "p", "model": "nope"}}),
        ("POST", "/v1/images/generations", {"content": b"{not json"}),
        ("POST", "/v1/images/edits", {"json": {"prompt": "p"}}),
        ("POST", "/v1/videos", {"json": {"model": "sim-video", "prompt": "p", "seconds": "5"}}),
        ("GET", "/v1/videos/video_unknown", {}),
        ("GET", "/v1/videos?limit=1000", {}),
        ("PUT", "/v1/videos", {}),
    ],
)
async def test_errors_have_openai_shape(gateway, method, path, kwargs):
    _, key = await gateway.account()
    headers = auth(key) if path != "/v1/models" else {}
    response = await gateway.client.request(method, path, headers=headers, **kwargs)
    assert response.status_code >= 400
    check_error(response.json())
