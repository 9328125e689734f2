"""Failover over the shipped catalog, model by model: every model with a second host is served by
it when its maker's API fails in each way, a content block is never retried elsewhere, and a video
task that ends failed upstream is resubmitted once to the second host. All against the built-in
simulators on real sockets, as `reapi-server demo` runs them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from reapi import ContentPolicyError, ReAPI
from reapi.catalog import Catalog, default_catalog
from reapi.router import RouterConfig
from reapi.testing import (
    Fault,
    RunningSimulators,
    default_simulators,
    png_bytes,
    run_simulators,
    sample_mp4,
)

DEADLINE = 0.3
SHIPPED = default_catalog()
TWO_HOSTS = sorted(m.id for m in SHIPPED.models.values() if len(m.routes) > 1)
VIDEO_TWO_HOSTS = [m for m in TWO_HOSTS if SHIPPED.models[m].kind == "video"]
#: Topaz documents no content policy, so its simulator has no content block to send.
BLOCKING_MAKERS = [m for m in TWO_HOSTS if SHIPPED.models[m].routes[0].provider != "topaz"]
FAULTS = [
    Fault.ERROR_500,
    Fault.ERROR_503,
    Fault.RATE_LIMIT,
    Fault.QUOTA_EXHAUSTED,
    Fault.REFUSE,
    Fault.RESET,
    Fault.HANG,
    Fault.TRUNCATED_JSON,
]


def fast_catalog() -> Catalog:
    """The shipped catalog with the test's own deadline on every route and no waits between
    polls (the routes' real deadlines are minutes long for upstreams that answer when done)."""
    data = SHIPPED.model_dump(mode="json", exclude_unset=True)
    for model in data["models"].values():
        for route in model["routes"]:
            route["first_byte_timeout"] = None
            route["options"] = {**route.get("options", {}), "poll_interval": 0}
    return Catalog.model_validate(data)


@pytest.fixture(scope="module")
def sims() -> Iterator[RunningSimulators]:
    running = run_simulators(default_simulators())
    yield running
    running.stop()


@pytest.fixture
def client(sims: RunningSimulators) -> Iterator[ReAPI]:
    for server in sims.servers.values():
        server.faults.clear()
    catalog = fast_catalog()
    made = ReAPI(
        catalog=catalog,
        provider_keys={name: sims.api_key for name in catalog.providers if name in sims.servers},
        provider_base_urls={n: u for n, u in sims.provider_urls.items() if n in catalog.providers},
        router=RouterConfig(first_byte_timeout=DEADLINE, body_timeout=2.0),
    )
    yield made
    made.close()
    for server in sims.servers.values():
        server.faults.clear()


def hosts(model: str) -> tuple[str, str]:
    routes = SHIPPED.models[model].routes
    return routes[0].provider, routes[1].provider


def request(client: ReAPI, model: str) -> Any:
    """One request of the model's kind with the inputs it needs; a video is waited for."""
    spec = SHIPPED.models[model]
    if spec.kind == "image":
        return client.images.generate(model=model, prompt="a lighthouse")
    kwargs: dict[str, Any] = {}
    if spec.capabilities.input_video:
        kwargs["input_reference"] = sample_mp4()
    if spec.capabilities.prompt_required:
        kwargs["prompt"] = "a lighthouse"
    video = client.videos.create(model=model, **kwargs)
    return client.videos.wait(video.id, poll_interval=0, timeout=30)


def submissions(sims: RunningSimulators, provider: str) -> int:
    counts: dict[str, int] = getattr(sims.servers[provider].app, "requests", {})
    return sum(n for key, n in counts.items() if key.startswith("POST "))


def test_every_model_of_the_issue_has_a_second_host_where_one_exists():
    assert set(TWO_HOSTS) >= {
        "gpt-image-2",
        "gemini-3-pro-image",
        "gemini-3.1-flash-image",
        "gemini-2.5-flash-image",
        "seedream-5.0-lite",
        "seedance-2.0",
        "happy-horse-1.0",
        "vidu-q3",
        "grok-imagine-1.0",
        "veo-3.1",
        "enhance-video-1.0",
    }


@pytest.mark.parametrize("model", TWO_HOSTS)
def test_healthy_maker_serves_and_the_second_host_is_untouched(sims, client, model):
    maker, second = hosts(model)
    before = submissions(sims, second)
    made = request(client, model)
    assert made.reapi.provider == maker
    assert submissions(sims, second) == before


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("model", TWO_HOSTS)
def test_maker_down_is_served_by_the_second_host(sims, client, model, fault):
    maker, second = hosts(model)
    sims.servers[maker].faults.set(fault)
    made = request(client, model)
    assert made.reapi.provider == second
    if SHIPPED.models[model].kind == "image":
        assert [a.provider for a in made.reapi.attempt_log] == [maker, second]
        assert made.data and (made.data[0].b64_json or made.data[0].url)
    else:
        assert made.status == "completed"


@pytest.mark.parametrize("model", BLOCKING_MAKERS)
def test_a_content_block_at_the_maker_is_not_retried_elsewhere(sims, client, model):
    maker, second = hosts(model)
    sims.servers[maker].faults.set(Fault.CONTENT_POLICY)
    before = submissions(sims, second)
    spec = SHIPPED.models[model]
    if spec.kind == "image":
        with pytest.raises(ContentPolicyError):
            request(client, model)
    else:
        # A video may be blocked at submit (an error) or when its task ends (a failed job).
        try:
            video = request(client, model)
        except ContentPolicyError:
            pass
        else:
            assert video.status == "failed" and video.error is not None
            assert video.error.code == "content_policy_violation"
    assert submissions(sims, second) == before


@pytest.mark.parametrize("model", VIDEO_TWO_HOSTS)
def test_a_failed_video_task_is_resubmitted_once_to_the_second_host(sims, client, model):
    maker, second = hosts(model)
    sims.servers[maker].faults.set(Fault.TASK_FAILS)
    video = request(client, model)
    assert video.status == "completed"
    assert video.reapi.provider == second and video.reapi.resubmitted_from


@pytest.mark.parametrize(
    ("model", "kwargs"),
    [
        ("veo-3.1", {"seed": 3}),  # Veo on the Gemini API has no seed
        ("happy-horse-1.0", {"input_reference": png_bytes(64, 64)}),  # DashScope takes URLs only
    ],
)
def test_an_input_the_makers_api_lacks_goes_to_the_second_host_without_a_call(
    sims, client, model, kwargs
):
    maker, second = hosts(model)
    before = submissions(sims, maker)
    video = client.videos.create(model=model, prompt="a lighthouse", **kwargs)
    assert video.reapi.provider == second
    assert [a.provider for a in video.reapi.attempt_log] == [maker, second]
    assert video.reapi.attempt_log[0].status is None
    assert submissions(sims, maker) == before


def test_an_enhancement_failed_over_reaches_replicate_as_the_vetted_bytes(sims, client):
    """Replicate's simulator reads the video the way Replicate does (its Files API copy):
    what the model got is the bytes reapi vetted."""
    replicate = sims.servers["replicate"].app
    sims.servers["topaz"].faults.set(Fault.ERROR_503)
    made = request(client, "enhance-video-1.0")
    assert made.reapi.provider == "replicate" and made.status == "completed"
    assert replicate.videos[-1] == sample_mp4()
