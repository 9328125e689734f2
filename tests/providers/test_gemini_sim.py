"""End to end through `reapi.ReAPI` against the Gemini API simulator: two simulated accounts as
two routes, each fault on the primary with the backup serving, blocks never failed over, and a
Veo operation that ends failed resubmitted once."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from reapi import AsyncReAPI, ContentPolicyError, NoRouteAvailableError, ReAPI
from reapi.catalog import Catalog, default_catalog
from reapi.router import RouterConfig
from reapi.testing.gemini_sim import GeminiSimulator

PRIMARY, BACKUP = "primary.sim", "backup.sim"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCBd81ytgAAAABJRU5ErkJggg=="
)


class Hosts(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Sends each request to the simulator named by its host."""

    def __init__(self, sims: dict[str, GeminiSimulator]) -> None:
        self.transports = {host: sim.transport() for host, sim in sims.items()}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.transports[request.url.host].handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.transports[request.url.host].handle_async_request(request)


def two_account_catalog() -> Catalog:
    base = default_catalog()
    models = {}
    for model_id in (
        "gemini-3-pro-image",
        "gemini-3.1-flash-image",
        "gemini-2.5-flash-image",
        "veo-3.1",
    ):
        spec = base.models[model_id].model_dump(mode="json")
        first = spec["routes"][0]
        spec["routes"] = [first, {**first, "provider": "backup"}]
        models[model_id] = spec
    gemini = base.providers["gemini"].model_dump(mode="json")
    return Catalog.model_validate(
        {"providers": {"gemini": gemini, "backup": gemini}, "models": models}
    )


@pytest.fixture
def sims() -> dict[str, GeminiSimulator]:
    return {PRIMARY: GeminiSimulator("key-a"), BACKUP: GeminiSimulator("key-b")}


def make_client(sims: dict[str, GeminiSimulator], primary_key: str = "key-a") -> ReAPI:
    return ReAPI(
        catalog=two_account_catalog(),
        provider_keys={"gemini": primary_key, "backup": "key-b"},
        provider_base_urls={
            "gemini": f"http://{PRIMARY}/v1beta",
            "backup": f"http://{BACKUP}/v1beta",
        },
        router=RouterConfig(first_byte_timeout=0.3),
        http_client=httpx.Client(transport=Hosts(sims)),
    )


def creates(sim: GeminiSimulator) -> int:
    return sum(1 for line in sim.seen if line.startswith("POST"))


# -- images ---------------------------------------------------------------------------------------
def test_image_from_the_primary(sims):
    result = make_client(sims).images.generate(
        model="gemini-3-pro-image", prompt="a lighthouse", size="2752x1536"
    )
    assert result.reapi.provider == "gemini"
    assert result.data[0].content().startswith(b"\x89PNG")
    assert result.size == "2736x1536"  # the simulator's own grid for 16:9 at 2K
    assert result.usage["output_tokens"] == 1300
    assert creates(sims[BACKUP]) == 0


def test_every_tier_and_ratio_the_catalog_allows_is_accepted(sims):
    client = make_client(sims)
    spec = two_account_catalog().models["gemini-3.1-flash-image"]
    for ratio in spec.capabilities.aspect_ratios:
        client.images.generate(
            model="gemini-3.1-flash-image", prompt="p", aspect_ratio=ratio, resolution="512"
        )
    for size in spec.capabilities.sizes:
        client.images.generate(model="gemini-3.1-flash-image", prompt="p", size=size)
    client.images.generate(model="gemini-2.5-flash-image", prompt="p", size="1536x1024")
    assert creates(sims[BACKUP]) == 0


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("server_error", "upstream_server_error"),
        ("internal_error", "upstream_server_error"),
        ("rate_limit", "rate_limit_exceeded"),
    ],
)
def test_image_faults_on_the_primary_are_served_by_the_backup(sims, fault, code):
    sims[PRIMARY].fail_next(fault)
    result = make_client(sims).images.generate(model="gemini-3-pro-image", prompt="p")
    assert result.reapi.provider == "backup"
    assert [a.code for a in result.reapi.attempt_log] == [code, "ok"]


def test_a_refused_key_fails_over(sims):
    result = make_client(sims, primary_key="wrong").images.generate(
        model="gemini-3-pro-image", prompt="p"
    )
    assert result.reapi.attempt_log[0].code == "upstream_authentication_failed"
    assert result.reapi.provider == "backup"


@pytest.mark.parametrize("how", ["prompt", "output"])
def test_content_blocks_are_not_failed_over(sims, how):
    prompt = "something forbidden" if how == "prompt" else "p"
    if how == "output":
        sims[PRIMARY].fail_next("content_block")
    with pytest.raises(ContentPolicyError) as info:
        make_client(sims).images.generate(model="gemini-3-pro-image", prompt=prompt)
    expected = "PROHIBITED_CONTENT" if how == "prompt" else "IMAGE_SAFETY"
    assert info.value.provider_code == expected
    assert creates(sims[BACKUP]) == 0


def test_edit_with_input_images_and_n(sims):
    result = make_client(sims).images.edit(
        model="gemini-3-pro-image", prompt="merge", image=[PNG, PNG], n=3
    )
    assert len(result.data) == 3 and creates(sims[PRIMARY]) == 3


def test_rate_limited_everywhere_says_when_to_retry(sims):
    sims[PRIMARY].fail_next("rate_limit")
    sims[BACKUP].fail_next("rate_limit")
    with pytest.raises(NoRouteAvailableError) as info:
        make_client(sims).images.generate(model="gemini-3-pro-image", prompt="p")
    assert info.value.http_status == 429 and info.value.retry_after == 2


async def test_async_client_sends_n_calls_together(sims):
    async with AsyncReAPI(
        catalog=two_account_catalog(),
        provider_keys={"gemini": "key-a", "backup": "key-b"},
        provider_base_urls={
            "gemini": f"http://{PRIMARY}/v1beta",
            "backup": f"http://{BACKUP}/v1beta",
        },
        router=RouterConfig(first_byte_timeout=0.3),
        http_client=httpx.AsyncClient(transport=Hosts(sims)),
    ) as client:
        sims[PRIMARY].fail_next("internal_error")
        result = await client.images.generate(model="gemini-3-pro-image", prompt="p", n=2)
    assert result.reapi.provider == "backup" and len(result.data) == 2


# -- Veo -------------------------------------------------------------------------------------------
def test_video_created_polled_and_downloaded_with_the_key(sims):
    client = make_client(sims)
    video = client.videos.create(model="veo-3.1", prompt="a fox", input_reference=PNG, seconds=4)
    done = client.videos.wait(video.id, poll_interval=0)
    assert done.status == "completed"
    content = client.videos.download_content(video.id)
    assert content.content[4:8] == b"ftyp" and content.content_type == "video/mp4"
    assert any(":download" in line for line in sims[PRIMARY].seen)


def test_video_create_faults_fail_over(sims):
    sims[PRIMARY].fail_next("server_error")
    video = make_client(sims).videos.create(model="veo-3.1", prompt="p", size="3840x2160")
    assert video.reapi.provider == "backup"


def test_failed_operation_is_resubmitted_once_to_the_backup(sims):
    sims[PRIMARY].fail_next("task_failed")
    client = make_client(sims)
    video = client.videos.create(model="veo-3.1", prompt="p")
    done = client.videos.wait(video.id, poll_interval=0)
    assert done.status == "completed" and done.reapi.provider == "backup"
    assert creates(sims[PRIMARY]) == 1 and creates(sims[BACKUP]) == 1


def test_failed_everywhere_ends_failed_after_one_resubmission(sims):
    sims[PRIMARY].fail_next("task_failed")
    sims[BACKUP].fail_next("task_failed")
    client = make_client(sims)
    done = client.videos.wait(client.videos.create(model="veo-3.1", prompt="p").id, poll_interval=0)
    assert done.status == "failed" and done.error.code == "generation_failed"
    assert creates(sims[PRIMARY]) == 1 and creates(sims[BACKUP]) == 1


@pytest.mark.parametrize("how", ["prompt", "output"])
def test_filtered_video_is_content_blocked_and_not_resubmitted(sims, how):
    prompt = "a forbidden scene" if how == "prompt" else "p"
    if how == "output":
        sims[PRIMARY].fail_next("content_block")
    client = make_client(sims)
    done = client.videos.wait(
        client.videos.create(model="veo-3.1", prompt=prompt).id, poll_interval=0
    )
    assert done.status == "failed" and done.error.code == "content_policy_violation"
    assert creates(sims[BACKUP]) == 0


# -- the simulator checks what the real API checks ---------------------------------------------
def ask(sim: GeminiSimulator, path: str, body: object, **headers: str) -> tuple[int, dict]:
    status, _, content = sim.handle(
        "POST",
        path,
        "",
        {"x-goog-api-key": "key-a", **headers},
        json.dumps(body).encode(),
        origin="http://primary.sim",
    )
    return status, json.loads(content)


VEO = "/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
PRO = "/v1beta/models/gemini-3-pro-image-preview:generateContent"
TEXT = {"contents": [{"parts": [{"text": "p"}]}]}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        (PRO, {**TEXT, "generationConfig": {"imageConfig": {"imageSize": "2k"}}}, 400),
        (PRO, {**TEXT, "generationConfig": {"imageConfig": {"imageSize": "512"}}}, 400),
        (PRO, {**TEXT, "generationConfig": {"imageConfig": {"personGeneration": "x"}}}, 400),
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
    code, answer = ask(GeminiSimulator("key-a"), path, body)
    assert code == status and answer["error"]["code"] == status


def test_simulator_wants_the_key():
    sim = GeminiSimulator("key-a")
    status, _, body = sim.handle("POST", PRO, "", {}, b"{}", origin="http://x")
    assert status == 403 and json.loads(body)["error"]["status"] == "PERMISSION_DENIED"
    status, _, _ = sim.handle(
        "POST", PRO, "key=key-a", {}, json.dumps(TEXT).encode(), origin="http://x"
    )
    assert status == 200
    status, _, body = sim.handle(
        "GET",
        "/v1beta/files/none:download",
        "alt=media",
        {"x-goog-api-key": "other"},
        b"",
        origin="http://x",
    )
    assert json.loads(body)["error"]["details"][0]["reason"] == "API_KEY_INVALID"
