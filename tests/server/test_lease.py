"""A worker storing a large video keeps its lease on the job, and stops at once (deleting
nothing) when another worker has taken the job over."""

import anyio
import pytest
from tests.server.test_videos import create

from reapi_server.jobs import repository
from reapi_server.jobs.lease import LeaseLost, kept_lease
from reapi_server.models import VideoJob


async def _claim(rt, video_id: str) -> None:
    async with rt.db.write() as session:
        await repository.claim_due(session, rt.instance_id, rt.now(), rt.now() + 0.3, 10)


async def test_the_lease_is_renewed_while_the_block_runs(make_gateway):
    gateway = await make_gateway(job_lease_seconds=0.3)
    _, key = await gateway.account()
    video = (await create(gateway, key)).json()
    await _claim(gateway.rt, video["id"])
    async with kept_lease(gateway.rt, video["id"]):
        await anyio.sleep(0.8)  # well past the 0.3 s lease
        async with gateway.rt.db.read() as session:
            job = await session.get(VideoJob, video["id"])
        assert job.lease_owner == gateway.rt.instance_id
        assert job.lease_expires_at > gateway.rt.now()


async def test_a_lost_lease_cancels_the_block(make_gateway):
    gateway = await make_gateway(job_lease_seconds=0.3)
    _, key = await gateway.account()
    video = (await create(gateway, key)).json()
    await _claim(gateway.rt, video["id"])
    reached_the_end = False
    with pytest.raises(LeaseLost):
        async with kept_lease(gateway.rt, video["id"]):
            async with gateway.rt.db.write() as session:  # another worker takes the job
                job = await session.get(VideoJob, video["id"])
                job.lease_owner = "someone-else"
            await anyio.sleep(5)
            reached_the_end = True
    assert not reached_the_end
