"""End to end through `reapi.ReAPI` against the Replicate simulator on real sockets: every model
the proposed routes send to Replicate (every value the route accepts), `Prefer: wait` answered at
once or polled, Replicate-shaped and transport faults served by a second account, E005 blocks
never failed over, a failed video resubmitted once, and Veo moving from fal to Replicate."""

from __future__ import annotations

import time

import pytest
from second_hosts import host_catalog, host_route, model_spec, proposed_routes

from reapi import AsyncReAPI, ContentPolicyError, ReAPI
from reapi._params import ImageParams, VideoParams
from reapi.catalog import Catalog, default_catalog, eligible_routes
from reapi.catalog._checks import check_image, check_video
from reapi.router import RouterConfig
from reapi.testing import Fault, SimServer, is_mp4, png_bytes, sample_mp4
from reapi.testing.fal_sim import FalSimulator
from reapi.testing.replicate_sim import REPLICATE_SCHEMAS, ReplicateSimulator

DEADLINE = 0.3
KEY = "r8_sim_key"


@pytest.fixture
def sims():
    servers = [SimServer(ReplicateSimulator(KEY, polls_before_done=1)).start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


def make(sims, cls=ReAPI, catalog: Catalog | None = None, **extra_urls: str):
    primary, backup = sims
    catalog = catalog or host_catalog("replicate", backup="backup")
    keys = {"replicate": KEY, "backup": KEY, **{name: KEY for name in extra_urls}}
    urls = {"replicate": primary.base_url + "/v1", "backup": backup.base_url + "/v1", **extra_urls}
    return cls(
        catalog=catalog,
        provider_keys={k: v for k, v in keys.items() if k in catalog.providers},
        provider_base_urls={k: v for k, v in urls.items() if k in catalog.providers},
        router=RouterConfig(first_byte_timeout=DEADLINE, body_timeout=1.0),
    )


def creates(server: SimServer) -> int:
    return sum(n for key, n in server.app.requests.items() if key.endswith("/predictions"))


MODELS = sorted({r["model"] for r in proposed_routes("replicate")})
IMAGE_MODELS = [m for m in MODELS if host_catalog("replicate").models[m].kind == "image"]
VIDEO_MODELS = [m for m in MODELS if host_catalog("replicate").models[m].kind == "video"]


def test_every_proposed_route_names_a_model_the_simulator_checks():
    assert {r["upstream_model"] for r in proposed_routes("replicate")} <= set(REPLICATE_SCHEMAS)


@pytest.mark.parametrize("wait_finishes", [True, False])
@pytest.mark.parametrize("model", IMAGE_MODELS)
def test_each_image_model_generates_and_edits(sims, model, wait_finishes):
    sims[0].app.wait_finishes = wait_finishes
    client = make(sims)
    made = client.images.generate(model=model, prompt="a lighthouse", n=2)
    assert made.reapi.provider == "replicate" and len(made.data) == 2
    edited = client.images.edit(
        model=model, prompt="at night", image=png_bytes(8, 8), response_format="url"
    )
    assert edited.data[0].url.startswith(sims[0].base_url + "/files/")
    polls = sims[0].app.requests.get("GET /v1/predictions/{id}", 0)
    assert (polls == 0) == wait_finishes
    assert creates(sims[1]) == 0


@pytest.mark.parametrize("model", IMAGE_MODELS)
def test_every_image_value_the_route_accepts_is_accepted_by_replicate(sims, model):
    catalog = host_catalog("replicate")
    spec = catalog.models[model]
    client = make(sims, catalog=catalog)
    caps = spec.capabilities
    requests = [{"size": s} for s in caps.sizes] + [{"aspect_ratio": a} for a in caps.aspect_ratios]
    requests += [{"resolution": r} for r in caps.resolutions] + [{"n": caps.n_max}]
    served = 0
    for kwargs in requests:
        params = ImageParams(model=model, **kwargs)
        try:
            eligible_routes(spec, check_image(spec, params), n=params.n)
        except Exception:
            continue  # left out by the route: never reaches Replicate
        client.images.generate(model=model, prompt="p", response_format="url", **kwargs)
        served += 1
    assert served >= len(requests) // 2


@pytest.mark.parametrize("model", VIDEO_MODELS)
def test_each_video_model_renders_and_downloads(sims, model):
    client = make(sims)
    kwargs = (
        {"input_reference": ("in.mp4", sample_mp4(), "video/mp4"), "resolution": "1080p"}
        if model == "enhance-video-1.0"
        else {"prompt": "waves", "input_reference": png_bytes(16, 9)}
    )
    video = client.videos.create(model=model, **kwargs)
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.expires_at > time.time() + 3000
    assert is_mp4(client.videos.download_content(video.id).content)


def test_every_veo_value_the_route_accepts_is_accepted_by_replicate(sims):
    catalog = host_catalog("replicate")
    spec = catalog.models["veo-3.1"]
    client = make(sims, catalog=catalog)
    caps = spec.capabilities
    combos = [{"size": s} for s in caps.sizes] + [{"seconds": s} for s in caps.seconds]
    combos += [
        {"aspect_ratio": a, "resolution": r} for a in caps.aspect_ratios for r in caps.resolutions
    ]
    served = 0
    for kwargs in combos:
        try:
            eligible_routes(spec, check_video(spec, VideoParams(model="veo-3.1", **kwargs)))
        except Exception:
            continue
        client.videos.create(model="veo-3.1", prompt="p", **kwargs)
        served += 1
    assert served >= len(combos) // 2


# -- faults ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault.ERROR_500, "upstream_server_error"),
        (Fault.RATE_LIMIT, "rate_limit_exceeded"),
        (Fault.QUOTA_EXHAUSTED, "upstream_quota_exhausted"),
    ],
)
@pytest.mark.parametrize("kind", ["image", "video"])
def test_replicate_shaped_faults_are_served_by_the_backup(sims, fault, code, kind):
    sims[0].app.faults.set(fault, count=1)
    client = make(sims)
    if kind == "image":
        log = client.images.generate(model="seedream-5.0-lite", prompt="p").reapi.attempt_log
    else:
        log = client.videos.create(model="veo-3.1", prompt="p").reapi.attempt_log
    assert [a.code for a in log] == [code, "ok"]


@pytest.mark.parametrize(
    "fault", [Fault.ERROR_503, Fault.REFUSE, Fault.RESET, Fault.HANG, Fault.TRUNCATED_JSON]
)
def test_transport_faults_are_served_by_the_backup(sims, fault):
    sims[0].faults.set(fault)
    started = time.perf_counter()
    made = make(sims).images.generate(model="grok-imagine-1.0", prompt="p")
    assert made.reapi.provider == "backup"
    assert time.perf_counter() - started < DEADLINE + 0.5


def test_a_key_scheme_is_refused_and_fails_over(sims):
    sims[0].app.api_key = "other"
    made = make(sims).images.generate(model="seedream-5.0-lite", prompt="p")
    assert [a.code for a in made.reapi.attempt_log] == ["upstream_authentication_failed", "ok"]


@pytest.mark.parametrize("how", ["prompt", "fault"])
def test_a_sensitive_image_is_blocked_and_not_failed_over(sims, how):
    if how == "fault":
        sims[0].app.faults.set(Fault.CONTENT_POLICY)
    with pytest.raises(ContentPolicyError) as info:
        make(sims).images.generate(
            model="grok-imagine-1.0", prompt="forbidden" if how == "prompt" else "p"
        )
    assert info.value.provider_code == "E005"
    assert creates(sims[1]) == 0


def test_a_sensitive_video_is_content_blocked_and_not_resubmitted(sims):
    client = make(sims)
    video = client.videos.create(model="veo-3.1", prompt="forbidden waves")
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "failed" and done.error.code == "content_policy_violation"
    assert creates(sims[1]) == 0


def test_a_failed_video_is_resubmitted_once_to_the_next_route(sims):
    sims[0].app.faults.set(Fault.TASK_FAILS)
    client = make(sims)
    video = client.videos.create(model="veo-3.1", prompt="p")
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.reapi.provider == "backup"
    assert creates(sims[1]) == 1


def test_a_failed_image_prediction_fails_over(sims):
    sims[0].app.faults.set(Fault.TASK_FAILS)
    made = make(sims).images.generate(model="seedream-5.0-lite", prompt="p")
    assert [a.code for a in made.reapi.attempt_log] == ["generation_failed", "ok"]


def test_delete_cancels_the_prediction(sims):
    client = make(sims)
    video = client.videos.create(model="veo-3.1", prompt="p")
    client.videos.delete(video.id)
    assert sims[0].app.requests["POST /v1/predictions/{id}/cancel"] == 1


# -- across hosts: Veo on fal, then on Replicate -----------------------------------------
@pytest.fixture
def fal():
    server = SimServer(FalSimulator(KEY, polls_before_done=1)).start()
    yield server
    server.stop()


def fal_then_replicate() -> Catalog:
    base = default_catalog()
    spec = model_spec("veo-3.1")
    spec["routes"] = [host_route("fal", "veo-3.1"), host_route("replicate", "veo-3.1")]
    providers = {n: base.providers[n].model_dump(mode="json") for n in ("fal", "replicate")}
    return Catalog.model_validate({"providers": providers, "models": {"veo-3.1": spec}})


def test_a_veo_render_failing_on_fal_is_resubmitted_to_replicate(sims, fal):
    fal.app.faults.set(Fault.TASK_FAILS)
    client = make(sims, catalog=fal_then_replicate(), fal=fal.base_url)
    video = client.videos.create(model="veo-3.1", prompt="p", size="1920x1080")
    assert video.reapi.provider == "fal"
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.reapi.provider == "replicate"
    assert sims[0].app.fields["google/veo-3.1"] == [
        "aspect_ratio",
        "duration",
        "generate_audio",
        "prompt",
        "resolution",
    ]


def test_fal_down_at_create_is_served_by_replicate(sims, fal):
    fal.faults.set(Fault.REFUSE)
    client = make(sims, catalog=fal_then_replicate(), fal=fal.base_url)
    assert client.videos.create(model="veo-3.1", prompt="p").reapi.provider == "replicate"


async def test_async_client_waits_and_polls(sims):
    sims[0].app.wait_finishes = False
    client = make(sims, cls=AsyncReAPI)
    made = await client.images.generate(model="seedream-5.0-lite", prompt="p")
    assert made.reapi.provider == "replicate"
    video = await client.videos.create(model="veo-3.1", prompt="p")
    assert (await client.videos.wait(video.id, poll_interval=0.01)).status == "completed"
    await client.aclose()
