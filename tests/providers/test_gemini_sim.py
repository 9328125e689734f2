"""End to end through `reapi.ReAPI` against two Gemini API simulators on real sockets: every
preset the catalog offers is accepted, each fault on the primary is served by the backup,
content blocks are never failed over, and a Veo operation that ends failed is resubmitted once."""

from __future__ import annotations

import json
import logging
import time
import traceback

import pytest

from reapi import AsyncReAPI, ContentPolicyError, NoRouteAvailableError, ReAPI, ReapiError
from reapi.catalog import Catalog, default_catalog
from reapi.router import RouterConfig
from reapi.testing import Fault, SimServer, is_mp4, is_png, png_bytes
from reapi.testing.gemini_sim import GeminiSimulator

DEADLINE = 0.3
KEY = "sk-gemini-sim"
MARKER = "MARKER-geminisim-4b7a"
MODELS = ("gemini-3-pro-image", "gemini-3.1-flash-image", "gemini-2.5-flash-image", "veo-3.1")


def two_account_catalog() -> Catalog:
    base = default_catalog()
    models = {}
    for model_id in MODELS:
        spec = base.models[model_id].model_dump(mode="json")
        # The test's own deadline, not the shipped 180 s for images that take a minute, and
        # unstreamed (test_gemini_stream.py has the streamed call).
        first = {**spec["routes"][0], "first_byte_timeout": None, "stream_idle_timeout": None}
        spec["routes"] = [first, {**first, "provider": "backup"}]
        models[model_id] = spec
    gemini = base.providers["gemini"].model_dump(mode="json")
    return Catalog.model_validate(
        {"providers": {"gemini": gemini, "backup": gemini}, "models": models}
    )


@pytest.fixture
def sims():
    primary = SimServer(GeminiSimulator(KEY)).start()
    backup = SimServer(GeminiSimulator(KEY)).start()
    yield primary, backup
    primary.stop()
    backup.stop()


def make(sims, cls=ReAPI, primary_key=KEY):
    primary, backup = sims
    return cls(
        catalog=two_account_catalog(),
        provider_keys={"gemini": primary_key, "backup": KEY},
        provider_base_urls={
            "gemini": primary.base_url + "/v1beta",
            "backup": backup.base_url + "/v1beta",
        },
        router=RouterConfig(first_byte_timeout=DEADLINE, body_timeout=1.0),
    )


def creates(server: SimServer) -> int:
    requests = server.app.requests
    return requests.get("POST /models/{model}:generateContent", 0) + requests.get(
        "POST /models/{model}:predictLongRunning", 0
    )


# -- images ---------------------------------------------------------------------------------
def test_image_from_the_primary(sims):
    result = make(sims).images.generate(
        model="gemini-3-pro-image", prompt="a lighthouse", size="2752x1536"
    )
    assert result.reapi.provider == "gemini"
    assert is_png(result.data[0].content())
    assert result.size == "171x96"  # the simulator's 16:9 grid at 2K, drawn at 1/16
    assert result.usage["output_tokens"] == 1300 and result.output_format == "png"
    assert creates(sims[1]) == 0


def test_every_size_ratio_and_tier_the_catalog_allows_is_accepted(sims):
    client = make(sims)
    catalog = two_account_catalog()
    for model_id in MODELS[:3]:
        caps = catalog.models[model_id].capabilities
        for size in caps.sizes:
            client.images.generate(model=model_id, prompt="p", size=size)
        for ratio in caps.aspect_ratios:
            for tier in caps.resolutions:
                client.images.generate(
                    model=model_id, prompt="p", aspect_ratio=ratio, resolution=tier
                )
    assert creates(sims[1]) == 0


def test_edit_with_the_most_input_images_and_n(sims):
    client = make(sims)
    result = client.images.edit(
        model="gemini-3-pro-image", prompt="merge", image=[png_bytes(8, 8)] * 14, n=4
    )
    assert len(result.data) == 4 and creates(sims[0]) == 4
    client.images.edit(model="gemini-2.5-flash-image", prompt="p", image=[png_bytes(8, 8)] * 3)
    assert creates(sims[1]) == 0


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault.ERROR_500, "upstream_server_error"),
        (Fault.ERROR_503, "upstream_server_error"),
        (Fault.RATE_LIMIT, "rate_limit_exceeded"),
        (Fault.QUOTA_EXHAUSTED, "upstream_quota_exhausted"),
    ],
)
def test_google_shaped_faults_on_the_primary_are_served_by_the_backup(sims, fault, code):
    sims[0].app.faults.set(fault, count=1)
    result = make(sims).images.generate(model="gemini-3-pro-image", prompt="p")
    assert result.reapi.provider == "backup"
    assert [a.code for a in result.reapi.attempt_log] == [code, "ok"]


@pytest.mark.parametrize(
    "fault",
    [
        Fault.ERROR_500,
        Fault.RATE_LIMIT,
        Fault.REFUSE,
        Fault.RESET,
        Fault.HANG,
        Fault.SLOW_BODY,
        Fault.TRUNCATED_JSON,
    ],
)
def test_transport_faults_on_the_primary_are_served_by_the_backup(sims, fault):
    sims[0].faults.set(fault)
    started = time.perf_counter()
    result = make(sims).images.generate(model="gemini-3-pro-image", prompt="p")
    assert result.reapi.provider == "backup" and result.reapi.attempts == 2
    budget = {Fault.HANG: DEADLINE + 0.5, Fault.SLOW_BODY: DEADLINE + 1.5}.get(fault, 0.5)
    assert time.perf_counter() - started < budget


def test_a_refused_key_fails_over(sims):
    result = make(sims, primary_key="wrong").images.generate(model="gemini-3-pro-image", prompt="p")
    assert [a.code for a in result.reapi.attempt_log] == ["upstream_authentication_failed", "ok"]


def test_a_forbidden_prompt_is_blocked_and_not_failed_over(sims):
    with pytest.raises(ContentPolicyError) as info:
        make(sims).images.generate(model="gemini-3-pro-image", prompt="forbidden " + MARKER)
    assert info.value.provider_code == "PROHIBITED_CONTENT"
    assert MARKER not in str(info.value) and creates(sims[1]) == 0


@pytest.mark.parametrize("n", [1, 3])
def test_a_withheld_image_is_blocked_and_not_failed_over(sims, n):
    sims[0].app.faults.set(Fault.CONTENT_POLICY, count=1)
    with pytest.raises(ContentPolicyError) as info:
        make(sims).images.generate(model="gemini-3-pro-image", prompt="p", n=n)
    assert info.value.provider_code == "IMAGE_SAFETY"
    assert creates(sims[1]) == 0


def test_rate_limited_everywhere_says_when_to_retry(sims):
    for server in sims:
        server.app.faults.set(Fault.RATE_LIMIT, retry_after=7)
    with pytest.raises(NoRouteAvailableError) as info:
        make(sims).images.generate(model="gemini-3-pro-image", prompt="p")
    assert info.value.http_status == 429 and info.value.retry_after == 7


# -- Veo ------------------------------------------------------------------------------------
def test_video_lifecycle_and_keyed_download(sims):
    client = make(sims)
    video = client.videos.create(
        model="veo-3.1", prompt="waves", size="1280x720", input_reference=png_bytes(16, 9)
    )
    assert video.status == "queued" and video.reapi.provider == "gemini"
    assert client.videos.retrieve(video.id).status == "in_progress"
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.seconds == "8" and done.size == "1280x720"
    assert is_mp4(client.videos.download_content(done.id).content)
    assert sims[0].app.requests["GET /files/{id}:download"] == 1


def test_every_ratio_resolution_and_duration_the_catalog_allows_is_accepted(sims):
    client = make(sims)
    caps = two_account_catalog().models["veo-3.1"].capabilities
    for ratio in caps.aspect_ratios:
        for resolution in caps.resolutions:
            client.videos.create(
                model="veo-3.1", prompt="p", aspect_ratio=ratio, resolution=resolution
            )
    for seconds in caps.seconds:
        client.videos.create(model="veo-3.1", prompt="p", seconds=seconds, resolution="720p")
    for size in caps.sizes:
        client.videos.create(model="veo-3.1", prompt="p", size=size)
    assert creates(sims[1]) == 0


def test_create_faults_fail_over(sims):
    sims[0].app.faults.set(Fault.ERROR_503, count=1)
    video = make(sims).videos.create(model="veo-3.1", prompt="p", size="3840x2160")
    assert video.reapi.provider == "backup"


def test_a_failed_operation_is_resubmitted_once_to_the_next_route(sims):
    sims[0].app.faults.set(Fault.TASK_FAILS)
    client = make(sims)
    video = client.videos.create(model="veo-3.1", prompt="waves")
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.reapi.provider == "backup"
    assert client.videos.retrieve(video.id).id == done.id  # the old id follows the new task
    assert creates(sims[0]) == 1 and creates(sims[1]) == 1


def test_an_operation_failing_everywhere_ends_failed_after_one_resubmission(sims):
    for server in sims:
        server.app.faults.set(Fault.TASK_FAILS)
    client = make(sims)
    done = client.videos.wait(
        client.videos.create(model="veo-3.1", prompt="waves").id, poll_interval=0.01
    )
    assert done.status == "failed" and done.error.code == "generation_failed"
    assert creates(sims[0]) + creates(sims[1]) == 2


@pytest.mark.parametrize("how", ["prompt", "fault"])
def test_a_filtered_video_is_content_blocked_and_not_resubmitted(sims, how):
    if how == "fault":
        sims[0].app.faults.set(Fault.CONTENT_POLICY)
    client = make(sims)
    prompt = "a forbidden scene" if how == "prompt" else "waves"
    done = client.videos.wait(
        client.videos.create(model="veo-3.1", prompt=prompt).id, poll_interval=0.01
    )
    assert done.status == "failed" and done.error.code == "content_policy_violation"
    assert creates(sims[1]) == 0


async def test_async_client_against_the_simulators(sims):
    sims[0].faults.set(Fault.HANG)
    async with make(sims, AsyncReAPI) as client:
        image = await client.images.generate(model="gemini-3-pro-image", prompt="p", n=2)
        assert image.reapi.provider == "backup" and is_png(image.data[1].content())
        video = await client.videos.create(model="veo-3.1", prompt="w")
        done = await client.videos.wait(video.id, poll_interval=0.01)
        assert is_mp4((await client.videos.download_content(done.id)).content)


def test_no_marker_survives(sims, caplog):
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    for fault, prompt in [
        (Fault.NONE, MARKER),
        (Fault.NONE, "forbidden " + MARKER),
        (Fault.ERROR_500, MARKER),
        (Fault.TRUNCATED_JSON, MARKER),
    ]:
        sims[0].faults.set(fault)
        try:
            texts.append(
                make(sims)
                .images.generate(model="gemini-3-pro-image", prompt=prompt)
                .model_dump_json()
            )
        except ReapiError as error:
            texts.extend([str(error), repr(error), "".join(traceback.format_exception(error))])
    for text in [*texts, caplog.text]:
        assert MARKER not in text


# -- the simulator checks what the real API checks ------------------------------------------
PRO = "/v1beta/models/gemini-3-pro-image-preview:generateContent"
VEO = "/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
TEXT = {"contents": [{"parts": [{"text": "p"}]}]}


def ask(sim: GeminiSimulator, path: str, body: object, query: str = "", **headers: str):
    status, _, content = sim.handle(
        "POST", path, query, headers, json.dumps(body).encode(), origin="http://sim"
    )
    return status, json.loads(content)


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        (PRO, {**TEXT, "generationConfig": {"imageConfig": {"imageSize": "2k"}}}, 400),
        (PRO, {**TEXT, "generationConfig": {"imageConfig": {"imageSize": "512"}}}, 400),
        (PRO, {**TEXT, "generationConfig": {"imageConfig": {"aspectRatio": "1:4"}}}, 400),
        (PRO, {**TEXT, "generationConfig": {"imageConfig": {"personGeneration": "x"}}}, 400),
        (PRO, {**TEXT, "generationConfig": {"responseModalities": ["TEXT"]}}, 400),
        (
            "/v1beta/models/gemini-2.5-flash-image:generateContent",
            {**TEXT, "generationConfig": {"imageConfig": {"imageSize": "1K"}}},
            400,
        ),
        (PRO, {"contents": []}, 400),
        ("/v1beta/models/nope:generateContent", TEXT, 404),
        (
            VEO,
            {
                "instances": [{"prompt": "p"}],
                "parameters": {"resolution": "1080p", "durationSeconds": 4},
            },
            400,
        ),
        (VEO, {"instances": [{"prompt": "p"}], "parameters": {"seed": 1}}, 400),
        (VEO, {"instances": [{"prompt": "p", "image": {"gcsUri": "gs://b/x.png"}}]}, 400),
        (VEO, {"instances": [{"prompt": "p"}], "parameters": {"durationSeconds": "8"}}, 400),
    ],
)
def test_simulator_refuses_what_google_refuses(path, body, status):
    code, answer = ask(GeminiSimulator(KEY), path, body, **{"x-goog-api-key": KEY})
    assert code == status and answer["error"]["code"] == status


def test_simulator_wants_the_key():
    sim = GeminiSimulator(KEY)
    status, answer = ask(sim, PRO, TEXT)
    assert status == 403 and answer["error"]["status"] == "PERMISSION_DENIED"
    assert ask(sim, PRO, TEXT, query=f"key={KEY}")[0] == 200
    status, answer = ask(sim, PRO, TEXT, **{"x-goog-api-key": "other"})
    assert answer["error"]["details"][0]["reason"] == "API_KEY_INVALID"
