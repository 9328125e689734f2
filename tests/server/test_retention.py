"""CHECKS.md §25 with a moved clock: usage rows, video jobs and mirrored outputs (rows and
objects) 31 days old are deleted; 29 days old they remain. Two processes running the job at
once delete each row (and queue each object) once."""

import asyncio

import pytest
from sqlalchemy import func, select
from tests.server.helpers import auth
from tests.server.test_videos import create, drive

from reapi_server.jobs.poller import JobPoller
from reapi_server.models import PendingDeletion, StoredOutput, UsageRecord, VideoJob
from reapi_server.retention import purge_once

DAY = 86_400.0


@pytest.fixture(params=["local", "s3"])
def storage_backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def _count(rt, model) -> int:
    async with rt.db.read() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar()


async def _make_outputs(gateway, key: str) -> dict[str, object]:
    """An image request (two images) and a finished video, made at the clock's current time."""
    image = await gateway.client.post(
        "/v1/images/generations",
        json={"prompt": "p", "n": 2, "response_format": "url"},
        headers=auth(key),
    )
    video = (await create(gateway, key)).json()
    await drive(gateway)
    return {
        "request_id": image.headers["x-request-id"],
        "urls": [d["url"] for d in image.json()["data"]],
        "video_id": video["id"],
    }


async def moved_clock_case(gateway, second_rt=None) -> None:
    rt = gateway.rt
    start = rt.now()
    _, key = await gateway.account(credits=100_000)
    rt.clock = lambda: start
    old = await _make_outputs(gateway, key)
    rt.clock = lambda: start + 2 * DAY
    young = await _make_outputs(gateway, key)
    assert len(gateway.stored()) == 8 and await _count(rt, UsageRecord) == 4

    rt.clock = lambda: start + 31 * DAY  # `old` is 31 days old, `young` 29
    if second_rt is not None:
        second_rt.clock = rt.clock
        reports = await asyncio.gather(purge_once(rt, batch=1), purge_once(second_rt, batch=1))
    else:
        reports = [await purge_once(rt)]
    assert sum(r.outputs for r in reports) == 4  # two images, a video, its thumbnail
    assert sum(r.usage_rows for r in reports) == 2
    assert sum(r.video_jobs for r in reports) == 1
    assert sum(r.objects for r in reports) == 4

    assert sorted(gateway.stored()) == sorted(
        [
            f"outputs/{young['request_id']}/0.png",
            f"outputs/{young['request_id']}/1.png",
            f"outputs/{young['video_id']}/0.mp4",
            f"outputs/{young['video_id']}/1.png",
        ]
    )
    assert await _count(rt, StoredOutput) == 4 and await _count(rt, UsageRecord) == 2
    assert await _count(rt, VideoJob) == 1 and await _count(rt, PendingDeletion) == 0
    for url in old["urls"]:
        assert (await gateway.client.get(url)).status_code == 404
    for url in young["urls"]:
        assert (await gateway.client.get(url)).status_code == 200
    gone = await gateway.client.get(f"/v1/videos/{old['video_id']}", headers=auth(key))
    assert gone.status_code == 404
    kept = await gateway.client.get(f"/v1/videos/{young['video_id']}/content", headers=auth(key))
    assert kept.status_code == 200
    usage = {
        u["id"] for u in (await gateway.client.get("/v1/usage", headers=auth(key))).json()["data"]
    }
    assert young["request_id"] in usage and old["request_id"] not in usage

    rt.clock = lambda: start + 33 * DAY  # now `young` is 31 days old too
    await purge_once(rt)
    assert gateway.stored() == {} and await _count(rt, UsageRecord) == 0


async def test_29_days_kept_31_days_gone(gateway):
    await moved_clock_case(gateway)


async def two_processes_case(gateway) -> None:
    """The moved-clock case with a second server process purging the same database."""
    from tests.server.test_videos import _second_runtime

    second = await _second_runtime(gateway, gateway.rt.settings.resolved_database_url)
    try:
        await moved_clock_case(gateway, second)
    finally:
        await second.aclose()


async def test_two_processes_share_the_work(gateway):
    await two_processes_case(gateway)


async def test_unfinished_jobs_are_never_purged(gateway):
    _, key = await gateway.account(credits=1000)
    start = gateway.rt.now()
    video = (await create(gateway, key)).json()
    await JobPoller(gateway.rt).run_once()  # in progress
    gateway.rt.clock = lambda: start + 40 * DAY
    await purge_once(gateway.rt)
    async with gateway.rt.db.read() as session:
        assert (await session.get(VideoJob, video["id"])) is not None


async def test_the_retention_period_is_configurable(make_gateway):
    gateway = await make_gateway(retention_days=7)
    _, key = await gateway.account()
    start = gateway.rt.now()
    gateway.rt.clock = lambda: start
    await gateway.client.post("/v1/images/generations", json={"prompt": "p"}, headers=auth(key))
    gateway.rt.clock = lambda: start + 6.9 * DAY
    assert (await purge_once(gateway.rt)).outputs == 0
    gateway.rt.clock = lambda: start + 7.1 * DAY
    assert (await purge_once(gateway.rt)).outputs == 1
    assert gateway.stored() == {}
