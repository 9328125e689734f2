"""End to end through `reapi.ReAPI` against the fal simulator on real sockets: every model the
proposed routes send to fal (every value the route accepts), GPT Image 2 failing over from the
OpenAI simulator to fal under each fault, fal-shaped faults served by a second fal account,
content blocks never failed over, and a video that ends failed resubmitted once."""

from __future__ import annotations

import base64
import time

import pytest
from second_hosts import host_catalog, proposed_routes

from reapi import AsyncReAPI, ContentPolicyError, InvalidRequestError, NoRouteAvailableError, ReAPI
from reapi._params import ImageParams, VideoParams
from reapi.catalog import Catalog, eligible_routes
from reapi.catalog._checks import check_image, check_video
from reapi.router import BreakerState, RouterConfig
from reapi.testing import Fault, OpenAISimulator, SimServer, is_mp4, is_png, png_bytes, sample_mp4
from reapi.testing.fal_sim import FAL_SCHEMAS, FalSimulator

DEADLINE = 0.3
KEY = "fal-sim-key"
OPENAI = {"adapter": "openai", "base_url": "http://unused.invalid/v1", "url_lifetime_seconds": 3600}


@pytest.fixture
def sims():
    servers = [SimServer(FalSimulator(KEY, polls_before_done=1)).start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


def make(sims, cls=ReAPI, catalog: Catalog | None = None, openai: SimServer | None = None):
    primary, backup = sims
    keys = {"fal": KEY, "backup": KEY}
    urls = {"fal": primary.base_url, "backup": backup.base_url}
    if openai is not None:
        keys["openai"] = "sk-sim"
        urls["openai"] = openai.base_url + "/v1"
    catalog = catalog or host_catalog("fal", backup="backup")
    return cls(
        catalog=catalog,
        provider_keys={k: v for k, v in keys.items() if k in catalog.providers},
        provider_base_urls={k: v for k, v in urls.items() if k in catalog.providers},
        router=RouterConfig(first_byte_timeout=DEADLINE, body_timeout=1.0),
    )


def submits(server: SimServer) -> int:
    return sum(n for key, n in server.app.requests.items() if key.startswith("POST "))


FAL_MODELS = sorted({r["model"] for r in proposed_routes("fal")})
IMAGE_MODELS = [m for m in FAL_MODELS if host_catalog("fal").models[m].kind == "image"]
VIDEO_MODELS = [m for m in FAL_MODELS if host_catalog("fal").models[m].kind == "video"]


def test_every_proposed_route_names_a_model_path_the_simulator_checks():
    for route in proposed_routes("fal"):
        options = route.get("options", {})
        for path in (
            route["upstream_model"],
            options.get("edit_model"),
            options.get("reference_model"),
        ):
            assert path is None or path in FAL_SCHEMAS, path


@pytest.mark.parametrize("model", IMAGE_MODELS)
def test_each_image_model_generates_and_edits_through_the_queue(sims, model):
    client = make(sims)
    made = client.images.generate(model=model, prompt="a lighthouse")
    assert made.reapi.provider == "fal" and is_png(base64.b64decode(made.data[0].b64_json))
    edited = client.images.edit(
        model=model, prompt="at night", image=png_bytes(8, 8), response_format="url"
    )
    assert edited.data[0].url.startswith(sims[0].base_url + "/files/")
    assert submits(sims[1]) == 0


@pytest.mark.parametrize("model", IMAGE_MODELS)
def test_every_image_value_the_fal_route_accepts_is_accepted_by_fal(sims, model):
    catalog = host_catalog("fal")
    spec = catalog.models[model]
    client = make(sims, catalog=catalog)
    caps = spec.capabilities
    requests = [{"size": size} for size in caps.sizes]
    requests += [{"aspect_ratio": r} for r in caps.aspect_ratios]
    requests += [{"resolution": r} for r in caps.resolutions]
    requests += [{"n": spec.routes[0].limits.n_max if spec.routes[0].limits else caps.n_max}]
    served = 0
    for kwargs in requests:
        params = ImageParams(model=model, **kwargs)
        try:
            shape = check_image(spec, params)
            eligible_routes(spec, shape, n=params.n)
        except Exception:
            continue  # a value the route itself leaves out never reaches fal
        made = client.images.generate(model=model, prompt="p", response_format="url", **kwargs)
        assert made.reapi.provider == "fal", kwargs
        served += 1
    assert served >= len(requests) // 2


@pytest.mark.parametrize("model", VIDEO_MODELS)
def test_each_video_model_renders_and_downloads(sims, model):
    client = make(sims)
    kwargs = (
        {"input_reference": ("in.mp4", sample_mp4(), "video/mp4")}
        if model == "upscale-video-2x"
        else {"prompt": "waves"}
    )
    video = client.videos.create(model=model, **kwargs)
    assert client.videos.retrieve(video.id).status == "queued"
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.expires_at > time.time() + 3000
    assert is_mp4(client.videos.download_content(video.id).content)
    assert submits(sims[1]) == 0


@pytest.mark.parametrize("model", [m for m in VIDEO_MODELS if m != "upscale-video-2x"])
def test_each_video_model_takes_a_first_frame(sims, model):
    client = make(sims)
    video = client.videos.create(model=model, prompt="waves", input_reference=png_bytes(16, 9))
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed"
    path = next(p for p in sims[0].app.fields if p.endswith("image-to-video"))
    assert "image_url" in sims[0].app.fields[path]


@pytest.mark.parametrize("model", [m for m in VIDEO_MODELS if m != "upscale-video-2x"])
def test_every_video_value_the_fal_route_accepts_is_accepted_by_fal(sims, model):
    catalog = host_catalog("fal")
    spec = catalog.models[model]
    client = make(sims, catalog=catalog)
    caps = spec.capabilities
    combos = [{"size": s} for s in caps.sizes]
    combos += [
        {"aspect_ratio": a, "resolution": r} for a in caps.aspect_ratios for r in caps.resolutions
    ]
    combos += [{"seconds": s} for s in caps.seconds]
    served = 0
    for kwargs in combos:
        try:
            shape = check_video(spec, VideoParams(model=model, **kwargs))
            eligible_routes(spec, shape)
        except Exception:
            continue
        video = client.videos.create(model=model, prompt="p", **kwargs)
        assert client.videos.wait(video.id, poll_interval=0).status == "completed", kwargs
        served += 1
    assert served >= len(combos) // 2


# -- GPT Image 2: OpenAI first, fal second ---------------------------------------------------------
@pytest.fixture
def openai():
    server = SimServer(OpenAISimulator()).start()
    yield server
    server.stop()


def openai_then_fal() -> Catalog:
    return host_catalog("fal", before=OPENAI)


@pytest.mark.parametrize(
    "fault",
    [
        Fault.ERROR_500,
        Fault.ERROR_503,
        Fault.RATE_LIMIT,
        Fault.REFUSE,
        Fault.RESET,
        Fault.HANG,
        Fault.TRUNCATED_JSON,
    ],
)
def test_openai_down_is_served_by_fal(sims, openai, fault):
    openai.faults.set(fault)
    client = make(sims, catalog=openai_then_fal(), openai=openai)
    started = time.perf_counter()
    made = client.images.generate(model="gpt-image-2", prompt="p", size="1024x1536")
    assert made.reapi.provider == "fal" and made.reapi.attempts == 2
    assert time.perf_counter() - started < DEADLINE + 0.5
    assert sims[0].app.fields["openai/gpt-image-2"] == ["image_size", "num_images", "prompt"]


def test_openai_out_of_quota_is_served_by_fal(sims, openai):
    openai.app.faults.set(Fault.QUOTA_EXHAUSTED)
    made = make(sims, catalog=openai_then_fal(), openai=openai).images.generate(
        model="gpt-image-2", prompt="p"
    )
    assert [a.code for a in made.reapi.attempt_log] == ["upstream_quota_exhausted", "ok"]


def test_openai_healthy_serves_and_fal_is_untouched(sims, openai):
    made = make(sims, catalog=openai_then_fal(), openai=openai).images.generate(
        model="gpt-image-2", prompt="p"
    )
    assert made.reapi.provider == "openai" and submits(sims[0]) == 0


def fal_then_openai() -> Catalog:
    data = openai_then_fal().model_dump(mode="json", exclude_unset=True)
    data["models"]["gpt-image-2"]["routes"].reverse()
    return Catalog.model_validate(data)


@pytest.mark.parametrize(
    "option", [{"moderation": "low"}, {"output_compression": 50}, {"input_fidelity": "high"}]
)
def test_an_option_fal_lacks_skips_fal_without_a_call_and_openai_serves(sims, openai, option):
    client = make(sims, catalog=fal_then_openai(), openai=openai)
    if "input_fidelity" in option:
        made = client.images.edit(model="gpt-image-2", prompt="p", image=png_bytes(8, 8), **option)
    else:
        made = client.images.generate(model="gpt-image-2", prompt="p", **option)
    assert made.reapi.provider == "openai"
    assert [a.provider for a in made.reapi.attempt_log] == ["fal", "openai"]
    assert made.reapi.attempt_log[0].code == "invalid_value"
    assert sims[0].app.requests == {}
    fal_route = fal_then_openai().models["gpt-image-2"].routes[0]
    assert client.router.state(fal_route) is BreakerState.CLOSED


def test_an_option_only_the_failed_host_takes_is_an_upstream_failure_not_a_400(sims, openai):
    openai.faults.set(Fault.ERROR_500)
    client = make(sims, catalog=openai_then_fal(), openai=openai)
    with pytest.raises(NoRouteAvailableError) as info:
        client.images.generate(model="gpt-image-2", prompt="p", moderation="low")
    assert info.value.http_status == 502
    assert sims[0].app.requests == {}


def test_an_option_no_host_takes_is_a_400_naming_it(sims):
    client = make(sims)  # gpt-image-2 on fal and on a second fal account
    with pytest.raises(InvalidRequestError) as info:
        client.images.generate(model="gpt-image-2", prompt="p", moderation="low")
    assert info.value.param == "moderation" and info.value.http_status == 400
    assert sims[0].app.requests == {} and sims[1].app.requests == {}


@pytest.mark.parametrize("how", ["prompt", "fault"])
def test_an_openai_content_block_is_not_failed_over_to_fal(sims, openai, how):
    if how == "fault":
        openai.app.faults.set(Fault.CONTENT_POLICY)
    client = make(sims, catalog=openai_then_fal(), openai=openai)
    with pytest.raises(ContentPolicyError):
        client.images.generate(model="gpt-image-2", prompt="forbidden" if how == "prompt" else "p")
    assert sims[0].app.requests == {}


def test_an_openai_edit_failing_over_goes_to_the_fal_edit_model(sims, openai):
    openai.faults.set(Fault.ERROR_500)
    made = make(sims, catalog=openai_then_fal(), openai=openai).images.edit(
        model="gpt-image-2",
        prompt="p",
        image=[png_bytes(8, 8), png_bytes(8, 8)],
        mask=png_bytes(8, 8),
    )
    assert made.reapi.provider == "fal"
    assert sims[0].app.fields["openai/gpt-image-2/edit"] == [
        "image_size",
        "image_urls",
        "mask_url",
        "num_images",
        "prompt",
    ]


# -- fal faults: a second fal account serves -------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault.ERROR_500, "upstream_server_error"),
        (Fault.ERROR_503, "upstream_server_error"),
        (Fault.RATE_LIMIT, "rate_limit_exceeded"),
        (Fault.QUOTA_EXHAUSTED, "upstream_permission_denied"),
    ],
)
@pytest.mark.parametrize("kind", ["image", "video"])
def test_fal_shaped_faults_are_served_by_the_backup(sims, fault, code, kind):
    sims[0].app.faults.set(fault, count=1)
    client = make(sims)
    if kind == "image":
        made = client.images.generate(model="gpt-image-2", prompt="p")
        log = made.reapi.attempt_log
    else:
        log = client.videos.create(model="veo-3.1", prompt="p").reapi.attempt_log
    assert [a.code for a in log] == [code, "ok"]


@pytest.mark.parametrize(
    "fault", [Fault.ERROR_503, Fault.REFUSE, Fault.RESET, Fault.HANG, Fault.TRUNCATED_JSON]
)
def test_transport_faults_on_fal_are_served_by_the_backup(sims, fault):
    sims[0].faults.set(fault)
    made = make(sims).images.generate(model="gemini-3-pro-image", prompt="p")
    assert made.reapi.provider == "backup"


def test_a_bearer_key_is_refused_and_fails_over(sims):
    sims[0].app.api_key = "other"
    made = make(sims).images.generate(model="gpt-image-2", prompt="p")
    assert [a.code for a in made.reapi.attempt_log] == ["upstream_authentication_failed", "ok"]


@pytest.mark.parametrize("how", ["prompt", "fault"])
def test_an_image_block_at_the_result_is_not_failed_over(sims, how):
    if how == "fault":
        sims[0].app.faults.set(Fault.CONTENT_POLICY)
    with pytest.raises(ContentPolicyError) as info:
        make(sims).images.generate(
            model="seedream-5.0-lite", prompt="forbidden" if how == "prompt" else "p"
        )
    assert info.value.provider_code == "content_policy_violation"
    assert "forbidden" not in str(info.value)
    assert sims[1].app.requests == {}


def test_a_video_block_is_content_blocked_and_not_resubmitted(sims):
    client = make(sims)
    video = client.videos.create(model="seedance-2.0", prompt="forbidden waves")
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "failed" and done.error.code == "content_policy_violation"
    assert submits(sims[1]) == 0


def test_a_failed_video_is_resubmitted_once_to_the_next_route(sims):
    sims[0].app.faults.set(Fault.TASK_FAILS)
    client = make(sims)
    video = client.videos.create(model="vidu-q3", prompt="p")
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.reapi.provider == "backup"
    assert submits(sims[1]) == 1


def test_a_failed_image_fails_over(sims):
    sims[0].app.faults.set(Fault.TASK_FAILS)
    made = make(sims).images.generate(model="gemini-3.1-flash-image", prompt="p")
    assert [a.code for a in made.reapi.attempt_log] == ["upstream_server_error", "ok"]


def test_cancel_before_processing(sims):
    client = make(sims)
    video = client.videos.create(model="veo-3.1", prompt="p")
    client.videos.delete(video.id)
    assert sims[0].app.requests["PUT /{app}/requests/{id}/cancel"] == 1


async def test_async_client_polls_without_blocking(sims):
    client = make(sims, cls=AsyncReAPI)
    made = await client.images.generate(model="gemini-2.5-flash-image", prompt="p")
    assert made.reapi.provider == "fal"
    video = await client.videos.create(model="happy-horse-1.0", prompt="p")
    done = await client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed"
    await client.aclose()
