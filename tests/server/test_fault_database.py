"""A database that goes away in the middle of a request, through the fault proxy: the request
answers 503 `database_unavailable` (never a 500, never a success it could not record), its credit
hold is released exactly once as soon as the database is back (not by the sweeper, 15 minutes
later), and nothing is charged twice."""

import asyncio
import secrets

import pytest
from sqlalchemy import select
from tests.server.fault_proxy import FaultProxy
from tests.server.helpers import auth, ledger_matches
from tests.server.postgres import postgres_server  # noqa: F401  (fixture)

from reapi_server.credits.pending import retry_pending_releases
from reapi_server.jobs.sweeper import sweep_once
from reapi_server.models import VideoJob

pytestmark = pytest.mark.postgres


@pytest.fixture
async def proxied(postgres_server, make_gateway, upstream):  # noqa: F811
    name = f"t_{secrets.token_hex(6)}"
    await asyncio.to_thread(
        postgres_server.execute, f"CREATE DATABASE {name} TEMPLATE reapi_template"
    )
    proxy = FaultProxy(postgres_server.port)
    url = f"postgresql+asyncpg://reapi@127.0.0.1:{proxy.port}/{name}"
    gateway = await make_gateway(
        database_url=url, database_error_unready_seconds=0.2, database_timeout=2.0
    )
    yield gateway, proxy
    proxy.close()


async def _later(rt, seconds: float):
    real = rt.clock
    rt.clock = lambda: real() + seconds
    try:
        return await sweep_once(rt)
    finally:
        rt.clock = real


@pytest.mark.parametrize("fault", ["refuse", "reset", "blackhole"])
async def test_the_database_lost_mid_request(proxied, upstream, fault):
    gateway, proxy = proxied
    account, key = await gateway.account(credits=100)
    upstream.faults["primary.test"] = "hang"  # the upstream takes its time...
    upstream.hang_seconds = 0.2  # ...within the first-byte deadline

    async def lose_the_database() -> None:
        for _ in range(2000):  # until the hold is taken: the upstream call runs
            if upstream.calls:
                break
            await asyncio.sleep(0.005)
        getattr(proxy, fault)()
        if fault == "reset":
            proxy.refuse()  # and it stays away until the request has ended

    losing = asyncio.create_task(lose_the_database())
    # A dead host answers nothing, ever: the database timeout ends the wait.
    answer = await asyncio.wait_for(
        gateway.client.post("/v1/images/generations", json={"prompt": "p"}, headers=auth(key)),
        timeout=20,
    )
    await losing
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "database_unavailable"
    assert int(answer.headers["retry-after"]) >= 1
    # Not charged: the release that met the outage is kept and tried again (a background task
    # each second; here by hand) and fails while the database is away...
    pending = gateway.rt.pending_releases
    assert len(pending) == 1
    with pytest.raises(Exception):  # the driver's own error
        await retry_pending_releases(pending)
    assert len(pending) == 1
    # ...then gives the credits back as soon as it is back: not `image_hold_seconds` (15
    # minutes) later when the sweeper would have found the hold expired.
    proxy.heal()
    await asyncio.sleep(0.3)
    assert await retry_pending_releases(pending) == 1
    assert len(pending) == 0
    assert await ledger_matches(gateway.rt, account) == (100, 0)
    # Nothing left for the sweepers, however many run.
    reports = await asyncio.gather(
        *(_later(gateway.rt, gateway.rt.settings.image_hold_seconds + 60) for _ in range(3))
    )
    assert sum(r.holds_released for r in reports) == 0
    again = await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p"}, headers=auth(key)
    )
    assert again.status_code == 200
    balance, reserved = await ledger_matches(gateway.rt, account)
    assert reserved == 0 and 0 < balance < 100  # charged once, for the answered request


async def test_images_stored_before_the_database_went_away_are_deleted(proxied, upstream):
    """The images were stored, then the settlement that writes their rows met the outage: the
    request could not ask whether its rows landed, so it kept the objects (an orphan is safer
    than a row pointing at nothing), and the release that landed a second after the database
    came back closed the hold without queuing them. No row ever pointed at them, so neither
    the retention job nor the sweeper (the hold was no longer held) would delete them: kept for
    ever on local disk, until a lifecycle rule on S3. Seen on a fleet whose PostgreSQL
    restarted under load."""
    from reapi_server.models import PendingDeletion
    from reapi_server.retention import purge_once

    gateway, proxy = proxied
    account, key = await gateway.account(credits=100)
    store = gateway.rt.store
    put = store.put

    async def put_then_lose_the_database(*args, **kwargs):
        written = await put(*args, **kwargs)
        proxy.refuse()  # the settlement, next, meets the outage
        return written

    store.put = put_then_lose_the_database
    answer = await asyncio.wait_for(
        gateway.client.post("/v1/images/generations", json={"prompt": "p"}, headers=auth(key)),
        timeout=20,
    )
    store.put = put
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "database_unavailable"
    assert len(gateway.stored()) == 1  # kept: whether its row landed could not be asked
    proxy.heal()
    await asyncio.sleep(0.3)
    assert await retry_pending_releases(gateway.rt.pending_releases) == 1
    assert await ledger_matches(gateway.rt, account) == (100, 0)
    await purge_once(gateway.rt)
    assert gateway.stored() == {}
    async with gateway.rt.db.read() as session:
        assert (await session.execute(select(PendingDeletion))).first() is None


async def test_a_failed_video_submission_is_released_when_the_database_is_back(proxied, upstream):
    """A video whose submission failed while the database was away: its release is kept and
    tried again like an image request's (each second), not left in `submitting` until the job
    lease (`job_lease_seconds`, 120 s) expires for the sweeper."""
    gateway, proxy = proxied
    account, key = await gateway.account(credits=100)
    upstream.faults.update({"primary.test": "hang", "backup.test": "hang"})
    upstream.hang_seconds = 5.0  # past the first-byte deadline (0.3 s): every route fails

    async def lose_the_database() -> None:
        for _ in range(2000):  # until the hold is taken: the upstream call runs
            if upstream.calls:
                break
            await asyncio.sleep(0.005)
        proxy.refuse()

    losing = asyncio.create_task(lose_the_database())
    body = {"model": "sim-video", "prompt": "a wave", "size": "1280x720"}
    answer = await asyncio.wait_for(
        gateway.client.post("/v1/videos", json=body, headers=auth(key)), timeout=20
    )
    await losing
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "database_unavailable"
    pending = gateway.rt.pending_releases
    assert len(pending) == 1
    with pytest.raises(Exception):  # still away
        await retry_pending_releases(pending)
    proxy.heal()
    await asyncio.sleep(0.3)
    assert await retry_pending_releases(pending) == 1
    assert await ledger_matches(gateway.rt, account) == (100, 0)
    async with gateway.rt.db.read() as session:
        (job,) = (await session.execute(select(VideoJob))).scalars().all()
    assert job.status == "failed" and job.lease_owner is None
