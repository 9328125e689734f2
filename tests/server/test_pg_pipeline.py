"""PostgreSQL: a group commit sends the ops of one kind in one round trip (`pg_pipeline`), and
its results are those of running the ops one after the other."""

import asyncio

import pytest
from sqlalchemy import select
from tests.server.helpers import ledger_matches
from tests.server.test_credits import PRICE
from tests.server.test_hot_path import _on_postgres, _queued

from reapi_server.credits import repository as credit_rows
from reapi_server.credits.service import hold_or_record_refusal
from reapi_server.errors import InsufficientCredits
from reapi_server.group_commit import Tx
from reapi_server.models import UsageRecord
from reapi_server.usage.row import UsageRow

pytestmark = pytest.mark.postgres


def _hold(account: str, amount: int = PRICE):
    async def op(tx: Tx) -> str | None:
        return await credit_rows.reserve(
            tx, account, amount, purpose="image", request_id="r", expires_at=None, now=1.0
        )

    return op


def _settle(hold_id: str):
    async def op(tx: Tx) -> object:
        return await credit_rows.settle(tx, hold_id, PRICE // 2, 2.0)

    return op


async def _batch(rt, account: str, ops: list) -> list:
    """`ops` queued while the writer is busy, so that they share one transaction."""
    group = rt.db.group
    async with group.turn():
        tasks = [asyncio.create_task(rt.db.grouped(op, account=account)) for op in ops]
        await _queued(group, len(ops))
    return await asyncio.gather(*tasks)


async def test_a_batch_sends_each_kind_of_op_in_one_round_trip(postgres_server, make_gateway):
    """Four settlements and four holds in one transaction: BEGIN, the accounts' lock with the
    commit marker, one round trip per kind of op, COMMIT (one statement per op made it 11)."""
    _, rt, account = await _on_postgres(postgres_server, make_gateway)
    group = rt.db.group
    warm = await _batch(rt, account, [_hold(account) for _ in range(6)])  # statements prepared
    await _batch(rt, account, [_settle(warm[4]), _settle(warm[5]), _hold(account)])
    sent: list[str] = []
    group._held_asyncpg.add_query_logger(lambda query: sent.append(query.query))
    results = await _batch(
        rt, account, [*(_settle(h) for h in warm[:4]), *(_hold(account) for _ in range(4))]
    )
    assert [type(r).__name__ for r in results] == ["ClosedHold"] * 4 + ["str"] * 4
    assert [r.charged for r in results[:4]] == [PRICE // 2] * 4
    assert len(sent) <= 5, sent
    # 10 images' credit: 5 holds open, 6 settled at half price
    assert await ledger_matches(rt, account) == (10 * PRICE - 5 * PRICE - 3 * PRICE, 5 * PRICE)


async def test_a_refusal_amid_a_run_keeps_the_order_of_the_ops(postgres_server, make_gateway):
    """A refused hold reads why (a second statement) before the next op's hold is made, as
    when the ops run one after the other: it then sees the balance it was refused on."""
    _, rt, account = await _on_postgres(postgres_server, make_gateway)

    def opening(amount: int, request_id: str):
        usage = UsageRow(
            request_id, account, None, "gpt-image-2", "images.generations", 0, "pending",
            None, None, 0, 1, 1.0,
        )  # fmt: skip

        async def op(tx: Tx) -> object:
            return await hold_or_record_refusal(
                tx, usage, amount, purpose="image", expires_at=None, now=1.0
            )

        return op

    results = await _batch(
        rt,
        account,
        [opening(PRICE, "req_a"), opening(20 * PRICE, "req_b"), opening(PRICE, "req_c")],
    )
    assert isinstance(results[0], str) and isinstance(results[2], str)
    assert isinstance(results[1], InsufficientCredits)
    assert await ledger_matches(rt, account) == (8 * PRICE, 2 * PRICE)
    async with rt.db.read() as session:
        rows = (await session.execute(select(UsageRecord.id, UsageRecord.status))).all()
    assert sorted(rows) == [("req_a", "pending"), ("req_b", "failed"), ("req_c", "pending")]


async def test_an_op_that_awaits_something_else_still_runs(postgres_server, make_gateway):
    _, rt, account = await _on_postgres(postgres_server, make_gateway)

    async def wanders(tx: Tx) -> str | None:
        await asyncio.sleep(0)
        return await _hold(account)(tx)

    results = await _batch(rt, account, [_hold(account), wanders, _hold(account)])
    assert None not in results and len(set(results)) == 3
    assert await ledger_matches(rt, account) == (7 * PRICE, 3 * PRICE)
