"""`enhance-video-1.0` is priced flat for a source of up to 16 s. With Topaz down (its breaker
is public on /status), the request goes to the Replicate route: the source must be held to the
same length there, from the bytes reapi fetched, and Replicate must be given those vetted bytes
(its Files API, PROVIDERS.md §11), never the caller's URL to fetch again, which could then answer
with a longer, larger or other file than reapi checked."""

from __future__ import annotations

import json

import pytest
from mp4_boxes import mp4

from reapi import InternalServerError, InvalidRequestError, ReAPI, ReapiError
from reapi.catalog import default_catalog
from reapi.router import BreakerState, RouterConfig
from reapi.testing import Fault, SimServer, sample_mp4
from reapi.testing.replicate_sim import ReplicateSimulator
from reapi.testing.topaz_sim import TopazSimulator

MODEL = "enhance-video-1.0"
TOPAZ = "http://topaz.test"
REPLICATE = "https://replicate.test/v1"
FILE_URL = f"{REPLICATE}/files/cmu2b9jn3a5y8zf1l6dnkyrlrg"
PREDICTION = "gm3qorzdhgbfurvjtvhg6dckhu"
CREATE = f"{REPLICATE}/models/topazlabs/video-upscale/predictions"
#: 17 s of frames: one second over what the price covers.
LONG = mp4(frames=24 * 17, fps=24)


def client(media_host=None) -> ReAPI:
    """The shipped routes of the model (Topaz, then Replicate), Topaz's breaker open."""
    catalog = default_catalog()
    made = ReAPI(
        catalog=catalog,
        provider_keys={"topaz": "tz-key", "replicate": "r8-key"},
        provider_base_urls={"topaz": TOPAZ, "replicate": REPLICATE},
        router=RouterConfig(first_byte_timeout=0.5),
    )
    router = made._engine.router
    topaz = catalog.models[MODEL].routes[0]
    while router.state(topaz) is not BreakerState.OPEN:
        router.record_failure(topaz, InternalServerError("down", provider="topaz", status=503))
    if media_host is not None:
        made._engine.fetcher = media_host.sync_fetcher()
    return made


def mock_replicate(httpx_mock) -> None:
    """The documented answers: a created file, then a created prediction."""
    httpx_mock.add_response(
        method="POST",
        url=f"{REPLICATE}/files",
        status_code=201,
        json={
            "id": "cmu2b9jn3a5y8zf1l6dnkyrlrg",
            "name": "input_reference.mp4",
            "content_type": "video/mp4",
            "size": 1,
            "etag": "f211779ae3cc5ef6a4a6c0ac4a8b9a7e",
            "checksums": {"sha256": "0" * 64, "md5": "0" * 32},
            "metadata": {},
            "created_at": "2026-08-01T10:00:00.000Z",
            "expires_at": "2026-08-02T10:00:00.000Z",
            "urls": {"get": FILE_URL},
        },
    )
    httpx_mock.add_response(
        method="POST",
        url=CREATE,
        status_code=201,
        json={
            "id": PREDICTION,
            "model": "topazlabs/video-upscale",
            "version": "official",
            "input": {},
            "logs": "",
            "output": None,
            "error": None,
            "status": "starting",
            "created_at": "2026-08-01T10:00:00.000000Z",
            "urls": {"get": f"{REPLICATE}/predictions/{PREDICTION}"},
        },
    )


def uploaded(httpx_mock) -> bytes:
    [upload] = httpx_mock.get_requests(url=f"{REPLICATE}/files")
    return upload.content


@pytest.mark.parametrize(
    "source",
    [
        LONG,
        # the movie and track headers claim 10 s over 17 s of samples
        mp4(frames=24 * 17, fps=24, movie_seconds=10, track_seconds=10),
    ],
)
def test_a_long_upload_is_refused_on_the_failover_route_before_any_call(httpx_mock, source):
    with pytest.raises(InvalidRequestError) as info:
        client().videos.create(model=MODEL, input_reference=source)
    assert (info.value.param, info.value.code) == ("input_reference", "video_too_long")
    assert httpx_mock.get_requests() == []


def test_a_long_source_url_is_fetched_by_reapi_and_refused_before_any_call(httpx_mock, media_host):
    source = media_host.serve("/clip.mp4", LONG)
    with pytest.raises(InvalidRequestError) as info:
        client(media_host).videos.create(model=MODEL, input_reference=source)
    assert info.value.code == "video_too_long"
    assert [path for path, _ in media_host.requests] == ["/clip.mp4"]
    assert httpx_mock.get_requests() == []


def test_replicate_is_given_the_vetted_bytes_never_the_callers_url(httpx_mock, media_host):
    source = media_host.serve("/clip.mp4", sample_mp4())
    mock_replicate(httpx_mock)
    video = client(media_host).videos.create(model=MODEL, input_reference=source)
    assert video.reapi.provider == "replicate"
    # reapi fetched the caller's URL once, without any key; Replicate never saw it.
    [(path, headers)] = media_host.requests
    assert path == "/clip.mp4" and "authorization" not in {h.lower() for h in headers}
    requests = httpx_mock.get_requests()
    assert [(r.method, r.url.path) for r in requests] == [
        ("POST", "/v1/files"),
        ("POST", "/v1/models/topazlabs/video-upscale/predictions"),
    ]
    assert all(source.encode() not in r.content for r in requests)
    # The Files API's multipart body: the fetched bytes as `content`, typed as a video.
    upload = requests[0]
    assert upload.headers["authorization"] == "Bearer r8-key"
    assert upload.headers["content-type"].startswith("multipart/form-data; boundary=")
    body = uploaded(httpx_mock)
    assert b'name="content"; filename="input_reference.mp4"' in body
    assert b"Content-Type: video/mp4" in body and sample_mp4() in body
    assert json.loads(requests[1].content) == {"input": {"video": FILE_URL}}


def test_an_uploaded_source_goes_to_replicate_as_a_file_too(httpx_mock):
    mock_replicate(httpx_mock)
    client().videos.create(model=MODEL, input_reference=sample_mp4(), resolution="4k")
    assert sample_mp4() in uploaded(httpx_mock)
    [create] = httpx_mock.get_requests(url=CREATE)
    assert json.loads(create.content) == {"input": {"video": FILE_URL, "target_resolution": "4k"}}


def test_a_refused_option_makes_no_upload(httpx_mock):
    with pytest.raises(ReapiError):
        client().videos.create(model=MODEL, input_reference=sample_mp4(), prompt="sharper")
    assert httpx_mock.get_requests() == []


# -- against the simulators, on real sockets ---------------------------------------------------
@pytest.fixture
def sims():
    topaz = SimServer(TopazSimulator("tz-key")).start()
    replicate = SimServer(ReplicateSimulator("r8-key")).start()
    topaz.faults.set(Fault.ERROR_503)  # the maker down: every create fails over
    yield topaz, replicate
    topaz.stop()
    replicate.stop()


def sim_client(sims, media_host) -> ReAPI:
    topaz, replicate = sims
    made = ReAPI(
        catalog=default_catalog(),
        provider_keys={"topaz": "tz-key", "replicate": "r8-key"},
        provider_base_urls={"topaz": topaz.base_url, "replicate": replicate.base_url + "/v1"},
        router=RouterConfig(first_byte_timeout=0.5, body_timeout=1.0),
    )
    made._engine.fetcher = media_host.sync_fetcher()
    return made


def test_with_topaz_failing_replicate_reads_the_bytes_reapi_fetched(sims, media_host):
    source = media_host.serve("/clip.mp4", sample_mp4())
    video = sim_client(sims, media_host).videos.create(model=MODEL, input_reference=source)
    assert video.reapi.provider == "replicate"
    assert sims[1].app.videos == [sample_mp4()]
    assert len(media_host.requests) == 1


def test_with_topaz_failing_a_long_source_reaches_no_host(sims, media_host):
    source = media_host.serve("/clip.mp4", LONG)
    with pytest.raises(InvalidRequestError) as info:
        sim_client(sims, media_host).videos.create(model=MODEL, input_reference=source)
    assert info.value.code == "video_too_long"
    assert sims[1].app.videos == [] and sims[1].app.requests == {}
    assert sims[0].app.requests == {}


def test_with_topaz_up_a_long_source_is_refused_not_passed_on(httpx_mock):
    """Topaz's own refusal used to count as a route refusal: the router moved on to Replicate."""
    made = ReAPI(
        catalog=default_catalog(),
        provider_keys={"topaz": "tz-key", "replicate": "r8-key"},
        provider_base_urls={"topaz": TOPAZ, "replicate": REPLICATE},
        router=RouterConfig(first_byte_timeout=0.5),
    )
    with pytest.raises(InvalidRequestError) as info:
        made.videos.create(model=MODEL, input_reference=LONG)
    assert info.value.code == "video_too_long"
    assert httpx_mock.get_requests() == []
