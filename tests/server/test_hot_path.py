"""The hot path's mechanisms: group commit and the trigger-kept count of unfinished videos.

Where a guarantee depends on the database, it is checked on SQLite and on PostgreSQL
(`db_gateway`, in conftest)."""

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from tests.server.helpers import auth, ledger_matches
from tests.server.test_credits import PRICE, concurrent_spend
from tests.server.test_videos import create, drive

from reapi_server.credits import repository as credit_rows
from reapi_server.group_commit import Tx
from reapi_server.models import ACTIVE_JOB_STATES, ApiKey, UsageRecord, VideoJob
from reapi_server.usage import repository as usage_rows

# -- group commit ----------------------------------------------------------------------------


async def test_group_commit_batches_and_never_overdraws(db_gateway):
    gateway = db_gateway
    group = gateway.rt.db.group
    transactions, ops = group.transactions, group.ops
    await concurrent_spend(gateway)  # 50 requests, credit for 10: never overdrawn
    transactions, ops = group.transactions - transactions, group.ops - ops
    assert ops == 60  # a hold or a refusal each, and a settlement for the 10 that ran
    assert transactions < ops / 2, (transactions, ops)


async def test_reserves_queued_together_never_overdraw(db_gateway):
    gateway = db_gateway
    account, _ = await gateway.account(credits=10 * PRICE)
    rt = gateway.rt

    async def hold(tx: Tx) -> str | None:
        return await credit_rows.reserve(
            tx, account, PRICE, purpose="image", request_id="r", expires_at=None, now=1.0
        )

    holds = await asyncio.gather(*(rt.db.grouped(hold) for _ in range(50)))
    assert len([h for h in holds if h is not None]) == 10
    assert await ledger_matches(rt, account) == (0, 10 * PRICE)


async def test_a_failing_op_does_not_fail_its_batch(db_gateway):
    gateway = db_gateway
    account, _ = await gateway.account(credits=100)
    rt = gateway.rt
    row = UsageRecord(
        id="req_duplicate",
        account_id=account,
        api_key_id=None,
        model="m",
        endpoint="images.generations",
        credit_cost=0,
        status="failed",
        error_code=None,
        provider=None,
        attempts=0,
        duration_ms=0,
        created_at=1.0,
    )

    async def grant(tx: Tx) -> None:
        await credit_rows.grant(tx, account, 5, 1.0)

    async def insert(tx: Tx) -> None:
        await usage_rows.insert(tx, row)

    results = await asyncio.gather(
        rt.db.grouped(grant),
        rt.db.grouped(insert),
        rt.db.grouped(insert),  # the same primary key again: this one must fail, alone
        rt.db.grouped(grant),
        return_exceptions=True,
    )
    assert [type(r) for r in results] == [type(None), type(None), IntegrityError, type(None)]
    assert await ledger_matches(rt, account) == (110, 0)


async def test_a_cancelled_request_still_learns_its_outcome(gateway):
    account, _ = await gateway.account(credits=100)
    rt = gateway.rt
    outcome: list[str | None] = []

    async def hold(tx: Tx) -> str | None:
        return await credit_rows.reserve(
            tx, account, 30, purpose="image", request_id="r", expires_at=None, now=1.0
        )

    async def request() -> None:
        outcome.append(await rt.db.grouped(hold))
        await asyncio.sleep(10)

    task = asyncio.create_task(request())
    await asyncio.sleep(0)  # queued, not yet committed
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert outcome and outcome[0] is not None  # the hold exists and its owner knows it
    assert await ledger_matches(rt, account) == (70, 30)


class _OpFailed(Exception):
    pass


async def _fail(tx: Tx) -> None:
    raise _OpFailed


async def test_a_cancelled_request_whose_op_fails_stays_cancelled(gateway):
    rt = gateway.rt
    reached: list[str] = []

    async def request() -> None:
        try:
            await rt.db.grouped(_fail)
        except _OpFailed:
            reached.append("failed")  # the outcome is handed over...
        await asyncio.sleep(10)  # ...and the cancellation lands at the next await
        reached.append("not cancelled")

    task = asyncio.create_task(request())
    await asyncio.sleep(0)  # queued, not yet run
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert reached == ["failed"]


@pytest.mark.parametrize("op", ["succeeds", "fails"])
async def test_a_timeout_while_queued_surfaces_as_timeout(gateway, op):
    account, _ = await gateway.account(credits=100)
    rt = gateway.rt

    async def hold(tx: Tx) -> str | None:
        return await credit_rows.reserve(
            tx, account, 30, purpose="image", request_id="r", expires_at=None, now=1.0
        )

    async def request() -> int:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):  # expires while the op is queued
                try:
                    await rt.db.grouped(hold if op == "succeeds" else _fail)
                except _OpFailed:
                    pass
                await asyncio.sleep(10)
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    assert await asyncio.wait_for(asyncio.create_task(request()), 5) == 0


@pytest.mark.parametrize("batch", ["alone", "with another op"])
async def test_a_settlement_whose_commit_outcome_is_unknown(db_gateway, monkeypatch, batch):
    """The connection drops during the COMMIT of a request's settlement, which did commit: the
    usage row must still say what the ledger says (charged), not failed and free."""
    gateway = db_gateway
    account, key = await gateway.account(credits=1000)
    rt = gateway.rt
    group = rt.db.group
    real_transaction = group._transaction
    batches: list[int] = []

    async def commit_then_drop(ops):
        results = await real_transaction(ops)
        batches.append(len(ops))
        if len(batches) == 2:  # the settlement's: committed, but the caller cannot know
            raise ConnectionResetError("connection lost during COMMIT")
        return results

    monkeypatch.setattr(group, "_transaction", commit_then_drop)
    if batch != "alone":
        real_put = rt.store.put

        async def noop(tx: Tx) -> None:
            return None

        async def put_then_queue_another(*args, **kwargs):
            size = await real_put(*args, **kwargs)
            asyncio.get_running_loop().create_task(rt.db.grouped(noop))
            return size

        monkeypatch.setattr(rt.store, "put", put_then_queue_another)
    response = await gateway.client.post(
        "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "p"}, headers=auth(key)
    )
    assert batches[1] == (1 if batch == "alone" else 2)
    charged = 1000 - (await ledger_matches(rt, account))[0]
    assert charged == 40
    async with rt.db.read() as session:
        usage = await session.get(UsageRecord, response.headers["x-request-id"])
    assert usage is not None
    assert (usage.status, usage.credit_cost) == ("succeeded", charged)
    assert response.status_code == 200  # it was delivered and paid for: the caller gets it


# -- the per-key count of unfinished video jobs ------------------------------------------------


async def test_active_video_counter_follows_every_change(db_gateway):
    gateway = db_gateway
    _, key = await gateway.account(credits=10_000)
    rt = gateway.rt

    async def check() -> int:
        async with rt.db.read() as session:
            counted = (
                await session.execute(
                    select(func.count())
                    .select_from(VideoJob)
                    .where(VideoJob.status.in_(ACTIVE_JOB_STATES))
                )
            ).scalar_one()
            kept = (await session.execute(select(func.sum(ApiKey.active_videos)))).scalar_one()
        assert kept == counted
        return int(counted)

    ids = [(await create(gateway, key)).json()["id"] for _ in range(3)]
    assert await check() == 3
    deleted = await gateway.client.delete(f"/v1/videos/{ids[0]}", headers=auth(key))
    assert deleted.status_code == 200
    assert await check() == 2
    gateway.upstream.faults = {"primary.test": "500", "backup.test": "500"}
    assert (await create(gateway, key)).status_code >= 500  # failed at submission
    assert await check() == 2
    gateway.upstream.faults = {}
    await drive(gateway)  # the poller completes the rest
    assert await check() == 0


async def test_video_limit_holds_within_one_batch(make_gateway):
    gateway = await make_gateway(max_concurrent_videos=3)
    _, key = await gateway.account(credits=10_000)
    responses = await asyncio.gather(*(create(gateway, key) for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [200] * 3 + [429] * 7
