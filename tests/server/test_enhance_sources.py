"""`enhance-video-1.0` at the gateway with its maker (Topaz) failing: the source the gateway
fetched is held to the 16 s the flat price covers before any route is tried, and the second host
(Replicate, through its simulator) reads the bytes the gateway vetted, never the caller's URL.
The copy uploaded to Replicate's Files API is deleted once its prediction has ended, whichever
way: succeeded, failed, or the job deleted by its caller or given up at its deadline."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pytest
from tests.providers.mp4_boxes import mp4
from tests.server.fakes import FakeUpstream
from tests.server.helpers import auth, ledger_matches

from reapi.catalog import Catalog, default_catalog
from reapi.testing import Fault, sample_mp4
from reapi.testing.replicate_sim import ReplicateSimulator
from reapi.testing.topaz_sim import TopazSimulator
from reapi_server.jobs.poller import JobPoller
from reapi_server.models import VideoJob

MODEL = "enhance-video-1.0"
KEYS = {"topaz": "tz-key", "replicate": "r8-key"}
URLS = {"topaz": "http://topaz.test", "replicate": "http://replicate.test/v1"}


@dataclass
class SimUpstream(FakeUpstream):
    """Topaz (every create failing) and Replicate, answered by their simulators."""

    topaz: TopazSimulator = field(default_factory=lambda: TopazSimulator(KEYS["topaz"]))
    replicate: ReplicateSimulator = field(
        default_factory=lambda: ReplicateSimulator(KEYS["replicate"])
    )
    #: Deletes still to get no answer (the connection refused).
    unanswered_deletes: int = 0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE" and self.unanswered_deletes:
            self.unanswered_deletes -= 1
            raise httpx.ConnectError("refused", request=request)
        app = self.topaz if request.url.host == "topaz.test" else self.replicate
        if app is self.topaz:
            app.faults.set(Fault.ERROR_503)
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, answer_headers, body = app.handle(
            request.method,
            request.url.path,
            request.url.query.decode(),
            headers,
            request.content,
            origin=f"{request.url.scheme}://{request.url.host}",
        )
        return httpx.Response(status, headers=answer_headers, content=body)


@pytest.fixture
def upstream() -> SimUpstream:
    return SimUpstream()


def catalog() -> Catalog:
    base = default_catalog()
    return Catalog.model_validate(
        {
            "providers": {
                name: base.providers[name].model_dump(mode="json")
                for name in ("topaz", "replicate")
            },
            "models": {MODEL: base.models[MODEL].model_dump(mode="json")},
        }
    )


@pytest.fixture
async def gateway(make_gateway, media_host):
    gateway = await make_gateway(catalog=catalog(), provider_keys=KEYS, provider_base_urls=URLS)
    fetcher = media_host.async_fetcher(gateway.rt.settings.url_policy)
    gateway.rt.fetcher = gateway.rt.engine.fetcher = fetcher
    return gateway


async def enhance(gateway, key, url):
    body = {"model": MODEL, "input_reference": {"image_url": url}}
    return await gateway.client.post("/v1/videos", json=body, headers=auth(key))


async def test_replicate_reads_the_fetched_bytes_not_the_callers_url(gateway, media_host):
    _, key = await gateway.account()
    source = media_host.serve("/clip.mp4", sample_mp4())
    response = await enhance(gateway, key, source)
    assert response.status_code == 200, response.text
    assert response.json()["reapi"]["provider"] == "replicate"
    assert gateway.upstream.replicate.videos == [sample_mp4()]
    assert len(media_host.requests) == 1


async def test_a_long_source_is_refused_and_costs_nothing(gateway, media_host):
    account, key = await gateway.account(credits=10_000)
    source = media_host.serve("/clip.mp4", mp4(frames=24 * 17, fps=24))
    response = await enhance(gateway, key, source)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("video_too_long", "input_reference")
    assert gateway.upstream.replicate.requests == {} and gateway.upstream.topaz.requests == {}
    assert await ledger_matches(gateway.rt, account) == (10_000, 0)


async def poll_now(gateway, video_id: str) -> None:
    async with gateway.rt.db.write() as session:
        (await session.get(VideoJob, video_id)).next_poll_at = 0
    await JobPoller(gateway.rt).run_once()


async def started(gateway, media_host, key) -> str:
    """An enhancement running on Replicate, its source uploaded there (and not deleted yet)."""
    response = await enhance(gateway, key, media_host.serve("/clip.mp4", sample_mp4()))
    assert response.status_code == 200, response.text
    replicate = gateway.upstream.replicate
    assert len(replicate.uploads) == 1 and replicate.deleted_files == []
    return response.json()["id"]


async def status_of(gateway, key, video_id: str) -> dict:
    return (await gateway.client.get(f"/v1/videos/{video_id}", headers=auth(key))).json()


async def test_the_uploaded_source_is_deleted_once_the_prediction_succeeded(gateway, media_host):
    _, key = await gateway.account()
    video_id = await started(gateway, media_host, key)
    replicate = gateway.upstream.replicate
    [file_id] = replicate.uploads
    for _ in range(replicate.polls_before_done):
        await poll_now(gateway, video_id)
        assert replicate.deleted_files == []  # still being read
    await poll_now(gateway, video_id)
    assert (await status_of(gateway, key, video_id))["status"] == "completed"
    assert replicate.deleted_files == [file_id] and replicate.uploads == {}


async def test_the_uploaded_source_is_deleted_after_a_failed_prediction(gateway, media_host):
    account, key = await gateway.account(credits=10_000)
    gateway.upstream.replicate.faults.set(Fault.TASK_FAILS)
    video_id = await started(gateway, media_host, key)
    replicate = gateway.upstream.replicate
    [file_id] = replicate.uploads
    for _ in range(replicate.polls_before_done + 1):
        await poll_now(gateway, video_id)
    assert (await status_of(gateway, key, video_id))["status"] == "failed"
    assert replicate.deleted_files == [file_id] and replicate.uploads == {}
    assert await ledger_matches(gateway.rt, account) == (10_000, 0)


async def test_the_uploaded_source_is_deleted_when_the_caller_deletes_the_job(gateway, media_host):
    _, key = await gateway.account()
    video_id = await started(gateway, media_host, key)
    replicate = gateway.upstream.replicate
    [file_id] = replicate.uploads
    deleted = await gateway.client.delete(f"/v1/videos/{video_id}", headers=auth(key))
    assert deleted.status_code == 200, deleted.text
    assert replicate.requests.get("POST /v1/predictions/{id}/cancel") == 1
    assert replicate.deleted_files == [file_id] and replicate.uploads == {}


async def test_the_uploaded_source_is_deleted_when_the_job_is_given_up(make_gateway, media_host):
    gateway = await make_gateway(
        catalog=catalog(),
        provider_keys=KEYS,
        provider_base_urls=URLS,
        video_job_deadline_seconds=60,
    )
    gateway.rt.fetcher = gateway.rt.engine.fetcher = media_host.async_fetcher(
        gateway.rt.settings.url_policy
    )
    _, key = await gateway.account()
    video_id = await started(gateway, media_host, key)
    replicate = gateway.upstream.replicate
    [file_id] = replicate.uploads
    async with gateway.rt.db.write() as session:
        (await session.get(VideoJob, video_id)).created_at -= 61  # past its deadline
    await poll_now(gateway, video_id)
    failed = await status_of(gateway, key, video_id)
    assert (failed["status"], failed["error"]["code"]) == ("failed", "deadline_exceeded")
    assert replicate.deleted_files == [file_id] and replicate.uploads == {}


async def test_a_failing_delete_is_retried_and_never_fails_the_job(gateway, media_host):
    """One delete unanswered (the engine raises its error in the adapter), one answered 503,
    the third done: the job completes meanwhile."""
    _, key = await gateway.account()
    video_id = await started(gateway, media_host, key)
    replicate = gateway.upstream.replicate
    [file_id] = replicate.uploads
    gateway.upstream.unanswered_deletes, replicate.failed_deletes = 1, 1
    for _ in range(replicate.polls_before_done + 1):
        await poll_now(gateway, video_id)
    assert (await status_of(gateway, key, video_id))["status"] == "completed"
    assert gateway.upstream.unanswered_deletes == 0
    assert replicate.requests["DELETE /v1/files/{id}"] == 2  # the unanswered one never got there
    assert replicate.deleted_files == [file_id]


async def test_a_delete_that_never_succeeds_is_logged_and_the_job_completes(
    gateway, media_host, caplog
):
    _, key = await gateway.account()
    video_id = await started(gateway, media_host, key)
    gateway.upstream.unanswered_deletes = 99
    with caplog.at_level("WARNING", logger="reapi"):
        for _ in range(gateway.upstream.replicate.polls_before_done + 1):
            await poll_now(gateway, video_id)
    assert (await status_of(gateway, key, video_id))["status"] == "completed"
    assert gateway.upstream.unanswered_deletes == 99 - 3
    [record] = [r for r in caplog.records if r.levelname == "WARNING" and r.name == "reapi"]
    assert (record.provider, record.code, record.attempts) == (
        "replicate",
        "upstream_unreachable",
        3,
    )
