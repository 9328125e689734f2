"""Vidu adapter against pytest-httpx: text2video / img2video, the creations poll, `Token` auth
and Vidu's error codes mapped onto failover (PROVIDERS.md §7)."""

from __future__ import annotations

import base64
import json

import pytest

from reapi import ContentPolicyError, InvalidRequestError, ReAPI
from reapi.catalog import Catalog, default_catalog
from reapi.router import RouterConfig

PRIMARY = "http://vidu.test"
BACKUP = "http://vidu-backup.test"
TASK = "809387572068364288"
MARKER = "MARKER-vidu-91ab"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 24
MP4 = b"\0\0\0\x18ftypmp42" + b"\0" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 24
VIDEO = "https://cdn.vidu.test/out/1.mp4?sig=1"
COVER = "https://cdn.vidu.test/out/1.jpg?sig=1"


def two_host_catalog() -> Catalog:
    base = default_catalog()
    spec = base.models["vidu-q3"].model_dump(mode="json")
    first = spec["routes"][0]
    spec["routes"] = [first, {**first, "provider": "backup"}]
    vidu = base.providers["vidu"].model_dump(mode="json")
    return Catalog.model_validate(
        {"providers": {"vidu": vidu, "backup": vidu}, "models": {"vidu-q3": spec}}
    )


def client() -> ReAPI:
    return ReAPI(
        catalog=two_host_catalog(),
        provider_keys={"vidu": "v-primary", "backup": "v-backup"},
        provider_base_urls={"vidu": PRIMARY, "backup": BACKUP},
        router=RouterConfig(first_byte_timeout=0.5),
    )


def create_url(base: str, kind: str = "text2video") -> str:
    return f"{base}/ent/v2/{kind}"


def poll_url(base: str) -> str:
    return f"{base}/ent/v2/tasks/{TASK}/creations"


def created(kind: str = "text2video") -> dict[str, object]:
    """The documented create answer."""
    return {
        "task_id": TASK,
        "type": kind,
        "state": "created",
        "model": "viduq3-pro",
        "prompt": MARKER,
        "duration": 5,
        "seed": 66,
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "credits": 150,
        "created_at": "2025-04-14T15:29:10.002Z",
    }


def creations(state: str, **extra: object) -> dict[str, object]:
    """The documented `creations` answer."""
    body: dict[str, object] = {
        "id": TASK,
        "state": state,
        "err_code": "",
        "credits": 150,
        "payload": "",
        "bgm": False,
        "off_peak": False,
        "creations": [],
    }
    body.update(extra)
    return body


def done() -> dict[str, object]:
    return creations(
        "success",
        creations=[{"id": "c1", "url": VIDEO, "cover_url": COVER, "watermarked_url": VIDEO + "w"}],
    )


def vidu_error(status: int, reason: str) -> dict[str, object]:
    return {"code": status, "reason": reason, "message": f"bad: {MARKER}", "metadata": {}}


# -- create ------------------------------------------------------------------------------------
def test_text_to_video_sends_documented_body_with_token_auth(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json=created())
    video = client().videos.create(model="vidu-q3", prompt=MARKER, size="1920x1080", seconds=8)
    sent = httpx_mock.get_requests()[0]
    assert sent.method == "POST"
    assert sent.headers["authorization"] == "Token v-primary"
    assert json.loads(sent.content) == {
        "model": "viduq3-pro",
        "prompt": MARKER,
        "duration": 8,
        "aspect_ratio": "16:9",
        "resolution": "1080p",
        "audio": True,
        "watermark": False,
    }
    assert video.status == "queued" and video.seconds == "8"


def test_defaults_and_seed(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json=created())
    client().videos.create(model="vidu-q3", prompt="p", seed=42)
    body = json.loads(httpx_mock.get_requests()[0].content)
    assert body == {
        "model": "viduq3-pro",
        "prompt": "p",
        "duration": 5,
        "seed": 42,
        "audio": True,
        "watermark": False,
    }


def test_an_input_reference_makes_it_image_to_video(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY, "img2video"), json=created("img2video"))
    client().videos.create(model="vidu-q3", prompt="p", input_reference=PNG, resolution="540p")
    body = json.loads(httpx_mock.get_requests()[0].content)
    assert body["images"] == ["data:image/png;base64," + base64.b64encode(PNG).decode()]
    assert body["resolution"] == "540p" and "aspect_ratio" not in body


def test_a_reference_url_is_passed_on(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY, "img2video"), json=created("img2video"))
    client().videos.create(
        model="vidu-q3", prompt="p", input_reference="https://example.test/a.png"
    )
    assert json.loads(httpx_mock.get_requests()[0].content)["images"] == [
        "https://example.test/a.png"
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seconds": 17},
        {"resolution": "360p"},
        {"aspect_ratio": "21:9"},
        {"input_reference": PNG, "size": "1280x720"},
        {"input_reference": PNG, "aspect_ratio": "1:1"},
        {"input_reference": MP4},
    ],
)
def test_what_vidu_cannot_do_is_refused_before_any_call(httpx_mock, kwargs):
    with pytest.raises(InvalidRequestError):
        client().videos.create(model="vidu-q3", prompt="p", **kwargs)
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize(
    ("status", "reason", "attempt_code"),
    [
        (400, "CreditInsufficient", "upstream_quota_exhausted"),
        (429, "QuotaExceeded", "rate_limit_exceeded"),
        (429, "TooManyRequests", "rate_limit_exceeded"),
        (429, "SystemThrottling", "rate_limit_exceeded"),
        (400, "ModelUnavailable", "upstream_not_found"),
        (401, "Unauthorized", "upstream_authentication_failed"),
        (500, "InternalServiceFailure", "upstream_server_error"),
    ],
)
def test_account_rate_and_server_errors_fail_over(httpx_mock, status, reason, attempt_code):
    httpx_mock.add_response(
        url=create_url(PRIMARY), status_code=status, json=vidu_error(status, reason)
    )
    httpx_mock.add_response(url=create_url(BACKUP), json=created())
    video = client().videos.create(model="vidu-q3", prompt="p")
    assert video.reapi.provider == "backup"
    assert video.reapi.attempt_log[0].code == attempt_code


@pytest.mark.parametrize("reason", ["TaskPromptPolicyViolation", "AuditSubmitIllegal"])
def test_policy_errors_at_create_are_not_failed_over(httpx_mock, reason):
    httpx_mock.add_response(url=create_url(PRIMARY), status_code=400, json=vidu_error(400, reason))
    with pytest.raises(ContentPolicyError) as info:
        client().videos.create(model="vidu-q3", prompt="p")
    assert info.value.provider_code == reason
    assert MARKER not in str(info.value) and MARKER not in repr(info.value)
    assert httpx_mock.get_requests(url=create_url(BACKUP)) == []


def test_a_bad_request_is_not_failed_over(httpx_mock):
    httpx_mock.add_response(
        url=create_url(PRIMARY), status_code=400, json=vidu_error(400, "FieldInvalid")
    )
    with pytest.raises(Exception) as info:
        client().videos.create(model="vidu-q3", prompt="p")
    assert getattr(info.value, "provider_code", None) == "FieldInvalid"
    assert httpx_mock.get_requests(url=create_url(BACKUP)) == []


def test_a_strange_task_id_is_never_called(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json={**created(), "task_id": "../x"})
    httpx_mock.add_response(url=create_url(BACKUP), json=created())
    assert client().videos.create(model="vidu-q3", prompt="p").reapi.provider == "backup"


# -- poll --------------------------------------------------------------------------------------
def test_poll_maps_states_then_downloads_video_and_cover(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json=created())
    httpx_mock.add_response(url=poll_url(PRIMARY), json=creations("created"))
    httpx_mock.add_response(url=poll_url(PRIMARY), json=creations("queueing"))
    httpx_mock.add_response(url=poll_url(PRIMARY), json=creations("processing"))
    httpx_mock.add_response(url=poll_url(PRIMARY), json=done(), is_reusable=True)
    httpx_mock.add_response(url=VIDEO, content=MP4)
    httpx_mock.add_response(url=COVER, content=JPEG)
    vidu = client()
    video = vidu.videos.create(model="vidu-q3", prompt="p")
    assert vidu.videos.retrieve(video.id).status == "queued"
    assert vidu.videos.retrieve(video.id).status == "queued"
    assert vidu.videos.retrieve(video.id).status == "in_progress"
    finished = vidu.videos.wait(video.id, poll_interval=0)
    assert finished.status == "completed" and finished.expires_at is not None
    assert vidu.videos.download_content(video.id).content == MP4
    assert vidu.videos.download_content(video.id, variant="thumbnail").content == JPEG
    assert "authorization" not in httpx_mock.get_requests(url=VIDEO)[0].headers
    polls = httpx_mock.get_requests(url=poll_url(PRIMARY))
    assert all(p.method == "GET" and p.headers["authorization"] == "Token v-primary" for p in polls)


def test_a_failed_task_is_resubmitted_once_to_the_next_route(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json=created())
    httpx_mock.add_response(
        url=poll_url(PRIMARY), json=creations("failed", err_code="InternalServiceFailure")
    )
    httpx_mock.add_response(url=create_url(BACKUP), json=created())
    httpx_mock.add_response(url=poll_url(BACKUP), json=done())
    vidu = client()
    finished = vidu.videos.wait(vidu.videos.create(model="vidu-q3", prompt="p").id, poll_interval=0)
    assert finished.status == "completed" and finished.reapi.provider == "backup"


@pytest.mark.parametrize("err_code", ["CreationPolicyViolation", "TaskPromptPolicyViolation"])
def test_a_policy_failure_is_content_blocked_and_not_resubmitted(httpx_mock, err_code):
    httpx_mock.add_response(url=create_url(PRIMARY), json=created())
    httpx_mock.add_response(
        url=poll_url(PRIMARY), json=creations("failed", err_code=err_code), is_reusable=True
    )
    vidu = client()
    finished = vidu.videos.wait(vidu.videos.create(model="vidu-q3", prompt="p").id, poll_interval=0)
    assert finished.status == "failed" and finished.error.code == "content_policy_violation"
    assert httpx_mock.get_requests(url=create_url(BACKUP)) == []
