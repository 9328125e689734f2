"""fal adapter against pytest-httpx: the queue (submit → status → result, using the URLs fal
returns), `Key` auth, the per-model input mappers, and fal's errors mapped onto failover
(PROVIDERS.md §11, §12)."""

from __future__ import annotations

import base64
import json

import pytest
from second_hosts import host_catalog, host_route, model_spec

from reapi import ContentPolicyError, InvalidRequestError, ReAPI
from reapi.catalog import Catalog, default_catalog
from reapi.router import RouterConfig
from reapi.testing import sample_mp4

FAL = "https://fal.test"
BACKUP = "https://fal-backup.test"
CDN = "https://v3.fal.media/files/rabbit/out"
MARKER = "MARKER-fal-5c21"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 24
MP4 = b"\0\0\0\x18ftypmp42" + b"\0" * 16
REQUEST_ID = "764cabcf-b745-4b3e-ae38-1200304cf45b"


def catalog(backup: bool = True) -> Catalog:
    return host_catalog("fal", backup="backup" if backup else None)


def client(cat: Catalog | None = None) -> ReAPI:
    cat = cat or catalog()
    keys = {"fal": "fal-primary", "backup": "fal-backup"}
    urls = {"fal": FAL, "backup": BACKUP}
    return ReAPI(
        catalog=cat,
        provider_keys={k: v for k, v in keys.items() if k in cat.providers},
        provider_base_urls={k: v for k, v in urls.items() if k in cat.providers},
        router=RouterConfig(first_byte_timeout=0.5),
    )


def queued(base: str, model: str) -> dict[str, object]:
    """The documented submit answer: URLs under owner/app only, not the subpath."""
    app = "/".join(model.split("/")[:2])
    response_url = f"{base}/{app}/requests/{REQUEST_ID}"
    return {
        "request_id": REQUEST_ID,
        "gateway_request_id": REQUEST_ID,
        "status": "IN_QUEUE",
        "status_url": response_url + "/status",
        "response_url": response_url,
        "cancel_url": response_url + "/cancel",
        "queue_position": 0,
    }


def result_url(base: str, model: str) -> str:
    return queued(base, model)["response_url"]  # type: ignore[return-value]


def mock_queue(httpx_mock, model: str, result: dict[str, object], *, base: str = FAL, **kw):
    """Submit, one pending status (202), completed (200), then the result."""
    httpx_mock.add_response(method="POST", url=f"{base}/{model}", json=queued(base, model))
    status = result_url(base, model) + "/status"
    httpx_mock.add_response(url=status, status_code=202, json={"status": "IN_QUEUE"})
    httpx_mock.add_response(url=status, json={"status": "COMPLETED"})
    httpx_mock.add_response(method="GET", url=result_url(base, model), json=result, **kw)


def images(count: int = 1) -> dict[str, object]:
    return {
        "images": [
            {"url": f"{CDN}-{i}.png", "width": 1536, "height": 1024, "content_type": "image/png"}
            for i in range(count)
        ],
        "seed": 42,
    }


def sent_json(httpx_mock, url: str) -> dict[str, object]:
    return json.loads(httpx_mock.get_requests(method="POST", url=url)[0].content)


def data_url(content: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64," + base64.b64encode(content).decode()


def policy_error() -> dict[str, object]:
    """The documented content-policy body; its `input` quotes the prompt."""
    return {
        "detail": [
            {
                "loc": ["body", "prompt"],
                "msg": "The content was flagged by a content checker.",
                "type": "content_policy_violation",
                "url": "https://docs.fal.ai/errors#content_policy_violation",
                "input": MARKER,
                "categories": ["sexual"],
            }
        ]
    }


# -- GPT Image 2 on fal ------------------------------------------------------------------------
def test_image_submits_with_key_polls_the_returned_urls_and_fetches_the_cdn(httpx_mock):
    mock_queue(httpx_mock, "openai/gpt-image-2", images(2))
    for i in range(2):
        httpx_mock.add_response(url=f"{CDN}-{i}.png", content=PNG)
    answer = client().images.generate(
        model="gpt-image-2", prompt=MARKER, size="1536x1024", quality="high", n=2
    )
    submit = httpx_mock.get_requests(method="POST")[0]
    assert submit.url == f"{FAL}/openai/gpt-image-2"
    assert submit.headers["authorization"] == "Key fal-primary"
    assert json.loads(submit.headers["x-fal-object-lifecycle-preference"]) == {
        "expiration_duration_seconds": 3600
    }
    assert json.loads(submit.content) == {
        "prompt": MARKER,
        "image_size": {"width": 1536, "height": 1024},
        "quality": "high",
        "num_images": 2,
    }
    polls = httpx_mock.get_requests(
        method="GET", url=result_url(FAL, "openai/gpt-image-2") + "/status"
    )
    assert len(polls) == 2 and all(p.headers["authorization"] == "Key fal-primary" for p in polls)
    assert [base64.b64decode(d.b64_json) for d in answer.data] == [PNG, PNG]
    assert answer.size == "1536x1024" and answer.reapi.provider == "fal"
    cdn = httpx_mock.get_requests(url=f"{CDN}-0.png")[0]
    assert "authorization" not in cdn.headers


def test_url_results_are_handed_back_with_their_lifetime(httpx_mock):
    mock_queue(httpx_mock, "openai/gpt-image-2", images())
    answer = client().images.generate(model="gpt-image-2", prompt="p", response_format="url")
    assert answer.data[0].url == f"{CDN}-0.png" and answer.reapi.url_expires_at
    body = sent_json(httpx_mock, f"{FAL}/openai/gpt-image-2")
    assert body == {"prompt": "p", "image_size": "auto", "num_images": 1}


def test_edit_goes_to_the_edit_model_with_data_urls_and_mask(httpx_mock):
    mock_queue(httpx_mock, "openai/gpt-image-2/edit", images())
    client().images.edit(
        model="gpt-image-2",
        prompt="p",
        image=[PNG, PNG],
        mask=PNG,
        output_format="webp",
        response_format="url",
    )
    body = sent_json(httpx_mock, f"{FAL}/openai/gpt-image-2/edit")
    assert body["image_urls"] == [data_url(PNG), data_url(PNG)]
    assert body["mask_url"] == data_url(PNG) and body["output_format"] == "webp"
    # The result lives under owner/app only, not the /edit subpath.
    assert httpx_mock.get_requests(url=result_url(FAL, "openai/gpt-image-2"))


@pytest.mark.parametrize(
    "kwargs",
    [{"output_compression": 50}, {"moderation": "low"}, {"n": 5}],
)
def test_what_fal_cannot_honour_is_refused_before_any_call(httpx_mock, kwargs):
    with pytest.raises(InvalidRequestError) as info:
        client(catalog(backup=False)).images.generate(model="gpt-image-2", prompt="p", **kwargs)
    assert info.value.param in ("output_compression", "moderation", "size", "n")
    assert httpx_mock.get_requests() == []


def test_a_content_block_at_the_result_is_not_failed_over(httpx_mock):
    mock_queue(httpx_mock, "openai/gpt-image-2", policy_error(), status_code=422)
    with pytest.raises(ContentPolicyError) as info:
        client().images.generate(model="gpt-image-2", prompt=MARKER)
    assert info.value.provider_code == "content_policy_violation"
    assert MARKER not in str(info.value) and MARKER not in repr(info.value)
    assert httpx_mock.get_requests(url=f"{BACKUP}/openai/gpt-image-2") == []


def test_flagged_images_are_a_block_not_a_result(httpx_mock):
    flagged = {**images(), "has_nsfw_concepts": [True]}
    mock_queue(httpx_mock, "openai/gpt-image-2", flagged)
    with pytest.raises(ContentPolicyError):
        client().images.generate(model="gpt-image-2", prompt="p")
    assert httpx_mock.get_requests(url=f"{BACKUP}/openai/gpt-image-2") == []


@pytest.mark.parametrize(
    ("status", "body", "headers", "code"),
    [
        (
            500,
            {"detail": "Internal Server Error"},
            {"x-fal-retryable": "false"},
            "upstream_server_error",
        ),
        (
            503,
            {"detail": "Service Unavailable"},
            {"x-fal-retryable": "true"},
            "upstream_server_error",
        ),
        (429, {"detail": "Too Many Requests"}, {"retry-after": "3"}, "rate_limit_exceeded"),
        (401, {"detail": "Unauthorized"}, {}, "upstream_authentication_failed"),
        (
            403,
            {"detail": "User is locked. Reason: Exhausted balance."},
            {},
            "upstream_permission_denied",
        ),
        (402, {"detail": "Payment required"}, {}, "upstream_quota_exhausted"),
    ],
)
def test_account_rate_and_server_errors_at_submit_fail_over(
    httpx_mock, status, body, headers, code
):
    httpx_mock.add_response(
        method="POST",
        url=f"{FAL}/openai/gpt-image-2",
        status_code=status,
        json=body,
        headers=headers,
    )
    mock_queue(httpx_mock, "openai/gpt-image-2", images(), base=BACKUP)
    answer = client().images.generate(model="gpt-image-2", prompt="p", response_format="url")
    assert answer.reapi.provider == "backup"
    assert answer.reapi.attempt_log[0].code == code


def test_a_queue_url_on_another_host_is_never_called(httpx_mock):
    elsewhere = {
        **queued(FAL, "openai/gpt-image-2"),
        "response_url": "https://evil.test/x/requests/1",
    }
    httpx_mock.add_response(method="POST", url=f"{FAL}/openai/gpt-image-2", json=elsewhere)
    mock_queue(httpx_mock, "openai/gpt-image-2", images(), base=BACKUP)
    answer = client().images.generate(model="gpt-image-2", prompt="p", response_format="url")
    assert answer.reapi.provider == "backup"
    assert not any("evil.test" in str(r.url) for r in httpx_mock.get_requests())


def test_an_image_that_takes_too_long_is_cancelled_and_failed_over(httpx_mock):
    cat = catalog()
    spec = cat.models["gpt-image-2"].model_dump(mode="json")
    slow = host_route("fal", "gpt-image-2", max_wait=0)
    spec["routes"] = [slow, {**host_route("fal", "gpt-image-2"), "provider": "backup"}]
    cat = Catalog.model_validate(
        {"providers": cat.model_dump(mode="json")["providers"], "models": {"gpt-image-2": spec}}
    )
    httpx_mock.add_response(
        method="POST", url=f"{FAL}/openai/gpt-image-2", json=queued(FAL, "openai/gpt-image-2")
    )
    base = result_url(FAL, "openai/gpt-image-2")
    httpx_mock.add_response(url=base + "/status", status_code=202, json={"status": "IN_PROGRESS"})
    httpx_mock.add_response(method="PUT", url=base + "/cancel", status_code=400, json={})
    mock_queue(httpx_mock, "openai/gpt-image-2", images(), base=BACKUP)
    answer = client(cat).images.generate(model="gpt-image-2", prompt="p", response_format="url")
    assert answer.reapi.provider == "backup"
    assert answer.reapi.attempt_log[0].code == "upstream_timeout"
    assert httpx_mock.get_requests(method="PUT", url=base + "/cancel")


# -- the other image mappers -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "kwargs", "path", "expected"),
    [
        (
            "gemini-3-pro-image",
            {"size": "2752x1536", "n": 2},
            "fal-ai/nano-banana-pro",
            {"num_images": 2, "aspect_ratio": "16:9", "resolution": "2K"},
        ),
        (
            "gemini-3.1-flash-image",
            {"size": "512x512"},
            "fal-ai/nano-banana-2",
            {"num_images": 1, "aspect_ratio": "1:1", "resolution": "0.5K"},
        ),
        (
            "gemini-2.5-flash-image",
            {"size": "1536x1024"},
            "fal-ai/nano-banana",
            {"num_images": 1, "aspect_ratio": "3:2"},
        ),
        (
            "seedream-5.0-lite",
            {"size": "2560x1440", "n": 3, "seed": 7},
            "fal-ai/bytedance/seedream/v5/lite/text-to-image",
            {"image_size": {"width": 2560, "height": 1440}, "num_images": 3, "seed": 7},
        ),
        (
            "seedream-5.0-lite",
            {"resolution": "3K"},
            "fal-ai/bytedance/seedream/v5/lite/text-to-image",
            {"image_size": "auto_3K", "num_images": 1},
        ),
    ],
)
def test_image_mappers_write_each_models_own_fields(httpx_mock, model, kwargs, path, expected):
    mock_queue(httpx_mock, path, images())
    client().images.generate(model=model, prompt="p", response_format="url", **kwargs)
    assert sent_json(httpx_mock, f"{FAL}/{path}") == {"prompt": "p", **expected}


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("gemini-3-pro-image", "fal-ai/nano-banana-pro/edit"),
        ("seedream-5.0-lite", "fal-ai/bytedance/seedream/v5/lite/edit"),
    ],
)
def test_image_edits_go_to_the_edit_endpoint(httpx_mock, model, path):
    mock_queue(httpx_mock, path, images())
    client().images.edit(model=model, prompt="p", image=PNG, response_format="url")
    assert sent_json(httpx_mock, f"{FAL}/{path}")["image_urls"] == [data_url(PNG)]


@pytest.mark.parametrize(
    ("model", "kwargs"),
    [
        ("seedream-5.0-lite", {"size": "4096x4096"}),  # 4K: more pixels than fal renders
        ("seedream-5.0-lite", {"size": "4704x2016"}),
        ("seedream-5.0-lite", {"n": 7}),
    ],
)
def test_what_the_fal_route_cannot_render_never_reaches_it(httpx_mock, model, kwargs):
    with pytest.raises(InvalidRequestError):
        client(catalog(backup=False)).images.generate(model=model, prompt="p", **kwargs)
    assert httpx_mock.get_requests() == []


def test_seedream_output_format_has_no_fal_field_and_is_refused(httpx_mock):
    with pytest.raises(InvalidRequestError) as info:
        client().images.generate(model="seedream-5.0-lite", prompt="p", output_format="png")
    assert info.value.param == "output_format" and httpx_mock.get_requests() == []


# -- videos --------------------------------------------------------------------------------------
def video() -> dict[str, object]:
    return {"video": {"url": f"{CDN}.mp4", "content_type": "video/mp4", "file_size": 1024}}


@pytest.mark.parametrize(
    ("model", "kwargs", "path", "expected"),
    [
        (
            "veo-3.1",
            {"size": "1920x1080", "seconds": 8, "seed": 3},
            "fal-ai/veo3.1",
            {
                "aspect_ratio": "16:9",
                "duration": "8s",
                "resolution": "1080p",
                "seed": 3,
                "generate_audio": True,
                "auto_fix": False,
            },
        ),
        (
            "seedance-2.0",
            {"size": "864x480", "seconds": 12},
            "bytedance/seedance-2.0/text-to-video",
            {
                "aspect_ratio": "16:9",
                "resolution": "480p",
                "duration": "12",
                "generate_audio": True,
            },
        ),
        (
            "vidu-q3",
            {"aspect_ratio": "4:3", "resolution": "540p", "seconds": 16},
            "fal-ai/vidu/q3/text-to-video",
            {"aspect_ratio": "4:3", "resolution": "540p", "duration": 16, "audio": True},
        ),
        (
            "happy-horse-1.0",
            {"size": "1920x1080", "seconds": 15},
            "alibaba/happy-horse/text-to-video",
            {"aspect_ratio": "16:9", "resolution": "1080p", "duration": 15},
        ),
    ],
)
def test_video_mappers_write_each_models_own_fields(httpx_mock, model, kwargs, path, expected):
    httpx_mock.add_response(method="POST", url=f"{FAL}/{path}", json=queued(FAL, path))
    made = client().videos.create(model=model, prompt="p", **kwargs)
    assert made.status == "queued" and made.reapi.provider == "fal"
    assert sent_json(httpx_mock, f"{FAL}/{path}") == {"prompt": "p", **expected}


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("veo-3.1", "fal-ai/veo3.1/image-to-video"),
        ("seedance-2.0", "bytedance/seedance-2.0/image-to-video"),
        ("vidu-q3", "fal-ai/vidu/q3/image-to-video"),
        ("happy-horse-1.0", "alibaba/happy-horse/image-to-video"),
    ],
)
def test_an_input_reference_goes_to_the_image_to_video_model(httpx_mock, model, path):
    httpx_mock.add_response(method="POST", url=f"{FAL}/{path}", json=queued(FAL, path))
    client().videos.create(model=model, prompt="p", input_reference=PNG)
    assert sent_json(httpx_mock, f"{FAL}/{path}")["image_url"] == data_url(PNG)


def test_vidu_refuses_a_ratio_beside_a_reference(httpx_mock):
    with pytest.raises(InvalidRequestError):
        client().videos.create(model="vidu-q3", prompt="p", input_reference=PNG, aspect_ratio="1:1")
    assert httpx_mock.get_requests() == []


def test_topaz_upscale_sends_the_video_and_the_routes_factor(httpx_mock):
    path = "fal-ai/topaz/upscale/video"
    httpx_mock.add_response(method="POST", url=f"{FAL}/{path}", json=queued(FAL, path))
    video = sample_mp4()
    client().videos.create(model="upscale-video-2x", input_reference=("in.mp4", video, "video/mp4"))
    assert sent_json(httpx_mock, f"{FAL}/{path}") == {
        "video_url": data_url(video, "video/mp4"),
        "upscale_factor": 2,
        "model": "Proteus",
    }


@pytest.mark.parametrize("kwargs", [{"resolution": "4k"}, {"prompt": "sharper"}])
def test_topaz_on_fal_refuses_what_it_cannot_honour(httpx_mock, kwargs):
    with pytest.raises(InvalidRequestError):
        client().videos.create(model="upscale-video-2x", input_reference=sample_mp4(), **kwargs)
    assert httpx_mock.get_requests() == []


def test_video_poll_maps_states_reads_the_result_and_downloads_without_the_key(httpx_mock):
    path = "fal-ai/veo3.1"
    httpx_mock.add_response(method="POST", url=f"{FAL}/{path}", json=queued(FAL, path))
    status = result_url(FAL, path) + "/status"
    httpx_mock.add_response(url=status, status_code=202, json={"status": "IN_QUEUE"})
    httpx_mock.add_response(url=status, status_code=202, json={"status": "IN_PROGRESS"})
    httpx_mock.add_response(url=status, json={"status": "COMPLETED"}, is_reusable=True)
    httpx_mock.add_response(method="GET", url=result_url(FAL, path), json=video(), is_reusable=True)
    httpx_mock.add_response(url=f"{CDN}.mp4", content=MP4)
    fal = client()
    made = fal.videos.create(model="veo-3.1", prompt="p")
    assert fal.videos.retrieve(made.id).status == "queued"
    assert fal.videos.retrieve(made.id).status == "in_progress"
    done = fal.videos.wait(made.id, poll_interval=0)
    assert done.status == "completed" and done.expires_at
    assert fal.videos.download_content(made.id).content == MP4
    assert "authorization" not in httpx_mock.get_requests(url=f"{CDN}.mp4")[0].headers


def test_a_failed_result_is_resubmitted_once_to_the_next_route(httpx_mock):
    path = "fal-ai/veo3.1"
    httpx_mock.add_response(method="POST", url=f"{FAL}/{path}", json=queued(FAL, path))
    httpx_mock.add_response(url=result_url(FAL, path) + "/status", json={"status": "COMPLETED"})
    failure = {"detail": [{"loc": [], "msg": "model failed", "type": "internal_server_error"}]}
    httpx_mock.add_response(method="GET", url=result_url(FAL, path), status_code=500, json=failure)
    httpx_mock.add_response(method="POST", url=f"{BACKUP}/{path}", json=queued(BACKUP, path))
    httpx_mock.add_response(url=result_url(BACKUP, path) + "/status", json={"status": "COMPLETED"})
    httpx_mock.add_response(method="GET", url=result_url(BACKUP, path), json=video())
    fal = client()
    done = fal.videos.wait(fal.videos.create(model="veo-3.1", prompt="p").id, poll_interval=0)
    assert done.status == "completed" and done.reapi.provider == "backup"


def test_a_content_block_in_the_result_is_not_resubmitted(httpx_mock):
    path = "fal-ai/veo3.1"
    httpx_mock.add_response(method="POST", url=f"{FAL}/{path}", json=queued(FAL, path))
    httpx_mock.add_response(
        url=result_url(FAL, path) + "/status", json={"status": "COMPLETED"}, is_reusable=True
    )
    httpx_mock.add_response(
        method="GET",
        url=result_url(FAL, path),
        status_code=422,
        json=policy_error(),
        is_reusable=True,
    )
    fal = client()
    done = fal.videos.wait(fal.videos.create(model="veo-3.1", prompt="p").id, poll_interval=0)
    assert done.status == "failed" and done.error.code == "content_policy_violation"
    assert httpx_mock.get_requests(url=f"{BACKUP}/{path}") == []


def test_a_forged_task_id_is_never_put_in_a_url(httpx_mock):
    from reapi._jobs import VideoHandle

    forged = VideoHandle("veo-3.1", "fal", "fal-ai/veo3.1", "../../admin", 0).encode()
    with pytest.raises(InvalidRequestError):
        client().videos.retrieve(forged)
    assert httpx_mock.get_requests() == []


def test_a_route_without_an_input_map_is_a_configuration_error(httpx_mock):
    spec = model_spec("gpt-image-2")
    spec["routes"] = [{"provider": "fal", "upstream_model": "openai/gpt-image-2"}]
    fal = default_catalog().providers["fal"].model_dump(mode="json")
    cat = Catalog.model_validate({"providers": {"fal": fal}, "models": {"gpt-image-2": spec}})
    with pytest.raises(Exception) as info:
        client(cat).images.generate(model="gpt-image-2", prompt="p")
    assert "input_map" in str(info.value)
    assert httpx_mock.get_requests() == []
