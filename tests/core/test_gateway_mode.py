"""Gateway mode: the SDK speaks OpenAI's wire format to a reapi server and keeps its messages."""

import base64
import json

import pytest

from reapi import (
    AuthenticationError,
    ConfigurationError,
    InsufficientCreditsError,
    InvalidRequestError,
    ModelNotFoundError,
    RateLimitError,
    ReAPI,
)

GW = "http://gateway.test/v1"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 8).decode()


def gw(**options) -> ReAPI:
    return ReAPI(base_url=GW, api_key="rk_test_key", **options)


def test_gateway_mode_needs_a_key(monkeypatch):
    monkeypatch.delenv("REAPI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="REAPI_API_KEY"):
        ReAPI(base_url=GW)


def test_environment_selects_gateway_mode(monkeypatch):
    monkeypatch.setenv("REAPI_BASE_URL", GW)
    monkeypatch.setenv("REAPI_API_KEY", "rk_env")
    assert ReAPI().mode == "gateway"


def test_images_go_to_the_gateway_with_bearer_key(httpx_mock):
    httpx_mock.add_response(
        url=f"{GW}/images/generations",
        json={
            "created": 1,
            "data": [{"b64_json": PNG}],
            "reapi": {"provider": "openai", "attempts": 2},
        },
    )
    result = gw().images.generate(
        model="veo-anything", prompt="p", aspect_ratio="16:9", idempotency_key="idem-1"
    )
    sent = httpx_mock.get_requests()[0]
    assert sent.headers["authorization"] == "Bearer rk_test_key"
    assert sent.headers["idempotency-key"] == "idem-1"
    assert json.loads(sent.content) == {
        "model": "veo-anything",
        "prompt": "p",
        "n": 1,
        "aspect_ratio": "16:9",
    }
    assert result.reapi.attempts == 2


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "invalid_value", InvalidRequestError),
        (401, "invalid_api_key", AuthenticationError),
        (402, "insufficient_credits", InsufficientCreditsError),
        (404, "model_not_found", ModelNotFoundError),
        (429, "rate_limit_exceeded", RateLimitError),
    ],
)
def test_gateway_errors_keep_reapi_messages(httpx_mock, status, code, kind):
    httpx_mock.add_response(
        status_code=status,
        headers={"retry-after": "2"},
        json={"error": {"message": "written by reapi", "type": "x", "param": "size", "code": code}},
    )
    with pytest.raises(kind) as info:
        gw(max_retries=0).images.generate(model="m", prompt="p")
    assert info.value.message == "written by reapi" and info.value.code == code
    if kind is RateLimitError:
        assert info.value.retry_after == 2


def test_videos_through_the_gateway(httpx_mock):
    video = {
        "id": "video_1",
        "object": "video",
        "model": "veo-3.1",
        "status": "completed",
        "progress": 100,
        "created_at": 1,
        "seconds": "8",
        "size": "1280x720",
    }
    httpx_mock.add_response(method="POST", url=f"{GW}/videos", json=dict(video, status="queued"))
    # a gateway without the events route: wait() polls
    httpx_mock.add_response(method="GET", url=f"{GW}/videos/video_1/events", status_code=404)
    httpx_mock.add_response(method="GET", url=f"{GW}/videos/video_1", json=video)
    httpx_mock.add_response(
        url=f"{GW}/videos/video_1/content?variant=video",
        content=b"\0\0\0\x18ftypmp42",
        headers={"content-type": "video/mp4"},
    )
    httpx_mock.add_response(
        method="DELETE",
        url=f"{GW}/videos/video_1",
        json={"id": "video_1", "object": "video.deleted", "deleted": True},
    )
    client = gw()
    created = client.videos.create(model="veo-3.1", prompt="p", seconds=8)
    assert created.status == "queued"
    seen = []
    done = client.videos.wait(created.id, poll_interval=0, on_progress=seen.append)
    assert done.status == "completed" and seen[-1].progress == 100
    assert client.videos.download_content(done.id).content.startswith(b"\0\0\0\x18ftyp")
    assert client.videos.delete(done.id).deleted


def test_models_from_the_gateway(httpx_mock):
    httpx_mock.add_response(
        url=f"{GW}/models",
        json={
            "object": "list",
            "data": [{"id": "gpt-image-2", "object": "model", "created": 0, "owned_by": "openai"}],
        },
    )
    assert [m.id for m in gw().models.list().data] == ["gpt-image-2"]


def _sse(*events: dict) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def test_a_streamed_error_event_raises_what_the_json_error_raises(httpx_mock):
    """An `error` event mid-stream (a content block after the drafts) raises the class the
    same error answered in JSON (400) raises, not a server error: its type says which."""
    partial = {"type": "image_generation.partial_image", "b64_json": PNG, "partial_image_index": 0}
    blocked = {
        "type": "error",
        "error": {
            "message": "the provider refused this content",
            "type": "invalid_request_error",
            "param": None,
            "code": "content_policy_violation",
        },
    }
    httpx_mock.add_response(
        url=f"{GW}/images/generations",
        headers={"content-type": "text/event-stream"},
        content=_sse(partial, blocked),
    )
    events = gw().images.generate(model="gpt-image-2", prompt="p", stream=True, partial_images=1)
    with pytest.raises(InvalidRequestError) as raised:
        for _ in events:
            pass
    assert raised.value.code == "content_policy_violation"


def test_a_stream_with_an_idempotency_key_is_refused_as_the_gateway_refuses_it():
    """Dropped unsaid before: a caller counting on it for a safe retry had none. The gateway
    refuses the pair with 400, and so does the SDK, before any request."""
    with pytest.raises(InvalidRequestError) as raised:
        gw().images.generate(model="gpt-image-2", prompt="p", stream=True, idempotency_key="k1")
    assert raised.value.param == "stream"
