"""The OpenAI simulator, driven by the official `openai` client (and httpx where the client
would hide the wire): Images and Videos field by field, errors, faults and counters."""

import base64
import struct

import httpx
import openai
import pytest

from reapi.testing import (
    Fault,
    OpenAISimulator,
    SimServer,
    is_jpeg,
    is_mp4,
    is_png,
    is_webp,
    png_bytes,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the Sora API methods
AUTH = {"authorization": "Bearer sk-sim"}


@pytest.fixture
def sim():
    with SimServer(OpenAISimulator()) as server:
        yield server


@pytest.fixture
def client(sim):
    with openai.OpenAI(base_url=sim.base_url + "/v1", api_key="sk-sim", max_retries=0) as c:
        yield c


def png_size(data: bytes) -> tuple[int, int]:
    assert is_png(data)
    return struct.unpack(">II", data[16:24])


# -- images: generations ------------------------------------------------------------------------
def test_generate_answers_the_documented_images_response(client, sim):
    image = client.images.generate(
        model="gpt-image-2", prompt="a fox", size="1536x1024", n=2, quality="high"
    )
    assert (image.size, image.quality, image.output_format, image.background) == (
        "1536x1024",
        "high",
        "png",
        "opaque",
    )
    assert len(image.data) == 2 and image.created > 0
    assert png_size(base64.b64decode(image.data[0].b64_json)) == (64, 43)  # the same shape
    usage = image.usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.text_tokens > 0 and usage.output_tokens_details
    assert sim.app.requests == {"POST /images/generations": 1}
    assert sim.app.last_request_headers["authorization"] == "Bearer sk-sim"


@pytest.mark.parametrize(
    ("output_format", "check"), [("png", is_png), ("jpeg", is_jpeg), ("webp", is_webp)]
)
def test_output_format_decides_the_bytes(client, output_format, check):
    image = client.images.generate(
        model="gpt-image-1.5", prompt="p", output_format=output_format, output_compression=80
    )
    assert check(base64.b64decode(image.data[0].b64_json))
    assert image.output_format == output_format and image.size == "1024x1024"  # auto, resolved


@pytest.mark.parametrize(
    "size", ["1024x1024", "3840x2160", "2160x3840", "1280x720", "2048x2048", "1008x3024", "auto"]
)
def test_gpt_image_2_takes_any_size_within_the_rules(client, size):
    assert client.images.generate(model="gpt-image-2", prompt="p", size=size).data


@pytest.mark.parametrize(
    "size",
    ["1000x1000", "4096x2160", "2176x2176", "3840x1024", "1024x4096", "0x0", "big", "1024x"],
)
def test_gpt_image_2_rejects_sizes_outside_the_rules(client, size):
    with pytest.raises(openai.BadRequestError) as error:
        client.images.generate(model="gpt-image-2", prompt="p", size=size)
    assert (error.value.code, error.value.param) == ("invalid_value", "size")
    assert error.value.type == "invalid_request_error"
    assert size in error.value.message  # like upstream, the message quotes the value


def test_other_gpt_models_take_only_the_fixed_sizes(client):
    with pytest.raises(openai.BadRequestError):
        client.images.generate(model="gpt-image-1.5", prompt="p", size="1280x720")


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"model": "gpt-imagine"}, "model", "invalid_value"),
        ({"n": 11}, "n", "invalid_value"),
        ({"n": 0}, "n", "invalid_value"),
        ({"n": "2"}, "n", "invalid_type"),
        ({"quality": "ultra"}, "quality", "invalid_value"),
        ({"background": "striped"}, "background", "invalid_value"),
        ({"background": "transparent"}, "background", "invalid_value"),  # not on gpt-image-2
        ({"output_format": "gif"}, "output_format", "invalid_value"),
        ({"output_compression": 101}, "output_compression", "invalid_value"),
        ({"moderation": "none"}, "moderation", "invalid_value"),
        ({"response_format": "url"}, "response_format", "unsupported_parameter"),
        ({"style": "vivid"}, "style", "unsupported_parameter"),
        ({"colour": "red"}, "colour", "unknown_parameter"),
        ({"prompt": None}, "prompt", "missing_required_parameter"),
        ({"prompt": "x" * 32001}, "prompt", "invalid_value"),
    ],
)
def test_invalid_generation_fields_are_400s_naming_the_param(sim, fields, param, code):
    body = {"model": "gpt-image-2", "prompt": "a prompt", **fields}
    body = {k: v for k, v in body.items() if v is not None}
    answer = httpx.post(sim.base_url + "/v1/images/generations", json=body, headers=AUTH)
    error = answer.json()["error"]
    assert answer.status_code == 400
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")


def test_prompt_errors_quote_the_prompt(sim):
    prompt = "MARKER-" + "x" * 32000
    answer = httpx.post(
        sim.base_url + "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": prompt},
        headers=AUTH,
    )
    assert "MARKER-" in answer.json()["error"]["message"]


def test_transparent_background_on_a_model_that_has_it(client):
    image = client.images.generate(
        model="gpt-image-1.5", prompt="p", background="transparent", output_format="webp"
    )
    assert image.background == "transparent"


def test_dall_e_answers_urls_that_need_no_key(client):
    image = client.images.generate(model="dall-e-3", prompt="a fox", size="1792x1024")
    assert image.data[0].revised_prompt and image.usage is None
    assert png_size(httpx.get(image.data[0].url).content) == (64, 37)


def test_streamed_generation_sends_partials_then_the_image(client):
    events = list(
        client.images.generate(model="gpt-image-2", prompt="p", stream=True, partial_images=2)
    )
    assert [e.type for e in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    final = base64.b64decode(events[-1].b64_json)
    assert is_png(final) and events[-1].usage
    # Partial images are drafts: valid images of the same format, never the final one.
    assert all(is_png(base64.b64decode(e.b64_json)) for e in events[:2])
    assert base64.b64decode(events[0].b64_json) != final


def test_a_streamed_image_is_the_plain_answers_image(client):
    plain = client.images.generate(model="gpt-image-2", prompt="p", size="1536x1024")
    streamed = list(
        client.images.generate(model="gpt-image-2", prompt="p", size="1536x1024", stream=True)
    )
    assert [e.type for e in streamed] == ["image_generation.completed"]  # partial_images 0
    completed = streamed[-1]
    assert completed.b64_json == plain.data[0].b64_json
    assert completed.usage.to_dict() == plain.usage.to_dict()
    assert (completed.size, completed.quality) == (plain.size, plain.quality)


def test_streamed_edit_sends_image_edit_events(client):
    events = list(
        client.images.edit(
            model="gpt-image-2", prompt="p", image=png_bytes(), stream=True, partial_images=1
        )
    )
    assert [e.type for e in events] == ["image_edit.partial_image", "image_edit.completed"]


def test_a_failing_generation_ends_its_stream_with_an_error_event(client, sim):
    sim.app.faults.set(Fault.TASK_FAILS, count=1)
    received = []
    with pytest.raises(openai.APIError) as info:
        for e in client.images.generate(
            model="gpt-image-2", prompt="p", stream=True, partial_images=2
        ):
            received.append(e.type)
    assert received == ["image_generation.partial_image"] * 2
    assert info.value.body["type"] == "server_error"
    raw = httpx.post(
        sim.base_url + "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "p", "stream": True},
        headers=AUTH,
    )
    assert raw.headers["content-type"].startswith("text/event-stream")  # the fault was counted


# -- images: edits ------------------------------------------------------------------------------
def test_edit_with_two_images_and_a_mask(client, sim):
    png = png_bytes()
    edited = client.images.edit(
        model="gpt-image-2",
        prompt="add a hat",
        image=[("a.png", png, "image/png"), ("b.png", png, "image/png")],
        mask=("m.png", png, "image/png"),
        size="1024x1536",
        input_fidelity="high",
    )
    assert edited.size == "1024x1536"
    assert png_size(base64.b64decode(edited.data[0].b64_json)) == (43, 64)
    assert edited.usage.input_tokens_details.image_tokens > 0
    assert sim.app.requests == {"POST /images/edits": 1}


def test_edit_with_one_image_field(client):
    assert client.images.edit(prompt="p", image=("a.png", png_bytes(), "image/png")).data


def test_edit_checks_image_bytes_and_counts(client):
    with pytest.raises(openai.BadRequestError) as error:
        client.images.edit(model="gpt-image-2", prompt="p", image=("a.gif", b"GIF89a..."))
    assert error.value.param == "image"
    with pytest.raises(openai.BadRequestError) as error:
        client.images.edit(model="gpt-image-2", prompt="p", image=[("a.png", png_bytes())] * 17)
    assert error.value.param == "image"
    with pytest.raises(openai.BadRequestError) as error:
        client.images.edit(
            model="gpt-image-2",
            prompt="p",
            image=("a.png", png_bytes()),
            mask=("m", b"\xff\xd8\xff"),
        )
    assert error.value.param == "mask"
    with pytest.raises(openai.BadRequestError) as error:
        client.images.edit(
            model="gpt-image-1-mini",
            prompt="p",
            image=("a.png", png_bytes()),
            input_fidelity="high",
        )
    assert error.value.param == "input_fidelity"


def test_edit_must_be_multipart(sim):
    answer = httpx.post(
        sim.base_url + "/v1/images/edits", json={"prompt": "p", "image": "x"}, headers=AUTH
    )
    assert answer.status_code == 400


# -- errors and faults --------------------------------------------------------------------------
def test_content_policy_blocks_with_openai_codes(client, sim):
    with pytest.raises(openai.BadRequestError) as blocked:
        client.images.generate(model="gpt-image-2", prompt="something Forbidden")
    assert blocked.value.code == "moderation_blocked"
    assert blocked.value.type == "image_generation_user_error"
    sim.faults.set(Fault.CONTENT_POLICY, count=1)  # handed on to the app
    with pytest.raises(openai.BadRequestError) as blocked:
        client.images.generate(model="gpt-image-2", prompt="harmless")
    assert blocked.value.code == "moderation_blocked"
    assert client.images.generate(model="gpt-image-2", prompt="harmless").data


def test_missing_or_wrong_key_is_a_401(sim):
    bad = openai.OpenAI(base_url=sim.base_url + "/v1", api_key="sk-wrong-key-1234", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as error:
        bad.images.generate(model="gpt-image-2", prompt="p")
    assert error.value.code == "invalid_api_key" and "sk-wrong" not in error.value.message
    answer = httpx.get(sim.base_url + "/v1/videos")
    assert answer.status_code == 401 and set(answer.json()["error"]) == {
        "message",
        "type",
        "param",
        "code",
    }


def test_rate_limit_is_a_429_with_retry_after(client, sim):
    sim.faults.set(Fault.RATE_LIMIT, retry_after=3, count=1)
    with pytest.raises(openai.RateLimitError) as limited:
        client.images.generate(model="gpt-image-2", prompt="p")
    assert limited.value.response.headers["retry-after"] == "3"
    assert (limited.value.code, limited.value.type) == ("rate_limit_exceeded", "requests")
    assert client.images.generate(model="gpt-image-2", prompt="p").data


def test_quota_exhausted_is_a_429_insufficient_quota(client, sim):
    sim.faults.set(Fault.QUOTA_EXHAUSTED)
    with pytest.raises(openai.RateLimitError) as quota:
        client.images.generate(model="gpt-image-2", prompt="p")
    assert quota.value.code == "insufficient_quota" and quota.value.type == "insufficient_quota"
    with pytest.raises(openai.RateLimitError):
        client.videos.create(prompt="p")


def test_status_faults_set_on_the_app_switch_are_openai_shaped(client, sim):
    sim.app.faults.set(Fault.ERROR_503, count=1)
    with pytest.raises(openai.InternalServerError) as error:
        client.images.generate(model="gpt-image-2", prompt="p")
    assert error.value.status_code == 503 and error.value.type == "server_error"


def test_unknown_paths_are_404s(sim):
    answer = httpx.post(sim.base_url + "/v1/images/variations", headers=AUTH)
    assert answer.status_code == 404 and "Invalid URL" in answer.json()["error"]["message"]


# -- videos -------------------------------------------------------------------------------------
def test_video_lifecycle(client, sim):
    video = client.videos.create(model="sora-2", prompt="waves", seconds="8", size="1280x720")
    assert (video.object, video.status, video.progress) == ("video", "queued", 0)
    assert video.id.startswith("video_") and (video.seconds, video.size) == ("8", "1280x720")
    assert video.prompt == "waves" and video.model == "sora-2" and video.created_at > 0
    with pytest.raises(openai.NotFoundError):
        client.videos.download_content(video.id)  # not ready yet
    polled = client.videos.with_raw_response.retrieve(video.id)
    assert polled.headers["openai-poll-after-ms"] == "10"
    assert (polled.parse().status, polled.parse().progress) == ("in_progress", 50)
    done = client.videos.retrieve(video.id)
    assert (done.status, done.progress) == ("completed", 100)
    assert done.expires_at == done.completed_at + 3600
    assert is_mp4(client.videos.download_content(video.id).content)
    assert is_png(client.videos.download_content(video.id, variant="thumbnail").content)
    assert is_png(client.videos.download_content(video.id, variant="spritesheet").content)
    deleted = client.videos.delete(video.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (video.id, "video.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
    assert sim.app.requests == {
        "POST /videos": 1,
        "GET /videos/{id}": 3,
        "GET /videos/{id}/content": 4,
        "DELETE /videos/{id}": 1,
    }


def test_create_and_poll_follows_the_poll_after_header(client):
    video = client.videos.create_and_poll(prompt="waves", model="sora-2-pro", size="1920x1080")
    assert video.status == "completed" and video.size == "1920x1080"


def test_input_reference_as_a_file_or_an_image_url(client, sim):
    assert client.videos.create(prompt="p", input_reference=("r.png", png_bytes(), "image/png"))
    form = "".join(  # an object reference in a form: input_reference[image_url]
        f'--b0\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in {"prompt": "p", "input_reference[image_url]": "https://x/r"}.items()
    )
    answer = httpx.post(
        sim.base_url + "/v1/videos",
        content=(form + "--b0--\r\n").encode(),
        headers={**AUTH, "content-type": "multipart/form-data; boundary=b0"},
    )
    assert answer.status_code == 200, answer.text
    answer = httpx.post(
        sim.base_url + "/v1/videos",
        json={"prompt": "p", "input_reference": {"image_url": "data:image/png;base64,AAAA"}},
        headers=AUTH,
    )
    assert answer.status_code == 200 and answer.json()["status"] == "queued"
    with pytest.raises(openai.BadRequestError) as error:
        client.videos.create(prompt="p", input_reference=("r.txt", b"not an image"))
    assert error.value.param == "input_reference"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"seconds": "5"}, "seconds"),
        ({"seconds": 8}, "seconds"),
        ({"size": "1920x1080"}, "size"),  # sora-2-pro only
        ({"model": "sora-3"}, "model"),
        ({"prompt": ""}, "prompt"),
        ({"input_reference": {"image_url": "ftp://x"}}, "input_reference"),
        ({"duration": "4"}, "duration"),
    ],
)
def test_invalid_video_fields(sim, fields, param):
    answer = httpx.post(sim.base_url + "/v1/videos", json={"prompt": "p", **fields}, headers=AUTH)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == param


def test_failing_and_blocked_video_jobs(client, sim):
    sim.faults.set(Fault.TASK_FAILS, count=1)
    failing = client.videos.create(prompt="waves")
    blocked = client.videos.create(prompt="a forbidden scene")
    fine = client.videos.create(prompt="waves")
    for _ in range(2):
        failing, blocked, fine = (client.videos.retrieve(v.id) for v in (failing, blocked, fine))
    assert failing.status == "failed" and failing.error.code == "video_generation_failed"
    assert blocked.status == "failed" and blocked.error.code == "moderation_blocked"
    assert fine.status == "completed" and fine.error is None
    with pytest.raises(openai.NotFoundError):
        client.videos.download_content(failing.id)


def test_list_is_a_cursor_page(client):
    ids = [client.videos.create(prompt=f"p{i}").id for i in range(5)]
    page = client.videos.list(limit=2)
    assert [v.id for v in page.data] == ids[:2:-1] and page.has_more  # newest first
    assert [v.id for v in client.videos.list(limit=2, order="asc")] == ids  # auto-paging
    assert [v.id for v in client.videos.list(after=ids[1], order="asc").data] == ids[2:]


def test_remix_a_completed_video(client):
    source = client.videos.create(prompt="waves", seconds="4")
    with pytest.raises(openai.BadRequestError):
        client.videos.remix(source.id, prompt="bigger waves")  # not completed yet
    for _ in range(2):
        client.videos.retrieve(source.id)
    remix = client.videos.remix(source.id, prompt="bigger waves")
    assert remix.remixed_from_video_id == source.id and remix.seconds == "4"


def test_video_ids_are_unique_across_simulators(client, sim):
    with SimServer(OpenAISimulator()) as other:
        other_client = openai.OpenAI(base_url=other.base_url + "/v1", api_key="sk-sim")
        theirs = other_client.videos.create(prompt="p")
        with pytest.raises(openai.NotFoundError):
            client.videos.retrieve(theirs.id)


def test_polls_to_complete_is_configurable():
    with SimServer(OpenAISimulator(polls_to_complete=1)) as sim:
        client = openai.OpenAI(base_url=sim.base_url + "/v1", api_key="sk-sim")
        video = client.videos.create(prompt="p")
        assert client.videos.retrieve(video.id).status == "completed"
