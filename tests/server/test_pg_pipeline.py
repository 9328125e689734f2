"""PostgreSQL: a group commit sends the ops of one kind in one round trip (`pg_pipeline`), and
its results are those of running the ops one after the other."""

import asyncio

import pytest
from sqlalchemy import ARRAY, Integer, String, any_, bindparam, delete, select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from tests.server.helpers import ledger_matches
from tests.server.test_credits import PRICE
from tests.server.test_hot_path import _on_postgres, _queued

from reapi_server.credits import repository as credit_rows
from reapi_server.credits.service import hold_or_record_refusal
from reapi_server.errors import InsufficientCredits
from reapi_server.group_commit import Statement, Tx
from reapi_server.models import Account, CommitMarker, UsageRecord
from reapi_server.pg_pipeline import inline_sql
from reapi_server.usage.row import UsageRow


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


@pytest.mark.postgres
async def test_a_batch_sends_each_kind_of_op_in_one_round_trip(postgres_server, make_gateway):
    """Four settlements and four holds in one transaction: BEGIN with the accounts' lock and
    the commit marker, one round trip per kind of op, COMMIT (one statement per op, and BEGIN
    on its own, made it 11)."""
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
    assert len(sent) <= 4, sent
    assert sent[0].startswith("BEGIN;") and "FOR NO KEY UPDATE" in sent[0]
    # 10 images' credit: 5 holds open, 6 settled at half price
    assert await ledger_matches(rt, account) == (10 * PRICE - 5 * PRICE - 3 * PRICE, 5 * PRICE)


@pytest.mark.postgres
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


@pytest.mark.postgres
async def test_an_op_that_awaits_something_else_still_runs(postgres_server, make_gateway):
    _, rt, account = await _on_postgres(postgres_server, make_gateway)

    async def wanders(tx: Tx) -> str | None:
        await asyncio.sleep(0)
        return await _hold(account)(tx)

    results = await _batch(rt, account, [_hold(account), wanders, _hold(account)])
    assert None not in results and len(set(results)) == 3
    assert await ledger_matches(rt, account) == (7 * PRICE, 3 * PRICE)


@pytest.mark.postgres
async def test_a_swept_marker_row_is_written_again(postgres_server, make_gateway):
    """The marker goes with BEGIN, unanswered: it is an upsert, so a live committer whose idle
    row the sweeper deleted still marks its next transaction (a lost COMMIT's outcome is read
    from that row)."""
    _, rt, account = await _on_postgres(postgres_server, make_gateway)
    group = rt.db.group
    await _batch(rt, account, [_hold(account), _hold(account)])
    async with rt.db.write() as session:
        await session.execute(delete(CommitMarker))
    await _batch(rt, account, [_hold(account), _hold(account)])
    async with rt.db.read() as session:
        rows = (await session.execute(select(CommitMarker.owner, CommitMarker.seq))).all()
    assert rows == [(group._owner, group._seq)]


def test_only_plain_values_are_written_into_sql():
    statement = Statement(
        select(Account.id).where(
            Account.id == any_(bindparam("ids", type_=ARRAY(String))),
            Account.balance > bindparam("least", type_=Integer),
            Account.on_hold != bindparam("name", type_=String),
        )
    )
    dialect = asyncpg_dialect()
    plain = {"ids": ["acct_1", "b-2"], "least": 3, "name": "x.y"}
    sql = inline_sql(statement, dialect, plain)
    assert sql is not None and "$" not in sql
    assert "ARRAY['acct_1','b-2']" in sql and "'x.y'" in sql and "> 3" in sql
    for odd in ({"name": "o'clock"}, {"name": "back\\slash"}, {"ids": ["a'"]}, {"least": True}):
        assert inline_sql(statement, dialect, {**plain, **odd}) is None
