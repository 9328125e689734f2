"""End to end through `reapi.ReAPI` against two Topaz simulators on real sockets: the whole
create → accept → PUT parts → complete-upload flow with the real sample MP4 (one part and
several), a source given as a URL, faults on the primary served by the backup, and a request
that ends failed resubmitted once."""

from __future__ import annotations

import time

import pytest
from mp4_boxes import mp4

from reapi import AsyncReAPI, InvalidRequestError, ReAPI, UrlPolicy
from reapi.catalog import Catalog, default_catalog
from reapi.router import RouterConfig
from reapi.testing import Fault, SimServer, is_mp4, sample_mp4
from reapi.testing.topaz_sim import TopazSimulator

DEADLINE = 0.3
KEY = "tz-sim-key"
MODEL = "enhance-video-1.0"


class _Media:
    """Somewhere on the web hosting the caller's source video."""

    def handle(self, method, path, query, headers, body, *, origin):
        if path == "/clip.mp4" and method == "GET" and not headers.get("x-api-key"):
            return 200, {"content-type": "video/mp4"}, sample_mp4()
        return 404, {}, b""


def two_account_catalog() -> Catalog:
    base = default_catalog()
    spec = base.models[MODEL].model_dump(mode="json")
    first = {**spec["routes"][0], "first_byte_timeout": None}  # the test's own deadline
    spec["routes"] = [first, {**first, "provider": "backup"}]
    topaz = base.providers["topaz"].model_dump(mode="json")
    return Catalog.model_validate(
        {"providers": {"topaz": topaz, "backup": topaz}, "models": {MODEL: spec}}
    )


@pytest.fixture
def sims():
    primary = SimServer(TopazSimulator(KEY)).start()
    backup = SimServer(TopazSimulator(KEY, part_bytes=2000)).start()
    yield primary, backup
    primary.stop()
    backup.stop()


def make(sims, cls=ReAPI, **kwargs):
    primary, backup = sims
    return cls(
        catalog=two_account_catalog(),
        provider_keys={"topaz": KEY, "backup": KEY},
        provider_base_urls={"topaz": primary.base_url, "backup": backup.base_url},
        router=RouterConfig(first_byte_timeout=DEADLINE, body_timeout=1.0),
        **kwargs,
    )


def creates(server: SimServer) -> int:
    return server.app.requests.get("POST /video/", 0)


def test_enhance_lifecycle_uploads_the_real_bytes(sims):
    client = make(sims)
    video = client.videos.create(model=MODEL, input_reference=sample_mp4(), resolution="4k")
    assert video.status == "queued" and video.reapi.provider == "topaz"
    assert list(sims[0].app.received.values()) == [sample_mp4()]
    assert client.videos.retrieve(video.id).status == "in_progress"  # preprocessing
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.expires_at > time.time() + 86000
    assert is_mp4(client.videos.download_content(done.id).content)


def test_a_file_larger_than_one_part_goes_in_several(sims):
    sims[0].faults.set(Fault.REFUSE)  # the backup splits uploads every 2000 bytes
    client = make(sims)
    video = client.videos.create(model=MODEL, input_reference=sample_mp4())
    assert video.reapi.provider == "backup"
    assert sims[1].app.requests["PUT /uploads/{id}/{part}"] == 3
    assert list(sims[1].app.received.values()) == [sample_mp4()]


def test_a_source_url_is_fetched_then_uploaded(sims):
    # The media server is on loopback: allowed here by the operator's escape hatch only.
    loopback = UrlPolicy(allow_networks=("127.0.0.1/32",))
    with SimServer(_Media()) as media:
        source = media.base_url + "/clip.mp4"
        with pytest.raises(InvalidRequestError) as refused:
            make(sims).videos.create(model=MODEL, input_reference=source)
        make(sims, url_policy=loopback).videos.create(model=MODEL, input_reference=source)
    assert refused.value.code == "url_not_allowed"
    assert list(sims[0].app.received.values()) == [sample_mp4()]


def test_a_too_long_or_too_large_source_is_refused_before_any_call(sims):
    client = make(sims)
    with pytest.raises(InvalidRequestError):
        client.videos.create(model=MODEL, input_reference=mp4(frames=24 * 20))
    with pytest.raises(InvalidRequestError):
        client.videos.create(model=MODEL, input_reference=mp4(width=3840, height=2160))
    assert creates(sims[0]) == creates(sims[1]) == 0


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault.ERROR_500, "upstream_server_error"),
        (Fault.ERROR_503, "upstream_server_error"),
        (Fault.RATE_LIMIT, "rate_limit_exceeded"),
        (Fault.QUOTA_EXHAUSTED, "upstream_quota_exhausted"),
    ],
)
def test_topaz_shaped_faults_on_the_primary_are_served_by_the_backup(sims, fault, code):
    sims[0].app.faults.set(fault, count=1)
    video = make(sims).videos.create(model=MODEL, input_reference=sample_mp4())
    assert [a.code for a in video.reapi.attempt_log] == [code, "ok"]


@pytest.mark.parametrize(
    "fault", [Fault.ERROR_503, Fault.REFUSE, Fault.RESET, Fault.HANG, Fault.TRUNCATED_JSON]
)
def test_transport_faults_on_the_primary_are_served_by_the_backup(sims, fault):
    sims[0].faults.set(fault)
    started = time.perf_counter()
    video = make(sims).videos.create(model=MODEL, input_reference=sample_mp4())
    assert video.reapi.provider == "backup"
    assert time.perf_counter() - started < DEADLINE + 0.5


def test_a_wrong_key_is_refused_and_fails_over(sims):
    sims[0].app.api_key = "other"
    video = make(sims).videos.create(model=MODEL, input_reference=sample_mp4())
    assert [a.code for a in video.reapi.attempt_log] == ["upstream_authentication_failed", "ok"]


def test_a_failed_request_is_resubmitted_once_to_the_next_route(sims):
    sims[0].app.faults.set(Fault.TASK_FAILS)
    client = make(sims)
    video = client.videos.create(model=MODEL, input_reference=sample_mp4())
    done = client.videos.wait(video.id, poll_interval=0.01)
    assert done.status == "completed" and done.reapi.provider == "backup"
    assert creates(sims[0]) == creates(sims[1]) == 1


async def test_async_client_against_the_simulators(sims):
    sims[0].faults.set(Fault.RESET)
    async with make(sims, AsyncReAPI) as client:
        video = await client.videos.create(model=MODEL, input_reference=sample_mp4())
        assert video.reapi.provider == "backup"
        done = await client.videos.wait(video.id, poll_interval=0.01)
        assert is_mp4((await client.videos.download_content(done.id)).content)
