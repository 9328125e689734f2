"""CHECKS.md §11 with a real fault: the gateway stores in moto's S3 server through a TCP link
(the fault proxy) that the test cuts (connections reset, new ones refused) or blackholes, and
heals. Outcome: retried with
backoff; an image answers 502 `storage_unavailable`, uncharged; a video job waits with its hold
and completes only once its output is stored, or fails refunded; no row ever points at a
missing object, and what a failed attempt stored is deleted once the store is back."""

import os

import pytest
from sqlalchemy import func, select
from tests.server.fault_proxy import FaultProxy
from tests.server.helpers import auth, ledger_matches, unnamed
from tests.server.test_videos import COST, create

from reapi_server.jobs.poller import MAX_OUTPUT_FAILURES, JobPoller
from reapi_server.mirror.service import purge_deletions
from reapi_server.models import StoredOutput, VideoJob

MIB = 1024 * 1024


@pytest.fixture
def link(moto_server):
    link = FaultProxy(moto_server.port)
    yield link
    link.close()


@pytest.fixture
async def gateway(make_gateway, moto_server, link):
    bucket = moto_server.new_bucket()
    started = await make_gateway(**moto_server.settings(bucket, endpoint=link.endpoint))
    started.s3 = (moto_server, bucket)
    return started


async def _rows(gateway) -> int:
    async with gateway.rt.db.read() as session:
        return (await session.execute(select(func.count()).select_from(StoredOutput))).scalar()


async def _poll(gateway, video_id: str) -> str:
    """One poller round with the job due now; its status afterwards."""
    async with gateway.rt.db.write() as session:
        job = await session.get(VideoJob, video_id)
        job.next_poll_at = 0
    await JobPoller(gateway.rt).run_once()
    async with gateway.rt.db.read() as session:
        return (await session.get(VideoJob, video_id)).status


async def _settle_the_queue(gateway) -> None:
    """What the retention job does once the store answers again (failed deletions back off:
    a moved clock makes them due)."""
    real = gateway.rt.clock
    gateway.rt.clock = lambda: real() + 86_400
    await purge_deletions(gateway.rt)
    gateway.rt.clock = real


async def test_an_image_during_an_outage_is_502_and_uncharged(gateway, link):
    account, key = await gateway.account(credits=100)
    link.refuse()
    response = await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p", "n": 2}, headers=auth(key)
    )
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "storage_unavailable"
    assert await ledger_matches(gateway.rt, account) == (100, 0)
    assert await _rows(gateway) == 0
    usage = (await gateway.client.get("/v1/usage", headers=auth(key))).json()["data"][0]
    assert usage["status"] == "failed" and usage["credit_cost"] == 0
    link.heal()
    await _settle_the_queue(gateway)
    assert gateway.stored() == {}
    ok = await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p"}, headers=auth(key)
    )
    assert ok.status_code == 200  # the store is back


async def test_a_video_waits_out_an_outage_then_completes(gateway, link):
    account, key = await gateway.account(credits=100)
    video = (await create(gateway, key)).json()
    assert await _poll(gateway, video["id"]) == "in_progress"
    link.refuse()
    for _ in range(3):
        assert await _poll(gateway, video["id"]) == "in_progress"  # finished upstream, not here
    assert await ledger_matches(gateway.rt, account) == (60, COST)  # still held, not charged
    assert await _rows(gateway) == 0
    link.heal()
    assert await _poll(gateway, video["id"]) == "completed"
    assert await ledger_matches(gateway.rt, account) == (60, 0)
    assert unnamed(gateway.stored()) == [
        f"outputs/{video['id']}/0.mp4",
        f"outputs/{video['id']}/1.png",
    ]


async def test_an_outage_mid_upload_aborts_then_the_retry_stores_it(gateway, link):
    account, key = await gateway.account(credits=100)
    gateway.upstream.video_body = b"\x00\x00\x00\x18ftypmp42" + os.urandom(12 * MIB)
    video = (await create(gateway, key)).json()
    assert await _poll(gateway, video["id"]) == "in_progress"
    link.reset_after(7 * MIB)  # inside the second 5 MiB part
    assert await _poll(gateway, video["id"]) == "in_progress"
    assert await _rows(gateway) == 0
    link.heal()
    assert gateway.stored() == {}  # no half object, ever
    assert await _poll(gateway, video["id"]) == "completed"
    stored = gateway.stored()
    assert stored[gateway.rt.output_names.key(video["id"], 0, "video/mp4")] == (
        gateway.upstream.video_body
    )
    assert await ledger_matches(gateway.rt, account) == (60, 0)


async def test_an_outage_that_lasts_fails_the_video_refunded(make_gateway, moto_server, link):
    bucket = moto_server.new_bucket()
    gateway = await make_gateway(
        **{**moto_server.settings(bucket, endpoint=link.endpoint), "storage_retries": 0}
    )
    gateway.s3 = (moto_server, bucket)
    account, key = await gateway.account(credits=100)
    video = (await create(gateway, key)).json()
    assert await _poll(gateway, video["id"]) == "in_progress"
    link.reset_after(600)  # the video's small PUT may get through; the thumbnail's does not
    statuses = [await _poll(gateway, video["id"]) for _ in range(MAX_OUTPUT_FAILURES)]
    link.refuse()
    assert statuses[-1] == "failed"
    failed = (await gateway.client.get(f"/v1/videos/{video['id']}", headers=auth(key))).json()
    assert failed["error"]["code"] == "storage_unavailable"
    assert await ledger_matches(gateway.rt, account) == (100, 0)
    assert await _rows(gateway) == 0
    link.heal()
    await _settle_the_queue(gateway)
    assert moto_server.objects(bucket) == {}  # what the failed attempts stored is gone


@pytest.fixture
async def hasty_gateway(make_gateway, moto_server, link):
    """A short storage timeout: a blackholed store answers nothing, ever."""
    bucket = moto_server.new_bucket()
    settings = moto_server.settings(bucket, endpoint=link.endpoint)
    started = await make_gateway(**{**settings, "storage_timeout": 0.5, "storage_retries": 1})
    started.s3 = (moto_server, bucket)
    return started


async def test_a_blackholed_store_fails_an_image_uncharged(hasty_gateway, link):
    gateway = hasty_gateway
    account, key = await gateway.account(credits=100)
    link.blackhole()
    response = await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p"}, headers=auth(key)
    )
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "storage_unavailable"
    assert await ledger_matches(gateway.rt, account) == (100, 0)
    assert await _rows(gateway) == 0
    link.heal()
    ok = await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p"}, headers=auth(key)
    )
    assert ok.status_code == 200
    balance, reserved = await ledger_matches(gateway.rt, account)
    assert reserved == 0 and balance < 100  # this one is charged, the first one was not


async def test_a_video_keeps_its_hold_through_a_blackhole_and_finishes(hasty_gateway, link):
    gateway = hasty_gateway
    account, key = await gateway.account(credits=100)
    video = (await create(gateway, key)).json()
    assert await _poll(gateway, video["id"]) == "in_progress"
    link.blackhole()
    for _ in range(2):
        assert await _poll(gateway, video["id"]) == "in_progress"
    assert await ledger_matches(gateway.rt, account) == (60, COST)  # held, not charged
    link.heal()
    assert await _poll(gateway, video["id"]) == "completed"
    assert await ledger_matches(gateway.rt, account) == (60, 0)
    assert f"outputs/{video['id']}/0.mp4" in unnamed(gateway.stored())
