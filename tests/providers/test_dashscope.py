"""DashScope adapter against pytest-httpx: Happy Horse `video-synthesis` with
`X-DashScope-Async: enable` and `tasks/{task_id}` as documented (PROVIDERS.md §9), the
t2v/i2v model switch, and DashScope's error and task-failure codes mapped onto failover."""

from __future__ import annotations

import json

import pytest

from reapi import ContentPolicyError, InvalidRequestError, ReAPI
from reapi.catalog import Catalog, default_catalog
from reapi.router import RouterConfig

PRIMARY = "http://dashscope.test/api/v1"
BACKUP = "http://dashscope-backup.test/api/v1"
TASK = "0385dc79-5ff8-4d82-bcb6-xxxxxx"
MARKER = "MARKER-dashscope-3b9a"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 24
MP4 = b"\0\0\0\x18ftypmp42" + b"\0" * 16
VIDEO = "https://dashscope-result-sh.oss-accelerate.aliyuncs.com/xxx.mp4?Expires=1"
FRAME = "https://cdn.example.test/first.png"


def two_host_catalog() -> Catalog:
    base = default_catalog()
    spec = base.models["happy-horse-1.0"].model_dump(mode="json")
    first = spec["routes"][0]
    spec["routes"] = [first, {**first, "provider": "backup"}]
    dashscope = base.providers["dashscope"].model_dump(mode="json")
    return Catalog.model_validate(
        {
            "providers": {"dashscope": dashscope, "backup": dashscope},
            "models": {"happy-horse-1.0": spec},
        }
    )


def client() -> ReAPI:
    return ReAPI(
        catalog=two_host_catalog(),
        provider_keys={"dashscope": "ds-primary", "backup": "ds-backup"},
        provider_base_urls={"dashscope": PRIMARY, "backup": BACKUP},
        router=RouterConfig(first_byte_timeout=0.5),
    )


def create_url(base: str) -> str:
    return f"{base}/services/aigc/video-generation/video-synthesis"


def task_url(base: str) -> str:
    return f"{base}/tasks/{TASK}"


def created(status: str = "PENDING") -> dict[str, object]:
    """The documented create answer."""
    return {"output": {"task_status": status, "task_id": TASK}, "request_id": "req-1"}


def task(status: str, **output: object) -> dict[str, object]:
    """The documented query answer."""
    body: dict[str, object] = {
        "request_id": "req-2",
        "output": {
            "task_id": TASK,
            "task_status": status,
            "submit_time": "2026-05-01 10:00:00.000",
            "scheduled_time": "2026-05-01 10:00:01.000",
            **output,
        },
    }
    if status == "SUCCEEDED":
        body["output"] = {  # type: ignore[assignment]
            **body["output"],  # type: ignore[dict-item]
            "end_time": "2026-05-01 10:01:30.000",
            "orig_prompt": MARKER,
            "video_url": VIDEO,
        }
        body["usage"] = {
            "duration": 5,
            "input_video_duration": 0,
            "output_video_duration": 5,
            "video_count": 1,
            "SR": 720,
            "ratio": "16:9",
        }
    return body


def dashscope_error(code: str) -> dict[str, object]:
    return {"code": code, "message": f"failed: {MARKER}", "request_id": "req-err"}


def sent(httpx_mock, index: int = 0) -> dict[str, object]:
    return json.loads(httpx_mock.get_requests()[index].content)


# -- create ------------------------------------------------------------------------------------
def test_text_to_video_sends_documented_body_with_async_header(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json=created())
    video = client().videos.create(
        model="happy-horse-1.0", prompt=MARKER, size="1280x720", seconds=8, seed=42
    )
    request = httpx_mock.get_requests()[0]
    assert request.headers["authorization"] == "Bearer ds-primary"
    assert request.headers["x-dashscope-async"] == "enable"
    assert sent(httpx_mock) == {
        "model": "happyhorse-1.0-t2v",
        "input": {"prompt": MARKER},
        "parameters": {
            "resolution": "720P",
            "ratio": "16:9",
            "duration": 8,
            "watermark": False,
            "seed": 42,
        },
    }
    assert video.status == "queued" and video.seconds == "8"


def test_defaults_leave_resolution_and_ratio_to_dashscope(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json=created())
    client().videos.create(model="happy-horse-1.0", prompt="p")
    assert sent(httpx_mock)["parameters"] == {"duration": 5, "watermark": False}


def test_a_reference_url_switches_to_the_i2v_model_as_first_frame(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json=created())
    client().videos.create(
        model="happy-horse-1.0", prompt="p", input_reference=FRAME, resolution="1080p"
    )
    body = sent(httpx_mock)
    assert body["model"] == "happyhorse-1.0-i2v"
    assert body["input"] == {"prompt": "p", "media": [{"type": "first_frame", "url": FRAME}]}
    assert body["parameters"] == {"resolution": "1080P", "duration": 5, "watermark": False}


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"seconds": 2}, "seconds"),
        ({"seconds": 16}, "seconds"),
        ({"resolution": "480p"}, "resolution"),
        ({"aspect_ratio": "21:9"}, "aspect_ratio"),
        ({"input_reference": FRAME, "aspect_ratio": "1:1"}, "aspect_ratio"),
        ({"input_reference": FRAME, "size": "1280x720"}, "size"),
        ({"input_reference": PNG}, "input_reference"),
    ],
)
def test_what_happy_horse_cannot_do_is_refused_before_any_call(httpx_mock, kwargs, param):
    with pytest.raises(InvalidRequestError) as info:
        client().videos.create(model="happy-horse-1.0", prompt="p", **kwargs)
    assert info.value.param == param
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize(
    ("status", "code", "attempt_code"),
    [
        (400, "Arrearage", "upstream_quota_exhausted"),
        (429, "Throttling.AllocationQuota", "upstream_quota_exhausted"),
        (429, "Throttling.RateQuota", "rate_limit_exceeded"),
        (429, "Throttling", "rate_limit_exceeded"),
        (401, "InvalidApiKey", "upstream_authentication_failed"),
        (403, "AccessDenied.Unpurchased", "upstream_permission_denied"),
        (500, "InternalError", "upstream_server_error"),
        (503, "ModelUnavailable", "upstream_server_error"),
    ],
)
def test_account_rate_and_server_errors_fail_over(httpx_mock, status, code, attempt_code):
    httpx_mock.add_response(url=create_url(PRIMARY), status_code=status, json=dashscope_error(code))
    httpx_mock.add_response(url=create_url(BACKUP), json=created())
    video = client().videos.create(model="happy-horse-1.0", prompt="p")
    assert video.reapi.provider == "backup"
    assert video.reapi.attempt_log[0].code == attempt_code
    assert httpx_mock.get_requests()[1].headers["authorization"] == "Bearer ds-backup"


def test_data_inspection_at_create_is_a_content_block_not_failed_over(httpx_mock):
    httpx_mock.add_response(
        url=create_url(PRIMARY), status_code=400, json=dashscope_error("DataInspectionFailed")
    )
    with pytest.raises(ContentPolicyError) as info:
        client().videos.create(model="happy-horse-1.0", prompt="p")
    assert info.value.provider_code == "DataInspectionFailed"
    assert info.value.request_id == "req-err"
    assert MARKER not in str(info.value) + repr(info.value)
    assert httpx_mock.get_requests(url=create_url(BACKUP)) == []


def test_an_invalid_parameter_is_not_failed_over(httpx_mock):
    httpx_mock.add_response(
        url=create_url(PRIMARY), status_code=400, json=dashscope_error("InvalidParameter")
    )
    with pytest.raises(Exception) as info:
        client().videos.create(model="happy-horse-1.0", prompt="p")
    assert getattr(info.value, "provider_code", None) == "InvalidParameter"
    assert httpx_mock.get_requests(url=create_url(BACKUP)) == []


def test_a_strange_task_id_or_an_at_once_failure_fails_over(httpx_mock):
    httpx_mock.add_response(
        url=create_url(PRIMARY), json={"output": {"task_id": "../x", "task_status": "PENDING"}}
    )
    httpx_mock.add_response(url=create_url(BACKUP), json=created("FAILED"))
    with pytest.raises(Exception) as info:
        client().videos.create(model="happy-horse-1.0", prompt="p")
    assert [a.code for a in info.value.attempts] == ["upstream_bad_response", "generation_failed"]


# -- poll --------------------------------------------------------------------------------------
def test_poll_maps_states_then_downloads_without_the_key(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json=created())
    httpx_mock.add_response(url=task_url(PRIMARY), json=task("PENDING"))
    httpx_mock.add_response(url=task_url(PRIMARY), json=task("RUNNING"))
    httpx_mock.add_response(url=task_url(PRIMARY), json=task("SUCCEEDED"), is_reusable=True)
    httpx_mock.add_response(url=VIDEO, content=MP4)
    ds = client()
    video = ds.videos.create(model="happy-horse-1.0", prompt="p")
    assert ds.videos.retrieve(video.id).status == "queued"
    assert ds.videos.retrieve(video.id).status == "in_progress"
    done = ds.videos.wait(video.id, poll_interval=0)
    assert done.status == "completed" and done.seconds == "5" and done.expires_at is not None
    assert ds.videos.download_content(video.id).content == MP4
    assert "authorization" not in httpx_mock.get_requests(url=VIDEO)[0].headers
    polls = httpx_mock.get_requests(url=task_url(PRIMARY))
    assert all(p.method == "GET" and "x-dashscope-async" not in p.headers for p in polls)
    assert all(p.headers["authorization"] == "Bearer ds-primary" for p in polls)


@pytest.mark.parametrize(
    "ending",
    [
        task("FAILED", code="InternalError.Algo", message="algo failed"),
        task("CANCELED"),
        task("UNKNOWN"),
    ],
)
def test_a_failed_task_is_resubmitted_once_to_the_next_route(httpx_mock, ending):
    httpx_mock.add_response(url=create_url(PRIMARY), json=created())
    httpx_mock.add_response(url=task_url(PRIMARY), json=ending)
    httpx_mock.add_response(url=create_url(BACKUP), json=created())
    httpx_mock.add_response(url=task_url(BACKUP), json=task("SUCCEEDED"))
    ds = client()
    done = ds.videos.wait(ds.videos.create(model="happy-horse-1.0", prompt="p").id, poll_interval=0)
    assert done.status == "completed" and done.reapi.provider == "backup"


def test_a_data_inspection_failure_is_content_blocked_and_not_resubmitted(httpx_mock):
    httpx_mock.add_response(url=create_url(PRIMARY), json=created())
    httpx_mock.add_response(
        url=task_url(PRIMARY),
        json=task("FAILED", code="DataInspectionFailed", message=MARKER),
        is_reusable=True,
    )
    ds = client()
    done = ds.videos.wait(ds.videos.create(model="happy-horse-1.0", prompt="p").id, poll_interval=0)
    assert done.status == "failed" and done.error.code == "content_policy_violation"
    assert MARKER not in done.model_dump_json()
    assert httpx_mock.get_requests(url=create_url(BACKUP)) == []
