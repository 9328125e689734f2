"""One lock order on PostgreSQL: no deadlock between group commits, the poller, deletes and the
sweeper.

Each test stages the interleaving that used to deadlock. A third connection holds one row lock
so that two of the gateway's transactions queue behind it in a chosen order; once it lets go,
both must finish. Before the lock order, PostgreSQL found a deadlock and aborted one of them:
a poller's settlement (the job stayed unfinished), a batch (its ops ran again one by one) or a
delete (500)."""

import asyncio
import secrets

import asyncpg
import pytest
from sqlalchemy import select
from tests.server.helpers import auth, ledger_matches
from tests.server.test_videos import COST, create

from reapi_server.credits import repository as credit_rows
from reapi_server.credits.renewal import renew_live_holds
from reapi_server.group_commit import Tx
from reapi_server.idempotency import repository as idempotency_rows
from reapi_server.jobs import repository as job_rows
from reapi_server.jobs.poller import JobPoller
from reapi_server.jobs.sweeper import sweep_once
from reapi_server.models import ApiKey, CreditHold, IdempotencyRecord, VideoJob

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg(postgres_server, make_gateway):
    name = f"t_{secrets.token_hex(6)}"
    await asyncio.to_thread(
        postgres_server.execute, f"CREATE DATABASE {name} TEMPLATE reapi_template"
    )
    gateway = await make_gateway(database_url=postgres_server.url(name))
    blocker = await asyncpg.connect(
        host="127.0.0.1", port=postgres_server.port, user="reapi", database=name
    )
    # Another connection, outside any transaction: a transaction sees pg_stat_activity frozen.
    watcher = await asyncpg.connect(
        host="127.0.0.1", port=postgres_server.port, user="reapi", database=name
    )
    yield gateway, _Blocker(blocker, watcher, name), name
    await blocker.close()
    await watcher.close()


class _Blocker:
    """Holds a row lock for the test (`transaction`, `execute`) and watches who waits."""

    def __init__(self, connection, watcher, database: str) -> None:
        self.connection, self.watcher, self.database = connection, watcher, database

    def transaction(self):
        return self.connection.transaction()

    async def execute(self, sql: str, *args: object) -> None:
        await self.connection.execute(sql, *args)


async def _waiting_for_locks(blocker: _Blocker, database: str, count: int) -> None:
    """Until `count` sessions (the blocker's included) wait for a lock... of the gateway's."""
    for _ in range(500):
        waiting = await blocker.watcher.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
            database,
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} sessions never waited for a lock")


async def _video_due_to_complete(gateway, key: str) -> VideoJob:
    """A job whose next poll finds it completed (the fake upstream: one poll in progress)."""
    created = await create(gateway, key)
    assert created.status_code == 200
    await JobPoller(gateway.rt).run_once()
    async with gateway.rt.db.read() as session:
        job = await job_rows.get(session, created.json()["id"])
    assert job is not None and job.status == "in_progress"
    return job


async def _status(gateway, job_id: str) -> str | None:
    async with gateway.rt.db.read() as session:
        job = await job_rows.get(session, job_id)
    return None if job is None else job.status


async def test_a_batch_and_the_pollers_settlement(pg):
    """The batch holds credit for an image and checks a key's video limit; the poller settles
    a job of that key. It used to lock the job, then the key (the trigger), then the account;
    the batch the account, then the key."""
    gateway, blocker, database = pg
    rt = gateway.rt
    account, key = await gateway.account(credits=10_000)
    job = await _video_due_to_complete(gateway, key)
    async with rt.db.read() as session:
        key_id = (
            await session.execute(select(ApiKey.id).where(ApiKey.account_id == account))
        ).scalar_one()

    async def hold(tx: Tx) -> str | None:
        return await credit_rows.reserve(
            tx, account, 40, purpose="image", request_id="r", expires_at=None, now=rt.now()
        )

    async def key_limit(tx: Tx) -> int:
        return await job_rows.active_videos(tx, key_id)

    transaction = blocker.transaction()
    await transaction.start()
    await blocker.execute("SELECT 1 FROM credit_holds WHERE id = $1 FOR UPDATE", job.hold_id)
    poller = asyncio.create_task(JobPoller(rt).run_once())
    await _waiting_for_locks(blocker, database, 1)
    batches = rt.db.group.transactions
    batch = asyncio.gather(
        rt.db.grouped(hold, account=account), rt.db.grouped(key_limit, account=account)
    )
    await _waiting_for_locks(blocker, database, 2)
    await transaction.rollback()
    held, active = await asyncio.wait_for(batch, 10)
    await asyncio.wait_for(poller, 10)

    assert held is not None and active == 0
    assert rt.db.group.transactions - batches == 1  # one batch, never run again op by op
    assert await _status(gateway, job.id) == "completed"
    assert await ledger_matches(rt, account) == (10_000 - COST - 40, 40)


async def test_a_delete_and_the_pollers_settlement(pg):
    """DELETE /v1/videos/{id} while the poller settles the job. The delete used to lock the
    hold and the account, then the job; the poller the job, then the hold and the account."""
    gateway, blocker, database = pg
    rt = gateway.rt
    account, key = await gateway.account(credits=10_000)
    job = await _video_due_to_complete(gateway, key)

    storing, stored = asyncio.Event(), asyncio.Event()
    real_put = rt.store.put

    async def put(*args, **kwargs):
        storing.set()
        await stored.wait()
        return await real_put(*args, **kwargs)

    rt.store.put = put
    poller = asyncio.create_task(JobPoller(rt).run_once())
    await asyncio.wait_for(storing.wait(), 10)  # the job is claimed: now hold its row
    transaction = blocker.transaction()
    await transaction.start()
    await blocker.execute("SELECT 1 FROM video_jobs WHERE id = $1 FOR UPDATE", job.id)
    stored.set()
    await _waiting_for_locks(blocker, database, 1)
    delete = asyncio.create_task(gateway.client.delete(f"/v1/videos/{job.id}", headers=auth(key)))
    await _waiting_for_locks(blocker, database, 2)
    await transaction.rollback()
    await asyncio.wait_for(poller, 10)
    deleted = await asyncio.wait_for(delete, 10)

    assert deleted.status_code == 200, deleted.text
    assert await _status(gateway, job.id) is None
    # The poller settled first (it queued first): the finished video was charged, once.
    assert await ledger_matches(rt, account) == (10_000 - COST, 0)


async def test_the_sweeper_and_a_batch_settling_the_same_hold(pg):
    """The sweeper releases an image hold past its expiry while the request settles it in a
    batch. The sweeper used to lock the hold, then the account; the batch the account (a
    reserve before it in the batch), then the hold."""
    gateway, blocker, database = pg
    rt = gateway.rt
    account, _ = await gateway.account(credits=10_000)
    now = rt.now()
    async with rt.db.write() as session:
        stale = await credit_rows.reserve(
            session, account, 40, purpose="image", request_id="r1", expires_at=now - 1, now=now
        )
    assert stale is not None

    async def hold(tx: Tx) -> str | None:
        return await credit_rows.reserve(
            tx, account, 40, purpose="image", request_id="r2", expires_at=None, now=now
        )

    async def settle(tx: Tx) -> object:
        return await credit_rows.settle(tx, stale, 40, now)

    transaction = blocker.transaction()
    await transaction.start()
    await blocker.execute("SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE", account)
    batches = rt.db.group.transactions
    batch = asyncio.gather(
        rt.db.grouped(hold, account=account), rt.db.grouped(settle, account=account)
    )
    await _waiting_for_locks(blocker, database, 1)
    sweeper = asyncio.create_task(sweep_once(rt))
    await _waiting_for_locks(blocker, database, 2)
    await transaction.rollback()
    held, closed = await asyncio.wait_for(batch, 10)
    report = await asyncio.wait_for(sweeper, 10)

    assert held is not None and closed is not None  # the batch queued first: it settled
    assert report.holds_released == 0
    assert rt.db.group.transactions - batches == 1
    assert await ledger_matches(rt, account) == (10_000 - 80, 40)


async def test_the_sweeper_never_waits_for_an_idempotency_record_in_use(pg):
    """Its bulk deletes skip rows another transaction holds (a request recording its answer
    in its batch), so they cannot join a cycle of waits, nor wait at all."""
    gateway, blocker, _ = pg
    rt = gateway.rt
    account, _ = await gateway.account()
    old = rt.now() - rt.settings.image_hold_seconds - 60
    async with rt.db.write() as session:
        for key in ("in-use", "abandoned"):
            await idempotency_rows.claim(
                session,
                account,
                key,
                "f",
                old,
                rt.now() + 3600,
                old + rt.settings.image_hold_seconds,
            )
    transaction = blocker.transaction()
    await transaction.start()
    await blocker.execute("SELECT 1 FROM idempotency_records WHERE key_hash = 'in-use' FOR UPDATE")
    try:
        report = await asyncio.wait_for(sweep_once(rt), 5)
    finally:
        await transaction.rollback()
    assert report.idempotency_dropped == 1
    async with rt.db.read() as session:
        left = (await session.execute(select(IdempotencyRecord.key_hash))).scalars().all()
    assert left == ["in-use"]


async def test_the_hold_renewal_never_waits_for_a_hold_in_use(pg):
    """A renewal round updates the holds of several running requests at once, no account locked
    first: waiting for one that a batch is settling, while holding another that batch settles
    next, would close a cycle. It skips a hold in use (one being closed needs no renewal) and
    tries it again next round."""
    gateway, blocker, _ = pg
    rt = gateway.rt
    account, _ = await gateway.account()
    now, window = rt.now(), rt.settings.image_hold_seconds
    holds = []
    async with rt.db.write() as session:
        for request_id in ("in-use", "free"):
            holds.append(
                await credit_rows.reserve(
                    session,
                    account,
                    40,
                    purpose="image",
                    request_id=request_id,
                    expires_at=now + 1,
                    now=now,
                )
            )
    in_use, free = holds
    for hold in holds:
        rt.live_holds.add(hold, now + 1)  # due for renewal
    transaction = blocker.transaction()
    await transaction.start()
    await blocker.execute("SELECT 1 FROM credit_holds WHERE id = $1 FOR UPDATE", in_use)
    try:
        renewed = await asyncio.wait_for(renew_live_holds(rt), 5)
    finally:
        await transaction.rollback()
    assert renewed == 1
    async with rt.db.read() as session:
        rows = await session.execute(select(CreditHold.id, CreditHold.expires_at))
        expiry = {hold_id: expires_at for hold_id, expires_at in rows}
    assert expiry[in_use] == now + 1 and expiry[free] > now + window / 2
    assert rt.live_holds.due(now, window) == [in_use]  # tried again next round


async def test_mixed_traffic_on_one_account_never_deadlocks(pg, make_gateway, caplog):
    """Two gateway processes on one database, one account: image requests and video creates
    (group commits), pollers settling, deletes and sweeps, all at once, for a few rounds."""
    gateway, _, _ = pg
    second = await make_gateway(database_url=gateway.rt.settings.resolved_database_url)
    account, key = await gateway.account(credits=1_000_000)
    gateway.upstream.polls_before_done = 0
    videos: list[str] = []

    async def images(g) -> None:
        for _ in range(4):
            response = await g.client.post(
                "/v1/images/generations",
                json={"model": "gpt-image-2", "prompt": "p"},
                headers=auth(key),
            )
            assert response.status_code == 200, response.text

    async def video(g) -> None:
        response = await create(g, key)
        assert response.status_code == 200, response.text
        videos.append(response.json()["id"])

    async def delete_one(g) -> None:
        if videos:
            response = await g.client.delete(f"/v1/videos/{videos.pop(0)}", headers=auth(key))
            assert response.status_code in (200, 404), response.text

    for _ in range(6):
        work = []
        for g in (gateway, second):
            work += [images(g), video(g), video(g), JobPoller(g.rt).run_once(), delete_one(g)]
            work.append(sweep_once(g.rt))
        await asyncio.wait_for(asyncio.gather(*work), 30)
    for g in (gateway, second):
        await JobPoller(g.rt).run_once()
    assert "deadlock" not in caplog.text.lower()
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    await ledger_matches(gateway.rt, account)
