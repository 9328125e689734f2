"""Veo on the Gemini API against pytest-httpx: predictLongRunning, the operation poll, the keyed
download (PROVIDERS.md §4), and how failed or filtered operations end."""

from __future__ import annotations

import base64
import json

import pytest

from reapi import InvalidRequestError, ReAPI
from reapi.catalog import Catalog, default_catalog
from reapi.router import RouterConfig

PRIMARY = "http://gemini.test/v1beta"
BACKUP = "http://gemini-backup.test/v1beta"
MODEL = "veo-3.1-generate-preview"
OPERATION = f"models/{MODEL}/operations/abc123"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 24
MP4 = b"\0\0\0\x18ftypmp42" + b"\0" * 16


def two_host_catalog() -> Catalog:
    base = default_catalog()
    spec = base.models["veo-3.1"].model_dump(mode="json")
    first = spec["routes"][0]
    spec["routes"] = [first, {**first, "provider": "backup"}]
    gemini = base.providers["gemini"].model_dump(mode="json")
    return Catalog.model_validate(
        {"providers": {"gemini": gemini, "backup": gemini}, "models": {"veo-3.1": spec}}
    )


def client() -> ReAPI:
    return ReAPI(
        catalog=two_host_catalog(),
        provider_keys={"gemini": "g-primary", "backup": "g-backup"},
        provider_base_urls={"gemini": PRIMARY, "backup": BACKUP},
        router=RouterConfig(first_byte_timeout=0.5),
    )


def create_url(base: str) -> str:
    return f"{base}/models/{MODEL}:predictLongRunning"


def done(base: str, file_id: str = "abc") -> dict[str, object]:
    """The documented finished operation."""
    return {
        "name": OPERATION,
        "done": True,
        "response": {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
            "PredictLongRunningResponse",
            "generateVideoResponse": {
                "generatedSamples": [
                    {"video": {"uri": f"{base}/files/{file_id}:download?alt=media"}}
                ],
                "raiMediaFilteredCount": 0,
                "raiMediaFilteredReasons": [],
            },
        },
    }


def test_create_sends_documented_body_and_keeps_the_operation_name(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json={"name": OPERATION})
    video = client().videos.create(model="veo-3.1", prompt="a fox", size="1920x1080", seconds=8)
    sent = httpx_mock.get_requests()[0]
    assert sent.headers["x-goog-api-key"] == "g-primary" and "key=" not in str(sent.url)
    assert json.loads(sent.content) == {
        "instances": [{"prompt": "a fox"}],
        "parameters": {
            "aspectRatio": "16:9",
            "durationSeconds": 8,
            "resolution": "1080p",
            "sampleCount": 1,
        },
    }
    assert video.status == "queued" and video.reapi.provider == "gemini"
    assert video.seconds == "8"


def test_unspecified_duration_is_veos_own_default(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json={"name": OPERATION})
    client().videos.create(model="veo-3.1", prompt="p", size="720x1280")
    parameters = json.loads(httpx_mock.get_requests()[0].content)["parameters"]
    assert parameters == {
        "aspectRatio": "9:16",
        "durationSeconds": 8,
        "resolution": "720p",
        "sampleCount": 1,
    }


def test_first_frame_goes_inline(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json={"name": OPERATION})
    client().videos.create(model="veo-3.1", prompt="p", input_reference=PNG, seconds=4)
    instance = json.loads(httpx_mock.get_requests()[0].content)["instances"][0]
    assert instance["image"] == {
        "bytesBase64Encoded": base64.b64encode(PNG).decode(),
        "mimeType": "image/png",
    }


def test_data_url_first_frame_goes_inline(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json={"name": OPERATION})
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    client().videos.create(model="veo-3.1", prompt="p", input_reference=data_url)
    instance = json.loads(httpx_mock.get_requests()[0].content)["instances"][0]
    assert instance["image"]["bytesBase64Encoded"] == base64.b64encode(PNG).decode()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_reference": "https://example.test/frame.png"},
        {"seed": 7},
        {"size": "1920x1080", "seconds": 4},
        {"resolution": "4k", "aspect_ratio": "16:9", "seconds": 6},
        {"size": "1024x1024"},
        {"seconds": 5},
    ],
)
def test_what_veo_cannot_do_is_refused_before_any_call(httpx_mock, kwargs):
    with pytest.raises(InvalidRequestError) as info:
        client().videos.create(model="veo-3.1", prompt="p", **kwargs)
    assert "example.test" not in str(info.value)
    assert httpx_mock.get_requests() == []


def test_poll_then_keyed_download(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json={"name": OPERATION})
    httpx_mock.add_response(url=f"{PRIMARY}/{OPERATION}", json={"name": OPERATION, "done": False})
    httpx_mock.add_response(url=f"{PRIMARY}/{OPERATION}", json=done(PRIMARY), is_reusable=True)
    httpx_mock.add_response(url=f"{PRIMARY}/files/abc:download?alt=media", content=MP4)
    gemini = client()
    video = gemini.videos.create(model="veo-3.1", prompt="p")
    assert gemini.videos.retrieve(video.id).status == "in_progress"
    finished = gemini.videos.wait(video.id, poll_interval=0)
    assert finished.status == "completed" and finished.expires_at is not None
    content = gemini.videos.download_content(video.id)
    assert content.content == MP4
    download = httpx_mock.get_requests(url=f"{PRIMARY}/files/abc:download?alt=media")[0]
    assert download.headers["x-goog-api-key"] == "g-primary"
    polls = httpx_mock.get_requests(url=f"{PRIMARY}/{OPERATION}")
    assert all(p.method == "GET" and p.headers["x-goog-api-key"] == "g-primary" for p in polls)


def test_download_url_on_another_host_gets_no_key(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json={"name": OPERATION})
    httpx_mock.add_response(
        url=f"{PRIMARY}/{OPERATION}", json=done("http://elsewhere.test/v1beta"), is_reusable=True
    )
    httpx_mock.add_response(
        url="http://elsewhere.test/v1beta/files/abc:download?alt=media", content=MP4
    )
    gemini = client()
    video = gemini.videos.create(model="veo-3.1", prompt="p")
    gemini.videos.download_content(video.id)
    download = httpx_mock.get_requests(
        url="http://elsewhere.test/v1beta/files/abc:download?alt=media"
    )
    assert "x-goog-api-key" not in download[0].headers


def test_failed_operation_is_resubmitted_once_to_the_next_route(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json={"name": OPERATION})
    httpx_mock.add_response(
        url=f"{PRIMARY}/{OPERATION}",
        json={"name": OPERATION, "done": True, "error": {"code": 13, "message": "boom p"}},
    )
    httpx_mock.add_response(url=create_url(BACKUP), json={"name": OPERATION})
    httpx_mock.add_response(url=f"{BACKUP}/{OPERATION}", json=done(BACKUP))
    gemini = client()
    video = gemini.videos.create(model="veo-3.1", prompt="p")
    finished = gemini.videos.wait(video.id, poll_interval=0)
    assert finished.status == "completed"
    assert finished.reapi.provider == "backup"
    assert json.loads(httpx_mock.get_requests(url=create_url(BACKUP))[0].content)["instances"]


def test_filtered_output_is_content_blocked_and_not_resubmitted(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json={"name": OPERATION})
    filtered = {
        "name": OPERATION,
        "done": True,
        "response": {
            "generateVideoResponse": {
                "raiMediaFilteredCount": 1,
                "raiMediaFilteredReasons": ["Unable to generate videos because of the prompt"],
            }
        },
    }
    httpx_mock.add_response(url=f"{PRIMARY}/{OPERATION}", json=filtered, is_reusable=True)
    gemini = client()
    video = gemini.videos.create(model="veo-3.1", prompt="p")
    finished = gemini.videos.wait(video.id, poll_interval=0)
    assert finished.status == "failed" and finished.error.code == "content_policy_violation"
    assert "prompt" not in finished.error.message
    assert httpx_mock.get_requests(url=create_url(BACKUP)) == []


def test_create_faults_fail_over(httpx_mock):
    httpx_mock.add_response(
        url=create_url(PRIMARY),
        status_code=429,
        json={"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}},
    )
    httpx_mock.add_response(url=create_url(BACKUP), json={"name": OPERATION})
    video = client().videos.create(model="veo-3.1", prompt="p")
    assert video.reapi.provider == "backup"


def test_a_strange_operation_name_is_never_called(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json={"name": "../../files/x"})
    httpx_mock.add_response(url=create_url(BACKUP), json={"name": OPERATION})
    video = client().videos.create(model="veo-3.1", prompt="p")
    assert video.reapi.provider == "backup"
