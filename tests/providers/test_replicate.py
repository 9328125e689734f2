"""Replicate adapter against pytest-httpx: official-model predictions with `{"input": ...}`,
`Prefer: wait` for images, polling, cancel, the per-model input mappers and Replicate's errors
mapped onto failover (PROVIDERS.md §11, §12)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from second_hosts import host_catalog, host_route, model_spec

from reapi import ContentPolicyError, InvalidRequestError, ReAPI
from reapi.catalog import Catalog, default_catalog
from reapi.router import RouterConfig
from reapi.testing import sample_mp4

API = "https://replicate.test/v1"
BACKUP = "https://replicate-backup.test/v1"
DELIVERY = "https://replicate.delivery/xezq/out"
MARKER = "MARKER-replicate-77d0"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 24
MP4 = b"\0\0\0\x18ftypmp42" + b"\0" * 16
ID = "gm3qorzdhgbfurvjtvhg6dckhu"


def catalog(backup: bool = True) -> Catalog:
    return host_catalog("replicate", backup="backup" if backup else None)


def client(cat: Catalog | None = None) -> ReAPI:
    cat = cat or catalog()
    keys = {"replicate": "r8_primary", "backup": "r8_backup"}
    urls = {"replicate": API, "backup": BACKUP}
    return ReAPI(
        catalog=cat,
        provider_keys={k: v for k, v in keys.items() if k in cat.providers},
        provider_base_urls={k: v for k, v in urls.items() if k in cat.providers},
        router=RouterConfig(first_byte_timeout=0.5),
    )


def prediction(status: str, output: object = None, error: str | None = None, **extra: object):
    """The documented prediction object."""
    body: dict[str, object] = {
        "id": ID,
        "model": "google/veo-3.1",
        "version": "dp-4d0bcc010b3049749a251855f12800be",
        "input": {"prompt": MARKER},
        "logs": "",
        "output": output,
        "data_removed": False,
        "error": error,
        "status": status,
        "created_at": "2026-08-01T10:00:00.000000Z",
        "urls": {
            "get": f"{API}/predictions/{ID}",
            "cancel": f"{API}/predictions/{ID}/cancel",
            "stream": f"https://stream.replicate.com/v1/files/{ID}",
        },
    }
    body.update(extra)
    return body


def create_url(model: str, base: str = API) -> str:
    return f"{base}/models/{model}/predictions"


def poll_url(base: str = API) -> str:
    return f"{base}/predictions/{ID}"


def sent_input(httpx_mock, url: str) -> dict[str, object]:
    body = json.loads(httpx_mock.get_requests(method="POST", url=url)[0].content)
    assert set(body) == {"input"}
    return body["input"]


def data_url(content: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64," + base64.b64encode(content).decode()


# -- images ----------------------------------------------------------------------------------------
def test_image_waits_with_prefer_and_reads_a_list_of_urls(httpx_mock):
    urls = [f"{DELIVERY}-0.png", f"{DELIVERY}-1.png"]
    httpx_mock.add_response(
        method="POST",
        url=create_url("bytedance/seedream-5-lite"),
        status_code=201,
        json=prediction("succeeded", urls),
    )
    for url in urls:
        httpx_mock.add_response(url=url, content=PNG)
    answer = client().images.generate(
        model="seedream-5.0-lite", prompt=MARKER, size="2560x1440", n=2, output_format="jpeg"
    )
    sent = httpx_mock.get_requests(method="POST")[0]
    assert sent.headers["authorization"] == "Bearer r8_primary"
    assert sent.headers["prefer"] == "wait=10"
    assert sent_input(httpx_mock, create_url("bytedance/seedream-5-lite")) == {
        "prompt": MARKER,
        "size": "2K",
        "aspect_ratio": "16:9",
        "output_format": "jpeg",
        "sequential_image_generation": "auto",
        "max_images": 2,
    }
    assert [base64.b64decode(d.b64_json) for d in answer.data] == [PNG, PNG]
    assert "authorization" not in httpx_mock.get_requests(url=urls[0])[0].headers


def test_an_unfinished_image_is_polled_until_it_succeeds(httpx_mock):
    httpx_mock.add_response(
        method="POST", url=create_url("xai/grok-imagine-image"), json=prediction("starting")
    )
    httpx_mock.add_response(url=poll_url(), json=prediction("processing"))
    httpx_mock.add_response(url=poll_url(), json=prediction("succeeded", [f"{DELIVERY}.png"]))
    answer = client().images.generate(
        model="grok-imagine-1.0", prompt="p", n=3, aspect_ratio="16:9", response_format="url"
    )
    assert answer.data[0].url == f"{DELIVERY}.png"
    # Replicate deletes outputs an hour after the prediction was created.
    assert answer.reapi.url_expires_at <= 1785578400 + 3600
    assert sent_input(httpx_mock, create_url("xai/grok-imagine-image")) == {
        "prompt": "p",
        "n": 3,
        "aspect_ratio": "16:9",
    }


def test_grok_edit_takes_one_image_and_refuses_what_the_model_would_ignore(httpx_mock):
    httpx_mock.add_response(
        method="POST",
        url=create_url("xai/grok-imagine-image"),
        json=prediction("succeeded", [f"{DELIVERY}.png"]),
    )
    client().images.edit(model="grok-imagine-1.0", prompt="p", image=PNG, response_format="url")
    assert sent_input(httpx_mock, create_url("xai/grok-imagine-image")) == {
        "prompt": "p",
        "image": data_url(PNG),
    }
    for kwargs in ({"n": 2}, {"aspect_ratio": "1:1"}):
        with pytest.raises(InvalidRequestError):
            client().images.edit(model="grok-imagine-1.0", prompt="p", image=PNG, **kwargs)
    assert len(httpx_mock.get_requests()) == 1


@pytest.mark.parametrize(
    ("model", "kwargs"),
    [
        ("seedream-5.0-lite", {"seed": 1}),
        ("seedream-5.0-lite", {"resolution": "4K"}),
        ("grok-imagine-1.0", {"output_compression": 10}),
    ],
)
def test_what_replicate_cannot_honour_is_refused_before_any_call(httpx_mock, model, kwargs):
    with pytest.raises(InvalidRequestError):
        client(catalog(backup=False)).images.generate(model=model, prompt="p", **kwargs)
    assert httpx_mock.get_requests() == []


def test_a_sensitive_prediction_is_a_content_block_not_failed_over(httpx_mock):
    error = f"The input or output was flagged as sensitive ({MARKER}). (E005)"
    httpx_mock.add_response(
        method="POST",
        url=create_url("bytedance/seedream-5-lite"),
        json=prediction("failed", error=error),
    )
    with pytest.raises(ContentPolicyError) as info:
        client().images.generate(model="seedream-5.0-lite", prompt="p")
    assert info.value.provider_code == "E005"
    assert MARKER not in str(info.value) and MARKER not in repr(info.value)
    assert httpx_mock.get_requests(url=create_url("bytedance/seedream-5-lite", BACKUP)) == []


@pytest.mark.parametrize(
    ("status", "body", "headers", "code"),
    [
        (500, {"detail": "Internal server error"}, {}, "upstream_server_error"),
        (
            429,
            {"detail": "Request was throttled. Your rate limit resets in ~30s."},
            {"retry-after": "30"},
            "rate_limit_exceeded",
        ),
        (
            401,
            {"title": "Unauthenticated", "detail": "Invalid token", "status": 401},
            {},
            "upstream_authentication_failed",
        ),
        (
            402,
            {"title": "Insufficient credit", "detail": "...", "status": 402},
            {},
            "upstream_quota_exhausted",
        ),
    ],
)
def test_account_rate_and_server_errors_fail_over(httpx_mock, status, body, headers, code):
    model = "bytedance/seedream-5-lite"
    httpx_mock.add_response(
        method="POST", url=create_url(model), status_code=status, json=body, headers=headers
    )
    httpx_mock.add_response(
        method="POST",
        url=create_url(model, BACKUP),
        json=prediction("succeeded", [f"{DELIVERY}.png"]),
    )
    answer = client().images.generate(model="seedream-5.0-lite", prompt="p", response_format="url")
    assert answer.reapi.provider == "backup"
    assert answer.reapi.attempt_log[0].code == code


@pytest.mark.parametrize("error", ["Prediction failed. (E1000)", None])
def test_a_failed_image_prediction_fails_over(httpx_mock, error):
    model = "bytedance/seedream-5-lite"
    httpx_mock.add_response(
        method="POST", url=create_url(model), json=prediction("failed", error=error)
    )
    httpx_mock.add_response(
        method="POST",
        url=create_url(model, BACKUP),
        json=prediction("succeeded", [f"{DELIVERY}.png"]),
    )
    answer = client().images.generate(model="seedream-5.0-lite", prompt="p", response_format="url")
    assert answer.reapi.provider == "backup"


def test_a_validation_error_is_not_failed_over(httpx_mock):
    model = "bytedance/seedream-5-lite"
    invalid = {
        "title": "Input validation failed",
        "detail": f"- prompt: {MARKER}",
        "status": 422,
        "invalid_fields": [{"type": "invalid", "field": "prompt", "description": MARKER}],
    }
    httpx_mock.add_response(method="POST", url=create_url(model), status_code=422, json=invalid)
    with pytest.raises(Exception) as info:
        client().images.generate(model="seedream-5.0-lite", prompt="p")
    assert MARKER not in str(info.value)
    assert httpx_mock.get_requests(url=create_url(model, BACKUP)) == []


def test_an_image_that_takes_too_long_is_cancelled_and_failed_over(httpx_mock):
    spec = model_spec("seedream-5.0-lite")
    slow = host_route("replicate", "seedream-5.0-lite", max_wait=0)
    spec["routes"] = [slow, {**host_route("replicate", "seedream-5.0-lite"), "provider": "backup"}]
    providers = catalog().model_dump(mode="json")["providers"]
    cat = Catalog.model_validate({"providers": providers, "models": {spec["id"]: spec}})
    model = "bytedance/seedream-5-lite"
    httpx_mock.add_response(method="POST", url=create_url(model), json=prediction("processing"))
    httpx_mock.add_response(
        method="POST", url=f"{API}/predictions/{ID}/cancel", json=prediction("canceled")
    )
    httpx_mock.add_response(
        method="POST",
        url=create_url(model, BACKUP),
        json=prediction("succeeded", [f"{DELIVERY}.png"]),
    )
    answer = client(cat).images.generate(
        model="seedream-5.0-lite", prompt="p", response_format="url"
    )
    assert [a.code for a in answer.reapi.attempt_log] == ["upstream_timeout", "ok"]


# -- videos ----------------------------------------------------------------------------------------
def test_veo_video_is_created_plainly_polled_and_downloaded(httpx_mock):
    httpx_mock.add_response(
        method="POST",
        url=create_url("google/veo-3.1"),
        status_code=201,
        json=prediction("starting"),
    )
    httpx_mock.add_response(url=poll_url(), json=prediction("starting"))
    httpx_mock.add_response(url=poll_url(), json=prediction("processing"))
    httpx_mock.add_response(
        url=poll_url(), json=prediction("succeeded", f"{DELIVERY}.mp4"), is_reusable=True
    )
    httpx_mock.add_response(url=f"{DELIVERY}.mp4", content=MP4)
    replicate = client()
    made = replicate.videos.create(
        model="veo-3.1", prompt=MARKER, size="720x1280", seconds=6, input_reference=PNG
    )
    sent = httpx_mock.get_requests(method="POST")[0]
    assert "prefer" not in sent.headers
    assert sent_input(httpx_mock, create_url("google/veo-3.1")) == {
        "prompt": MARKER,
        "image": data_url(PNG),
        "aspect_ratio": "9:16",
        "duration": 6,
        "resolution": "720p",
        "generate_audio": True,
    }
    assert replicate.videos.retrieve(made.id).status == "queued"
    assert replicate.videos.retrieve(made.id).status == "in_progress"
    done = replicate.videos.wait(made.id, poll_interval=0)
    assert done.status == "completed"
    assert replicate.videos.download_content(made.id).content == MP4


def test_veo_4k_is_not_sent_to_replicate(httpx_mock):
    with pytest.raises(InvalidRequestError):
        client().videos.create(model="veo-3.1", prompt="p", size="3840x2160")
    assert httpx_mock.get_requests() == []


def test_topaz_upscale_uploads_the_video_then_sends_its_file_url(httpx_mock):
    """The video goes to the Files API (`POST /files`, multipart `content`); the model is given
    Replicate's copy (`urls.get`), never a URL of the caller's to fetch again."""
    file_url = f"{API}/files/cmu2b9jn3a5y8zf1l6dnkyrlrg"
    httpx_mock.add_response(
        method="POST",
        url=f"{API}/files",
        status_code=201,
        json={"id": "cmu2b9jn3a5y8zf1l6dnkyrlrg", "urls": {"get": file_url}},
    )
    httpx_mock.add_response(
        method="POST", url=create_url("topazlabs/video-upscale"), json=prediction("starting")
    )
    client().videos.create(model="enhance-video-1.0", input_reference=sample_mp4(), resolution="4k")
    [upload] = httpx_mock.get_requests(url=f"{API}/files")
    assert upload.headers["authorization"] == "Bearer r8_primary"
    assert b'name="content"; filename="input_reference.mp4"' in upload.content
    assert sample_mp4() in upload.content
    assert sent_input(httpx_mock, create_url("topazlabs/video-upscale")) == {
        "video": file_url,
        "target_resolution": "4k",
    }


def test_an_upload_without_a_file_url_fails_over_and_is_deleted(httpx_mock):
    httpx_mock.add_response(method="POST", url=f"{API}/files", status_code=201, json={"id": "x"})
    httpx_mock.add_response(method="DELETE", url=f"{API}/files/x", status_code=204)
    file_url = f"{BACKUP}/files/y"
    httpx_mock.add_response(
        method="POST",
        url=f"{BACKUP}/files",
        status_code=201,
        json={"id": "y", "urls": {"get": file_url}},
    )
    httpx_mock.add_response(
        method="POST",
        url=create_url("topazlabs/video-upscale", BACKUP),
        json=prediction("starting"),
    )
    video = client().videos.create(model="enhance-video-1.0", input_reference=sample_mp4())
    assert video.reapi.provider == "backup"
    assert httpx_mock.get_requests(method="DELETE", url=f"{API}/files/x")


def test_an_upload_without_a_file_id_is_not_used(httpx_mock):
    """A copy reapi could not delete is never given to a model."""
    file_url = f"{API}/files/x"
    httpx_mock.add_response(
        method="POST", url=f"{API}/files", status_code=201, json={"urls": {"get": file_url}}
    )
    httpx_mock.add_response(
        method="POST",
        url=f"{BACKUP}/files",
        status_code=201,
        json={"id": "y", "urls": {"get": f"{BACKUP}/files/y"}},
    )
    httpx_mock.add_response(
        method="POST",
        url=create_url("topazlabs/video-upscale", BACKUP),
        json=prediction("starting"),
    )
    video = client().videos.create(model="enhance-video-1.0", input_reference=sample_mp4())
    assert video.reapi.provider == "backup"
    assert httpx_mock.get_requests(url=create_url("topazlabs/video-upscale")) == []


def test_a_failed_video_is_resubmitted_once_to_the_next_route(httpx_mock):
    httpx_mock.add_response(
        method="POST", url=create_url("google/veo-3.1"), json=prediction("starting")
    )
    httpx_mock.add_response(
        url=poll_url(), json=prediction("failed", error="Prediction failed. (E6716)")
    )
    other = "fb2xyzbackup0000000000000a"
    httpx_mock.add_response(
        method="POST",
        url=create_url("google/veo-3.1", BACKUP),
        json=prediction("starting", id=other),
    )
    httpx_mock.add_response(
        url=f"{BACKUP}/predictions/{other}",
        json=prediction("succeeded", f"{DELIVERY}.mp4", id=other),
    )
    replicate = client()
    done = replicate.videos.wait(
        replicate.videos.create(model="veo-3.1", prompt="p").id, poll_interval=0
    )
    assert done.status == "completed" and done.reapi.provider == "backup"


def test_a_sensitive_video_is_content_blocked_and_not_resubmitted(httpx_mock):
    httpx_mock.add_response(
        method="POST", url=create_url("google/veo-3.1"), json=prediction("starting")
    )
    httpx_mock.add_response(
        url=poll_url(),
        json=prediction("failed", error="flagged as sensitive. (E005)"),
        is_reusable=True,
    )
    replicate = client()
    done = replicate.videos.wait(
        replicate.videos.create(model="veo-3.1", prompt="p").id, poll_interval=0
    )
    assert done.status == "failed" and done.error.code == "content_policy_violation"
    assert httpx_mock.get_requests(url=create_url("google/veo-3.1", BACKUP)) == []


def test_cancel_posts_to_the_cancel_url(httpx_mock):
    httpx_mock.add_response(
        method="POST", url=create_url("google/veo-3.1"), json=prediction("starting")
    )
    httpx_mock.add_response(
        method="POST", url=f"{API}/predictions/{ID}/cancel", json=prediction("canceled")
    )
    replicate = client()
    made = replicate.videos.create(model="veo-3.1", prompt="p")
    replicate.videos.delete(made.id)
    assert httpx_mock.get_requests(method="POST", url=f"{API}/predictions/{ID}/cancel")


def test_a_strange_prediction_id_fails_over_and_is_never_called(httpx_mock):
    httpx_mock.add_response(
        method="POST", url=create_url("google/veo-3.1"), json=prediction("starting", id="../x")
    )
    httpx_mock.add_response(
        method="POST", url=create_url("google/veo-3.1", BACKUP), json=prediction("starting")
    )
    assert client().videos.create(model="veo-3.1", prompt="p").reapi.provider == "backup"


def test_only_official_owner_name_models_are_routed(httpx_mock):
    spec = model_spec("veo-3.1")
    spec["routes"] = [{**host_route("replicate", "veo-3.1"), "upstream_model": "google/veo/../x"}]
    providers = {"replicate": default_catalog().providers["replicate"].model_dump(mode="json")}
    cat = Catalog.model_validate({"providers": providers, "models": {"veo-3.1": spec}})
    with pytest.raises(Exception) as info:
        client(cat).videos.create(model="veo-3.1", prompt="p")
    assert info.value.code == "configuration_error"
    assert httpx_mock.get_requests() == []


# -- the uploaded source deleted once its prediction has ended -------------------------------------
FILE = "cmu2b9jn3a5y8zf1l6dnkyrlrg"


def upload_answer(base: str = API) -> dict[str, object]:
    return {"id": FILE, "urls": {"get": f"{base}/files/{FILE}"}}


def started_enhancement(httpx_mock, replicate: ReAPI | None = None):
    httpx_mock.add_response(
        method="POST", url=f"{API}/files", status_code=201, json=upload_answer()
    )
    httpx_mock.add_response(
        method="POST", url=create_url("topazlabs/video-upscale"), json=prediction("starting")
    )
    replicate = replicate or client()
    return replicate, replicate.videos.create(
        model="enhance-video-1.0", input_reference=sample_mp4()
    )


def deletes(httpx_mock, base: str = API) -> int:
    return len(httpx_mock.get_requests(method="DELETE", url=f"{base}/files/{FILE}"))


@pytest.mark.parametrize(
    ("ended", "state"),
    [
        (prediction("succeeded", f"{DELIVERY}.mp4"), "completed"),
        (prediction("failed", error="Prediction failed. (E1000)"), "failed"),
        (prediction("canceled"), "failed"),
    ],
)
def test_the_uploaded_source_is_deleted_once_the_prediction_ends(httpx_mock, ended, state):
    replicate, made = started_enhancement(httpx_mock, client(catalog(backup=False)))
    httpx_mock.add_response(url=poll_url(), json=prediction("processing"))
    assert replicate.videos.retrieve(made.id).status == "in_progress"
    assert deletes(httpx_mock) == 0  # the model may still be reading it
    httpx_mock.add_response(url=poll_url(), json=ended)
    httpx_mock.add_response(method="DELETE", url=f"{API}/files/{FILE}", status_code=204)
    assert replicate.videos.retrieve(made.id).status == state
    [delete] = httpx_mock.get_requests(method="DELETE", url=f"{API}/files/{FILE}")
    assert delete.headers["authorization"] == "Bearer r8_primary"


def test_the_uploaded_source_is_deleted_when_the_caller_deletes_the_video(httpx_mock):
    replicate, made = started_enhancement(httpx_mock)
    httpx_mock.add_response(
        method="POST", url=f"{API}/predictions/{ID}/cancel", json=prediction("canceled")
    )
    httpx_mock.add_response(method="DELETE", url=f"{API}/files/{FILE}", status_code=404)
    replicate.videos.delete(made.id)
    assert deletes(httpx_mock) == 1  # 404: already gone, not asked again


@pytest.mark.parametrize("create", [{"status_code": 503}, {"status_code": 402}, "no answer"])
def test_the_uploaded_source_is_deleted_when_creating_the_prediction_fails(httpx_mock, create):
    httpx_mock.add_response(
        method="POST", url=f"{API}/files", status_code=201, json=upload_answer()
    )
    if create == "no answer":
        httpx_mock.add_exception(
            httpx.ReadTimeout("timed out"), method="POST", url=create_url("topazlabs/video-upscale")
        )
    else:
        httpx_mock.add_response(
            method="POST", url=create_url("topazlabs/video-upscale"), json={}, **create
        )
    httpx_mock.add_response(method="DELETE", url=f"{API}/files/{FILE}", status_code=204)
    httpx_mock.add_response(
        method="POST", url=f"{BACKUP}/files", status_code=201, json=upload_answer(BACKUP)
    )
    httpx_mock.add_response(
        method="POST",
        url=create_url("topazlabs/video-upscale", BACKUP),
        json=prediction("starting"),
    )
    video = client().videos.create(model="enhance-video-1.0", input_reference=sample_mp4())
    assert video.reapi.provider == "backup"
    assert deletes(httpx_mock) == 1 and deletes(httpx_mock, BACKUP) == 0


def test_a_failing_delete_is_retried_then_logged_and_never_fails_the_poll(httpx_mock, caplog):
    replicate, made = started_enhancement(httpx_mock, client(catalog(backup=False)))
    httpx_mock.add_response(url=poll_url(), json=prediction("succeeded", f"{DELIVERY}.mp4"))
    httpx_mock.add_response(method="DELETE", url=f"{API}/files/{FILE}", status_code=503)
    httpx_mock.add_exception(
        httpx.ConnectError("refused"), method="DELETE", url=f"{API}/files/{FILE}"
    )
    httpx_mock.add_response(method="DELETE", url=f"{API}/files/{FILE}", status_code=500)
    with caplog.at_level("WARNING", logger="reapi"):
        assert replicate.videos.retrieve(made.id).status == "completed"
    assert deletes(httpx_mock) == 3
    [record] = [r for r in caplog.records if r.name == "reapi" and r.levelname == "WARNING"]
    assert (record.provider, record.status, record.attempts) == ("replicate", 500, 3)
    assert FILE not in record.getMessage() and MARKER not in record.getMessage()


def test_a_refused_delete_is_not_retried(httpx_mock, caplog):
    replicate, made = started_enhancement(httpx_mock, client(catalog(backup=False)))
    httpx_mock.add_response(url=poll_url(), json=prediction("failed", error="(E1000)"))
    httpx_mock.add_response(method="DELETE", url=f"{API}/files/{FILE}", status_code=403)
    with caplog.at_level("WARNING", logger="reapi"):
        assert replicate.videos.retrieve(made.id).status == "failed"
    assert deletes(httpx_mock) == 1
    assert [r.status for r in caplog.records if r.levelname == "WARNING"] == [403]


def test_a_generation_has_no_file_to_delete(httpx_mock):
    httpx_mock.add_response(
        method="POST", url=create_url("google/veo-3.1"), json=prediction("starting")
    )
    httpx_mock.add_response(url=poll_url(), json=prediction("succeeded", f"{DELIVERY}.mp4"))
    replicate = client()
    replicate.videos.retrieve(replicate.videos.create(model="veo-3.1", prompt="p").id)
    assert httpx_mock.get_requests(method="DELETE") == []
