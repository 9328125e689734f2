"""BytePlus Ark adapter against pytest-httpx: Seedream `images/generations` and Seedance
`contents/generations/tasks` as documented (PROVIDERS.md §5, §6), Ark's error codes mapped onto
failover, and per-item / per-task content blocks."""

from __future__ import annotations

import base64
import json
import time

import pytest

from reapi import ContentPolicyError, InvalidRequestError, ReAPI
from reapi.catalog import Catalog, default_catalog
from reapi.router import RouterConfig

PRIMARY = "http://ark.test/api/v3"
BACKUP = "http://ark-backup.test/api/v3"
SEEDREAM = "seedream-5-0-lite-260128"
SEEDANCE = "dreamina-seedance-2-0-260128"
TASK = "cgt-20250101-abc12"
MARKER = "MARKER-ark-5c1f"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 24
MP4 = b"\0\0\0\x18ftypmp42" + b"\0" * 16
TOS = (
    "https://ark-content-generation-v2-ap-southeast-1.tos-ap-southeast-1.bytepluses.com/"
    "out/1.jpeg?X-Tos-Expires=86400&X-Tos-Signature=abc"
)
VIDEO = "https://ark-content-generation-ap-southeast-1.tos-ap-southeast-1.bytepluses.com/v.mp4?s=1"


def two_host_catalog() -> Catalog:
    base = default_catalog()
    models = {}
    for model_id in ("seedream-5.0-lite", "seedance-2.0"):
        spec = base.models[model_id].model_dump(mode="json")
        first = spec["routes"][0]
        spec["routes"] = [first, {**first, "provider": "backup"}]
        models[model_id] = spec
    ark = base.providers["byteplus"].model_dump(mode="json")
    return Catalog.model_validate({"providers": {"byteplus": ark, "backup": ark}, "models": models})


def client() -> ReAPI:
    return ReAPI(
        catalog=two_host_catalog(),
        provider_keys={"byteplus": "ark-primary", "backup": "ark-backup"},
        provider_base_urls={"byteplus": PRIMARY, "backup": BACKUP},
        router=RouterConfig(first_byte_timeout=0.5),
    )


def images_url(base: str) -> str:
    return f"{base}/images/generations"


def tasks_url(base: str, task_id: str | None = None) -> str:
    return f"{base}/contents/generations/tasks" + (f"/{task_id}" if task_id else "")


def seedream_answer(*items: dict[str, object], created: int | None = None) -> dict[str, object]:
    """The documented answer (relay wire example), with `created` now unless given."""
    return {
        "model": SEEDREAM,
        "created": int(time.time()) if created is None else created,
        "data": list(items) or [{"url": TOS, "size": "1760x2368"}],
        "usage": {"generated_images": 1, "output_tokens": 16280, "total_tokens": 16280},
    }


def ark_error(code: str) -> dict[str, object]:
    return {
        "error": {
            "code": code,
            "message": f"The request failed: {MARKER}",
            "param": "prompt",
            "type": "BadRequest",
        }
    }


def task(status: str, **extra: object) -> dict[str, object]:
    """The documented task object."""
    body: dict[str, object] = {
        "id": TASK,
        "model": SEEDANCE,
        "status": status,
        "created_at": int(time.time()) - 90,
        "updated_at": int(time.time()),
        "seed": 11,
        "resolution": "720p",
        "ratio": "16:9",
        "duration": 5,
        "framespersecond": 24,
        "service_tier": "default",
        "execution_expires_after": 172800,
    }
    body.update(extra)
    return body


def succeeded() -> dict[str, object]:
    return task(
        "succeeded",
        content={"video_url": VIDEO},
        usage={"completion_tokens": 108900, "total_tokens": 108900},
    )


# -- Seedream: the request ---------------------------------------------------------------------
def test_generate_sends_documented_body_with_bearer_key(httpx_mock):
    httpx_mock.add_response(url=images_url(PRIMARY), json=seedream_answer())
    result = client().images.generate(
        model="seedream-5.0-lite", prompt=MARKER, size="2560x1440", response_format="url"
    )
    sent = httpx_mock.get_requests()[0]
    assert sent.method == "POST"
    assert sent.headers["authorization"] == "Bearer ark-primary"
    assert json.loads(sent.content) == {
        "model": SEEDREAM,
        "prompt": MARKER,
        "size": "2560x1440",
        "response_format": "url",
        "watermark": False,
    }
    assert result.data[0].url == TOS
    assert result.size == "1760x2368" and result.output_format == "jpeg"
    assert result.usage == {"generated_images": 1, "output_tokens": 16280, "total_tokens": 16280}
    expires = result.reapi.url_expires_at
    assert expires is not None and abs(expires - (time.time() + 86400)) < 5


def test_a_tier_alone_is_sent_as_the_size(httpx_mock):
    httpx_mock.add_response(url=images_url(PRIMARY), json=seedream_answer())
    client().images.generate(
        model="seedream-5.0-lite",
        prompt="p",
        resolution="4K",
        output_format="png",
        response_format="url",
    )
    body = json.loads(httpx_mock.get_requests()[0].content)
    assert body["size"] == "4K" and body["output_format"] == "png"


def test_no_size_lets_seedream_choose(httpx_mock):
    httpx_mock.add_response(url=images_url(PRIMARY), json=seedream_answer())
    client().images.generate(model="seedream-5.0-lite", prompt="p", response_format="url")
    assert "size" not in json.loads(httpx_mock.get_requests()[0].content)


def test_created_at_is_accepted_and_an_old_url_expires_from_its_issue_time(httpx_mock):
    issued = int(time.time()) - 3600
    answer = seedream_answer()
    answer["created_at"] = answer.pop("created")
    answer["created_at"] = issued
    httpx_mock.add_response(url=images_url(PRIMARY), json=answer)
    result = client().images.generate(model="seedream-5.0-lite", prompt="p", response_format="url")
    assert result.reapi.url_expires_at == issued + 86400


def test_url_results_are_fetched_without_the_key_when_bytes_are_wanted(httpx_mock):
    httpx_mock.add_response(url=images_url(PRIMARY), json=seedream_answer(created=1757469561))
    httpx_mock.add_response(url=TOS, content=JPEG, headers={"content-type": "image/jpeg"})
    result = client().images.generate(model="seedream-5.0-lite", prompt="p")
    assert result.data[0].content() == JPEG
    download = httpx_mock.get_requests(url=TOS)[0]
    assert "authorization" not in download.headers


def test_edit_sends_reference_images_as_data_urls(httpx_mock):
    httpx_mock.add_response(url=images_url(PRIMARY), json=seedream_answer())
    client().images.edit(
        model="seedream-5.0-lite", prompt="p", image=[PNG, JPEG], response_format="url"
    )
    body = json.loads(httpx_mock.get_requests()[0].content)
    assert body["image"] == [
        "data:image/png;base64," + base64.b64encode(PNG).decode(),
        "data:image/jpeg;base64," + base64.b64encode(JPEG).decode(),
    ]


def test_n_images_are_one_sequential_batch(httpx_mock):
    items = [{"url": TOS + f"&i={i}", "size": "2048x2048"} for i in range(3)]
    httpx_mock.add_response(url=images_url(PRIMARY), json=seedream_answer(*items))
    result = client().images.generate(
        model="seedream-5.0-lite", prompt="p", n=3, response_format="url"
    )
    body = json.loads(httpx_mock.get_requests()[0].content)
    assert body["sequential_image_generation"] == "auto"
    assert body["sequential_image_generation_options"] == {"max_images": 3}
    assert len(result.data) == 3


def test_b64_items_are_read_too(httpx_mock):
    item = {"b64_json": base64.b64encode(JPEG).decode(), "size": "2048x2048"}
    httpx_mock.add_response(url=images_url(PRIMARY), json=seedream_answer(item))
    result = client().images.generate(model="seedream-5.0-lite", prompt="p")
    assert result.data[0].content() == JPEG


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": "1024x1024"},
        {"aspect_ratio": "16:9"},
        {"resolution": "1K"},
        {"seed": 7},
        {"quality": "high"},
        {"output_format": "webp"},
        {"output_compression": 50},
        {"n": 16},
    ],
)
def test_what_seedream_cannot_do_is_refused_before_any_call(httpx_mock, kwargs):
    with pytest.raises(InvalidRequestError):
        client().images.generate(model="seedream-5.0-lite", prompt="p", **kwargs)
    assert httpx_mock.get_requests() == []


def test_references_plus_batch_over_fifteen_is_refused(httpx_mock):
    with pytest.raises(InvalidRequestError) as info:
        client().images.edit(model="seedream-5.0-lite", prompt="p", image=[PNG] * 14, n=2)
    assert info.value.param == "n"
    assert httpx_mock.get_requests() == []


# -- Seedream: blocks and errors ---------------------------------------------------------------
def test_a_filtered_batch_item_is_skipped(httpx_mock):
    blocked = {"error": {"code": "OutputImageSensitiveContentDetected", "message": MARKER}}
    httpx_mock.add_response(
        url=images_url(PRIMARY), json=seedream_answer({"url": TOS, "size": "2048x2048"}, blocked)
    )
    result = client().images.generate(
        model="seedream-5.0-lite", prompt="p", n=2, response_format="url"
    )
    assert len(result.data) == 1


def test_every_item_filtered_is_a_content_block_not_failed_over(httpx_mock):
    blocked = {"error": {"code": "OutputImageSensitiveContentDetected", "message": MARKER}}
    httpx_mock.add_response(url=images_url(PRIMARY), json=seedream_answer(blocked))
    with pytest.raises(ContentPolicyError) as info:
        client().images.generate(model="seedream-5.0-lite", prompt="p")
    assert info.value.provider_code == "OutputImageSensitiveContentDetected"
    assert MARKER not in str(info.value) and MARKER not in repr(info.value)
    assert httpx_mock.get_requests(url=images_url(BACKUP)) == []


@pytest.mark.parametrize(
    "code",
    [
        "InputTextSensitiveContentDetected",
        "InputImageSensitiveContentDetected",
        "SensitiveContentDetected.SevereViolation",
    ],
)
def test_sensitive_content_errors_are_content_blocks_not_failed_over(httpx_mock, code):
    httpx_mock.add_response(url=images_url(PRIMARY), status_code=400, json=ark_error(code))
    with pytest.raises(ContentPolicyError) as info:
        client().images.generate(model="seedream-5.0-lite", prompt="p")
    assert info.value.provider_code == code and MARKER not in str(info.value)
    assert httpx_mock.get_requests(url=images_url(BACKUP)) == []


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (403, "AccountOverdueError"),
        (429, "RateLimitExceeded.EndpointRPMExceeded"),
        (429, "RateLimitExceeded.EndpointTPMExceeded"),
        (404, "InvalidEndpointOrModel.NotFound"),
        (401, "AuthenticationError"),
        (500, "InternalServiceError"),
    ],
)
def test_account_rate_and_server_errors_fail_over(httpx_mock, status, code):
    httpx_mock.add_response(url=images_url(PRIMARY), status_code=status, json=ark_error(code))
    httpx_mock.add_response(url=images_url(BACKUP), json=seedream_answer())
    result = client().images.generate(model="seedream-5.0-lite", prompt="p", response_format="url")
    assert result.reapi.provider == "backup"
    assert result.reapi.attempt_log[0].code in {
        "upstream_quota_exhausted",
        "rate_limit_exceeded",
        "upstream_not_found",
        "upstream_authentication_failed",
        "upstream_server_error",
    }


def test_quota_error_is_named_as_such(httpx_mock):
    httpx_mock.add_response(
        url=images_url(PRIMARY), status_code=403, json=ark_error("AccountOverdueError")
    )
    httpx_mock.add_response(url=images_url(BACKUP), json=seedream_answer())
    result = client().images.generate(model="seedream-5.0-lite", prompt="p", response_format="url")
    assert result.reapi.attempt_log[0].code == "upstream_quota_exhausted"


def test_invalid_parameter_is_not_failed_over(httpx_mock):
    httpx_mock.add_response(
        url=images_url(PRIMARY), status_code=400, json=ark_error("InvalidParameter")
    )
    with pytest.raises(Exception) as info:
        client().images.generate(model="seedream-5.0-lite", prompt="p")
    assert getattr(info.value, "provider_code", None) == "InvalidParameter"
    assert httpx_mock.get_requests(url=images_url(BACKUP)) == []


# -- Seedance: create --------------------------------------------------------------------------
def test_create_sends_body_fields_never_prompt_flags(httpx_mock):
    httpx_mock.add_response(url=tasks_url(PRIMARY), json={"id": TASK})
    video = client().videos.create(
        model="seedance-2.0", prompt=MARKER, size="1920x1080", seconds=10
    )
    sent = httpx_mock.get_requests()[0]
    assert sent.headers["authorization"] == "Bearer ark-primary"
    assert json.loads(sent.content) == {
        "model": SEEDANCE,
        "content": [{"type": "text", "text": MARKER}],
        "resolution": "1080p",
        "ratio": "16:9",
        "duration": 10,
        "watermark": False,
    }
    assert video.status == "queued" and video.seconds == "10"


def test_unspecified_duration_is_seedances_default(httpx_mock):
    httpx_mock.add_response(url=tasks_url(PRIMARY), json={"id": TASK})
    client().videos.create(model="seedance-2.0", prompt="p", aspect_ratio="21:9", resolution="480p")
    body = json.loads(httpx_mock.get_requests()[0].content)
    assert (body["duration"], body["ratio"], body["resolution"]) == (5, "21:9", "480p")


def test_first_frame_file_goes_as_a_data_url(httpx_mock):
    httpx_mock.add_response(url=tasks_url(PRIMARY), json={"id": TASK})
    client().videos.create(model="seedance-2.0", prompt="p", input_reference=PNG)
    content = json.loads(httpx_mock.get_requests()[0].content)["content"]
    assert content[1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
        "role": "first_frame",
    }


def test_first_frame_url_is_passed_on(httpx_mock):
    httpx_mock.add_response(url=tasks_url(PRIMARY), json={"id": TASK})
    client().videos.create(
        model="seedance-2.0", prompt="p", input_reference="https://example.test/f.png"
    )
    content = json.loads(httpx_mock.get_requests()[0].content)["content"]
    assert content[1]["image_url"] == {"url": "https://example.test/f.png"}


@pytest.mark.parametrize(
    "kwargs",
    [{"seed": 3}, {"seconds": 3}, {"seconds": 16}, {"resolution": "4k"}, {"aspect_ratio": "2:1"}],
)
def test_what_seedance_cannot_do_is_refused(httpx_mock, kwargs):
    with pytest.raises(InvalidRequestError):
        client().videos.create(model="seedance-2.0", prompt="p", **kwargs)
    assert httpx_mock.get_requests() == []


def test_create_errors_fail_over_but_blocks_do_not(httpx_mock):
    httpx_mock.add_response(
        url=tasks_url(PRIMARY),
        status_code=429,
        json=ark_error("RateLimitExceeded.EndpointRPMExceeded"),
        headers={"retry-after": "3"},
    )
    httpx_mock.add_response(url=tasks_url(BACKUP), json={"id": TASK})
    assert client().videos.create(model="seedance-2.0", prompt="p").reapi.provider == "backup"


def test_blocked_prompt_at_create_is_not_failed_over(httpx_mock):
    httpx_mock.add_response(
        url=tasks_url(PRIMARY),
        status_code=400,
        json=ark_error("InputTextSensitiveContentDetected"),
    )
    with pytest.raises(ContentPolicyError):
        client().videos.create(model="seedance-2.0", prompt="p")
    assert httpx_mock.get_requests(url=tasks_url(BACKUP)) == []


def test_a_strange_task_id_is_never_called(httpx_mock):
    httpx_mock.add_response(url=tasks_url(PRIMARY), json={"id": "../../x"})
    httpx_mock.add_response(url=tasks_url(BACKUP), json={"id": TASK})
    assert client().videos.create(model="seedance-2.0", prompt="p").reapi.provider == "backup"


# -- Seedance: poll, download, failures, cancel ------------------------------------------------
def test_poll_maps_states_then_downloads_without_the_key(httpx_mock):
    httpx_mock.add_response(url=tasks_url(PRIMARY), json={"id": TASK})
    httpx_mock.add_response(url=tasks_url(PRIMARY, TASK), json=task("queued"))
    httpx_mock.add_response(url=tasks_url(PRIMARY, TASK), json=task("running"))
    httpx_mock.add_response(url=tasks_url(PRIMARY, TASK), json=succeeded(), is_reusable=True)
    httpx_mock.add_response(url=VIDEO, content=MP4, headers={"content-type": "video/mp4"})
    ark = client()
    video = ark.videos.create(model="seedance-2.0", prompt="p")
    assert ark.videos.retrieve(video.id).status == "queued"
    assert ark.videos.retrieve(video.id).status == "in_progress"
    finished = ark.videos.wait(video.id, poll_interval=0)
    assert finished.status == "completed" and finished.seconds == "5"
    assert finished.expires_at is not None and finished.expires_at > time.time() + 86000
    assert ark.videos.download_content(video.id).content == MP4
    assert "authorization" not in httpx_mock.get_requests(url=VIDEO)[0].headers
    polls = httpx_mock.get_requests(url=tasks_url(PRIMARY, TASK))
    assert all(
        p.method == "GET" and p.headers["authorization"] == "Bearer ark-primary" for p in polls
    )


@pytest.mark.parametrize("ending", ["failed", "expired"])
def test_a_failed_task_is_resubmitted_once_to_the_next_route(httpx_mock, ending):
    httpx_mock.add_response(url=tasks_url(PRIMARY), json={"id": TASK})
    httpx_mock.add_response(
        url=tasks_url(PRIMARY, TASK),
        json=task(ending, error={"code": "InternalServiceError", "message": MARKER}),
    )
    httpx_mock.add_response(url=tasks_url(BACKUP), json={"id": TASK})
    httpx_mock.add_response(url=tasks_url(BACKUP, TASK), json=succeeded())
    ark = client()
    finished = ark.videos.wait(
        ark.videos.create(model="seedance-2.0", prompt="p").id, poll_interval=0
    )
    assert finished.status == "completed" and finished.reapi.provider == "backup"


def test_a_filtered_video_is_content_blocked_and_not_resubmitted(httpx_mock):
    httpx_mock.add_response(url=tasks_url(PRIMARY), json={"id": TASK})
    httpx_mock.add_response(
        url=tasks_url(PRIMARY, TASK),
        json=task(
            "failed", error={"code": "OutputVideoSensitiveContentDetected", "message": MARKER}
        ),
        is_reusable=True,
    )
    ark = client()
    finished = ark.videos.wait(
        ark.videos.create(model="seedance-2.0", prompt="p").id, poll_interval=0
    )
    assert finished.status == "failed" and finished.error.code == "content_policy_violation"
    assert MARKER not in finished.error.message
    assert httpx_mock.get_requests(url=tasks_url(BACKUP)) == []


def test_delete_cancels_the_task(httpx_mock):
    httpx_mock.add_response(url=tasks_url(PRIMARY), json={"id": TASK})
    httpx_mock.add_response(url=tasks_url(PRIMARY, TASK), method="DELETE", json={})
    ark = client()
    video = ark.videos.create(model="seedance-2.0", prompt="p")
    assert ark.videos.delete(video.id).deleted
    assert (
        httpx_mock.get_requests(method="DELETE")[0].headers["authorization"] == "Bearer ark-primary"
    )


def test_a_running_task_that_cannot_be_cancelled_is_not_an_error(httpx_mock):
    httpx_mock.add_response(url=tasks_url(PRIMARY), json={"id": TASK})
    httpx_mock.add_response(
        url=tasks_url(PRIMARY, TASK),
        method="DELETE",
        status_code=400,
        json=ark_error("InvalidParameter"),
    )
    ark = client()
    assert ark.videos.delete(ark.videos.create(model="seedance-2.0", prompt="p").id).deleted
