"""xAI adapter against pytest-httpx: Grok Imagine `images/generations` and `images/edits`
(JSON, `b64_json`, no `size`), `videos/generations` + `videos/{request_id}` as documented
(PROVIDERS.md §8), silent moderation (`respect_moderation: false`) as content blocks, and both
of xAI's error shapes mapped onto failover."""

from __future__ import annotations

import base64
import json

import pytest

from reapi import ContentPolicyError, InvalidRequestError, ReAPI
from reapi.catalog import Catalog, default_catalog
from reapi.router import RouterConfig

PRIMARY = "http://xai.test/v1"
BACKUP = "http://xai-backup.test/v1"
REQUEST = "4c5e8f1a-2b3d-4e6f-8a9b-0c1d2e3f4a5b"
MARKER = "MARKER-xai-7d2e"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 24
MP4 = b"\0\0\0\x18ftypmp42" + b"\0" * 16
VIDEO = "https://vidgen.x.ai/xai-vidgen-bucket/xai-video-1.mp4"
MODEL_IDS = ("grok-imagine-1.0", "grok-imagine-1.0-video")


def two_host_catalog() -> Catalog:
    base = default_catalog()
    models = {}
    for model_id in MODEL_IDS:
        spec = base.models[model_id].model_dump(mode="json")
        first = spec["routes"][0]
        spec["routes"] = [first, {**first, "provider": "backup"}]
        models[model_id] = spec
    xai = base.providers["xai"].model_dump(mode="json")
    return Catalog.model_validate({"providers": {"xai": xai, "backup": xai}, "models": models})


def client() -> ReAPI:
    return ReAPI(
        catalog=two_host_catalog(),
        provider_keys={"xai": "xai-primary", "backup": "xai-backup"},
        provider_base_urls={"xai": PRIMARY, "backup": BACKUP},
        router=RouterConfig(first_byte_timeout=0.5),
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def images_answer(*items: dict[str, object]) -> dict[str, object]:
    """The documented answer: `data[]` with `b64_json` (JPEG) and `revised_prompt`."""
    return {"data": list(items) or [{"b64_json": b64(JPEG), "revised_prompt": ""}]}


def openai_error(code: str | None, kind: str = "invalid_request_error") -> dict[str, object]:
    return {"error": {"message": f"bad: {MARKER}", "type": kind, "param": None, "code": code}}


def sent(httpx_mock, index: int = 0) -> dict[str, object]:
    return json.loads(httpx_mock.get_requests()[index].content)


# -- images ------------------------------------------------------------------------------------
def test_generate_sends_documented_body_without_size(httpx_mock):
    httpx_mock.add_response(url=f"{PRIMARY}/images/generations", json=images_answer())
    result = client().images.generate(
        model="grok-imagine-1.0", prompt=MARKER, size="1536x1024", n=2, user="u-1"
    )
    request = httpx_mock.get_requests()[0]
    assert request.headers["authorization"] == "Bearer xai-primary"
    assert sent(httpx_mock) == {
        "model": "grok-imagine-image",
        "prompt": MARKER,
        "n": 2,
        "aspect_ratio": "3:2",
        "resolution": "1k",
        "response_format": "b64_json",
        "user": "u-1",
    }
    assert result.data[0].content() == JPEG and result.output_format == "jpeg"


def test_aspect_ratio_and_tier_are_sent_as_given(httpx_mock):
    httpx_mock.add_response(url=f"{PRIMARY}/images/generations", json=images_answer())
    client().images.generate(
        model="grok-imagine-1.0", prompt="p", aspect_ratio="19.5:9", resolution="2k"
    )
    body = sent(httpx_mock)
    assert body["aspect_ratio"] == "19.5:9" and body["resolution"] == "2k" and "size" not in body


def test_a_data_url_in_b64_json_is_read(httpx_mock):
    item = {"b64_json": "data:image/png;base64," + b64(PNG)}
    httpx_mock.add_response(url=f"{PRIMARY}/images/generations", json=images_answer(item))
    result = client().images.generate(model="grok-imagine-1.0", prompt="p")
    assert result.data[0].content() == PNG and result.output_format == "png"


def test_one_input_image_is_an_image_object(httpx_mock):
    httpx_mock.add_response(url=f"{PRIMARY}/images/edits", json=images_answer())
    client().images.edit(model="grok-imagine-1.0", prompt="add a hat", image=PNG)
    body = sent(httpx_mock)
    assert body["image"] == {"url": "data:image/png;base64," + b64(PNG), "type": "image_url"}
    assert "images" not in body and "aspect_ratio" not in body


def test_several_input_images_are_an_images_list(httpx_mock):
    httpx_mock.add_response(url=f"{PRIMARY}/images/edits", json=images_answer())
    client().images.edit(
        model="grok-imagine-1.0", prompt="merge", image=[PNG, JPEG], aspect_ratio="1:1"
    )
    body = sent(httpx_mock)
    assert [i["url"][:22] for i in body["images"]] == [
        "data:image/png;base64,",
        "data:image/jpeg;base64",
    ]
    assert all(i["type"] == "image_url" for i in body["images"]) and "image" not in body
    assert body["aspect_ratio"] == "1:1"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"quality": "high"}, "quality"),
        ({"output_format": "png"}, "output_format"),
        ({"background": "transparent"}, "background"),
        ({"seed": 1}, "seed"),
        ({"moderation": "low"}, "moderation"),
        ({"output_compression": 50}, "output_compression"),
        ({"size": "1792x1024"}, "size"),
        ({"resolution": "4k"}, "resolution"),
        ({"n": 11}, "n"),
    ],
)
def test_what_xai_cannot_do_is_refused_before_any_call(httpx_mock, kwargs, param):
    with pytest.raises(InvalidRequestError) as info:
        client().images.generate(model="grok-imagine-1.0", prompt="p", **kwargs)
    assert info.value.param == param
    assert httpx_mock.get_requests() == []


def test_one_image_edit_refuses_an_aspect_ratio(httpx_mock):
    with pytest.raises(InvalidRequestError) as info:
        client().images.edit(model="grok-imagine-1.0", prompt="p", image=PNG, size="1024x1024")
    assert info.value.param == "size"
    assert httpx_mock.get_requests() == []


def test_a_moderated_item_is_dropped(httpx_mock):
    items = ({"b64_json": "", "respect_moderation": False}, {"b64_json": b64(JPEG)})
    httpx_mock.add_response(url=f"{PRIMARY}/images/generations", json=images_answer(*items))
    result = client().images.generate(model="grok-imagine-1.0", prompt="p", n=2)
    assert [d.content() for d in result.data] == [JPEG]


@pytest.mark.parametrize(
    "answer", [{"data": []}, {"data": [{"b64_json": "", "respect_moderation": False}]}]
)
def test_a_silently_blocked_request_is_a_content_block_not_failed_over(httpx_mock, answer):
    httpx_mock.add_response(url=f"{PRIMARY}/images/generations", json=answer)
    with pytest.raises(ContentPolicyError) as info:
        client().images.generate(model="grok-imagine-1.0", prompt="p")
    assert info.value.provider_code == "respect_moderation"
    assert httpx_mock.get_requests(url=f"{BACKUP}/images/generations") == []


def test_a_usage_guidelines_refusal_in_the_legacy_shape_is_a_content_block(httpx_mock):
    body = {
        "code": "The caller does not have permission to execute the specified operation",
        "error": f"Content violates usage guidelines. Team: t, {MARKER}",
    }
    httpx_mock.add_response(url=f"{PRIMARY}/images/generations", status_code=403, json=body)
    with pytest.raises(ContentPolicyError) as info:
        client().images.generate(model="grok-imagine-1.0", prompt="p")
    assert MARKER not in str(info.value) + repr(info.value)
    assert httpx_mock.get_requests(url=f"{BACKUP}/images/generations") == []


@pytest.mark.parametrize(
    ("status", "body", "attempt_code"),
    [
        (429, openai_error("rate_limit_exceeded"), "rate_limit_exceeded"),
        (500, openai_error(None, "server_error"), "upstream_server_error"),
        (
            401,
            {"code": "Unauthenticated", "error": "Incorrect API key"},
            "upstream_authentication_failed",
        ),
        (
            403,
            {"code": "The caller does not have permission", "error": "no credits"},
            "upstream_permission_denied",
        ),
        (
            400,
            {"code": "Client specified an invalid argument", "error": "Incorrect API key provided"},
            "upstream_authentication_failed",
        ),
    ],
)
def test_rate_server_and_account_errors_fail_over(httpx_mock, status, body, attempt_code):
    httpx_mock.add_response(url=f"{PRIMARY}/images/generations", status_code=status, json=body)
    httpx_mock.add_response(url=f"{BACKUP}/images/generations", json=images_answer())
    result = client().images.generate(model="grok-imagine-1.0", prompt="p")
    assert result.reapi.provider == "backup"
    assert result.reapi.attempt_log[0].code == attempt_code
    assert httpx_mock.get_requests()[1].headers["authorization"] == "Bearer xai-backup"


def test_a_bad_request_is_not_failed_over_and_keeps_no_message(httpx_mock):
    httpx_mock.add_response(
        url=f"{PRIMARY}/images/generations", status_code=400, json=openai_error("invalid_argument")
    )
    with pytest.raises(Exception) as info:
        client().images.generate(model="grok-imagine-1.0", prompt="p")
    assert getattr(info.value, "provider_code", None) == "invalid_argument"
    assert MARKER not in str(info.value) + repr(info.value)


# -- video -------------------------------------------------------------------------------------
def videos_url(base: str, request_id: str | None = None) -> str:
    return f"{base}/videos/" + (request_id or "generations")


def status(state: str | None = "done", **video: object) -> dict[str, object]:
    """The documented poll answer."""
    body: dict[str, object] = {"model": "grok-imagine-video", "progress": 100}
    if state is not None:
        body["status"] = state
    if state in (None, "done"):
        body["video"] = {"url": VIDEO, "duration": 6, "respect_moderation": True, **video}
        body["usage"] = {"cost_in_usd_ticks": 123}
    return body


def test_create_sends_documented_body(httpx_mock):
    httpx_mock.add_response(url=videos_url(PRIMARY), json={"request_id": REQUEST})
    video = client().videos.create(
        model="grok-imagine-1.0-video", prompt=MARKER, size="1280x720", seconds=10
    )
    request = httpx_mock.get_requests()[0]
    assert request.headers["authorization"] == "Bearer xai-primary"
    assert sent(httpx_mock) == {
        "model": "grok-imagine-video",
        "prompt": MARKER,
        "duration": 10,
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    assert video.status == "queued" and video.seconds == "10"


def test_unspecified_duration_is_six_seconds_and_image_is_the_first_frame(httpx_mock):
    httpx_mock.add_response(url=videos_url(PRIMARY), json={"request_id": REQUEST})
    client().videos.create(
        model="grok-imagine-1.0-video", prompt="p", input_reference="https://e.test/a.png"
    )
    assert sent(httpx_mock) == {
        "model": "grok-imagine-video",
        "prompt": "p",
        "duration": 6,
        "image": {"url": "https://e.test/a.png"},
    }


def test_a_first_frame_file_goes_as_a_data_url(httpx_mock):
    httpx_mock.add_response(url=videos_url(PRIMARY), json={"request_id": REQUEST})
    client().videos.create(
        model="grok-imagine-1.0-video", prompt="p", input_reference=PNG, resolution="480p"
    )
    body = sent(httpx_mock)
    assert body["image"] == {"url": "data:image/png;base64," + b64(PNG)}
    assert body["resolution"] == "480p"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seconds": 16},
        {"resolution": "1080p"},
        {"aspect_ratio": "21:9"},
        {"seed": 7},
        {"input_reference": PNG, "aspect_ratio": "1:1"},
        {"input_reference": MP4},
    ],
)
def test_what_grok_video_cannot_do_is_refused(httpx_mock, kwargs):
    with pytest.raises(InvalidRequestError):
        client().videos.create(model="grok-imagine-1.0-video", prompt="p", **kwargs)
    assert httpx_mock.get_requests() == []


def test_the_image_model_id_is_not_a_video_model(httpx_mock):
    with pytest.raises(InvalidRequestError) as info:
        client().videos.create(model="grok-imagine-1.0", prompt="p")
    assert info.value.param == "model"


def test_poll_maps_states_then_downloads_without_the_key(httpx_mock):
    httpx_mock.add_response(url=videos_url(PRIMARY), json={"request_id": REQUEST})
    httpx_mock.add_response(url=videos_url(PRIMARY, REQUEST), status_code=202, content=b"")
    httpx_mock.add_response(
        url=videos_url(PRIMARY, REQUEST), json={"status": "pending", "progress": 0}
    )
    httpx_mock.add_response(
        url=videos_url(PRIMARY, REQUEST), json={"status": "pending", "progress": 40}
    )
    httpx_mock.add_response(url=videos_url(PRIMARY, REQUEST), json=status(), is_reusable=True)
    httpx_mock.add_response(url=VIDEO, content=MP4)
    xai = client()
    video = xai.videos.create(model="grok-imagine-1.0-video", prompt="p")
    assert xai.videos.retrieve(video.id).status == "queued"
    assert xai.videos.retrieve(video.id).status == "queued"
    middle = xai.videos.retrieve(video.id)
    assert middle.status == "in_progress" and middle.progress == 40
    done = xai.videos.wait(video.id, poll_interval=0)
    assert done.status == "completed" and done.seconds == "6"
    assert xai.videos.download_content(video.id).content == MP4
    assert "authorization" not in httpx_mock.get_requests(url=VIDEO)[0].headers
    polls = httpx_mock.get_requests(url=videos_url(PRIMARY, REQUEST))
    assert all(p.headers["authorization"] == "Bearer xai-primary" for p in polls)


def test_a_done_answer_without_status_is_completed(httpx_mock):
    httpx_mock.add_response(url=videos_url(PRIMARY), json={"request_id": REQUEST})
    httpx_mock.add_response(url=videos_url(PRIMARY, REQUEST), json=status(None))
    xai = client()
    done = xai.videos.wait(
        xai.videos.create(model="grok-imagine-1.0-video", prompt="p").id, poll_interval=0
    )
    assert done.status == "completed"


def test_a_moderated_video_is_content_blocked_and_not_resubmitted(httpx_mock):
    httpx_mock.add_response(url=videos_url(PRIMARY), json={"request_id": REQUEST})
    httpx_mock.add_response(
        url=videos_url(PRIMARY, REQUEST), json=status(respect_moderation=False), is_reusable=True
    )
    xai = client()
    done = xai.videos.wait(
        xai.videos.create(model="grok-imagine-1.0-video", prompt="p").id, poll_interval=0
    )
    assert done.status == "failed" and done.error.code == "content_policy_violation"
    assert httpx_mock.get_requests(url=videos_url(BACKUP)) == []


@pytest.mark.parametrize(
    "ending", [{"status": "failed", "error": {"code": "internal"}}, {"status": "expired"}]
)
def test_a_failed_or_expired_request_is_resubmitted_once_to_the_next_route(httpx_mock, ending):
    httpx_mock.add_response(url=videos_url(PRIMARY), json={"request_id": REQUEST})
    httpx_mock.add_response(url=videos_url(PRIMARY, REQUEST), json=ending)
    httpx_mock.add_response(url=videos_url(BACKUP), json={"request_id": REQUEST})
    httpx_mock.add_response(url=videos_url(BACKUP, REQUEST), json=status())
    xai = client()
    done = xai.videos.wait(
        xai.videos.create(model="grok-imagine-1.0-video", prompt="p").id, poll_interval=0
    )
    assert done.status == "completed" and done.reapi.provider == "backup"


def test_create_errors_fail_over_and_a_strange_request_id_is_never_called(httpx_mock):
    httpx_mock.add_response(url=videos_url(PRIMARY), json={"request_id": "../x"})
    httpx_mock.add_response(url=videos_url(BACKUP), json={"request_id": REQUEST})
    video = client().videos.create(model="grok-imagine-1.0-video", prompt="p")
    assert video.reapi.provider == "backup"
