"""The hot path's mechanisms: group commit and the trigger-kept count of unfinished videos.

Where a guarantee depends on the database, it is checked on SQLite and on PostgreSQL
(`db_gateway`, in conftest)."""

import asyncio
import secrets
import sqlite3
import time
from typing import Any

import anyio
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from tests.server.helpers import auth, ledger_matches
from tests.server.test_credits import PRICE, hammer
from tests.server.test_videos import create, drive

from reapi_server import db as db_module
from reapi_server.credits import repository as credit_rows
from reapi_server.group_commit import Statement, Tx
from reapi_server.jobs.sweeper import sweep_once
from reapi_server.models import (
    ACTIVE_JOB_STATES,
    ApiKey,
    CommitMarker,
    CreditHold,
    UsageRecord,
    VideoJob,
)
from reapi_server.usage import repository as usage_rows

# -- group commit ----------------------------------------------------------------------------


async def _queued(group, count: int) -> None:
    """Until `count` ops wait in the committer's queue."""
    for _ in range(2000):
        if len(group._queue) >= count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{len(group._queue)} ops queued, not {count}")


async def test_group_commit_batches_and_never_overdraws(db_gateway):
    """Ops that come while the writer is busy (a write session or a checkpoint holds its turn,
    a transaction is on the wire) share one transaction."""
    gateway = db_gateway
    group = gateway.rt.db.group
    account, key = await gateway.account(credits=10 * PRICE)
    transactions, ops = group.transactions, group.ops
    async with group.turn():  # the writer is busy
        spend = asyncio.create_task(hammer(gateway, key, 50))  # 50 requests, credit for 10
        await _queued(group, 50)  # their holds
    statuses = await spend
    assert statuses.count(200) == 10 and statuses.count(402) == 40
    assert await ledger_matches(gateway.rt, account) == (0, 0)  # never overdrawn
    transactions, ops = group.transactions - transactions, group.ops - ops
    assert ops == 60  # a hold or a refusal each, and a settlement for the 10 that ran
    assert transactions < ops / 2, (transactions, ops)


async def test_an_opening_op_is_not_held_back_for_company(gateway):
    """SQLite: an op that opens a request (`at_once`: its credit hold, which the upstream call
    waits for) is committed at once, before the tasks ready beside it run; the other ops of that
    pass of the event loop share one transaction. (Every op used to wait for the whole pass, so
    that requests arriving together called the upstream together and moved in lock-step:
    issue 15.)"""
    group = gateway.rt.db.group
    order: list[str] = []

    async def noop(tx: Tx) -> None:
        return None

    async def request(name: str, *, at_once: bool) -> None:
        await gateway.rt.db.grouped(noop, account=None, at_once=at_once)
        order.append(name)

    async def other() -> None:
        order.append("ran")

    transactions = group.transactions
    await asyncio.gather(
        request("opening", at_once=True),
        other(),
        other(),
        request("closing", at_once=False),
        request("closing", at_once=False),
    )
    assert order == ["opening", "ran", "ran", "closing", "closing"]
    assert group.transactions == transactions + 2


async def test_one_opening_op_per_pass_goes_at_once(gateway):
    """SQLite: in one pass of the event loop only the first opening op is committed at once;
    the later ones share the next transaction with the other ops of that pass (under load a
    transaction per request only cost CPU; one per pass is enough to break the waves)."""
    group = gateway.rt.db.group
    order: list[str] = []

    async def noop(tx: Tx) -> None:
        return None

    async def request(name: str) -> None:
        await group.run(noop, at_once=True)
        order.append(name)

    async def other() -> None:
        order.append("ran")

    transactions = group.transactions
    await asyncio.gather(request("first"), other(), request("second"), request("third"))
    assert order == ["first", "ran", "second", "third"]
    assert group.transactions == transactions + 2  # the first alone, then the others together

    transactions = group.transactions
    await asyncio.gather(request("next pass"), request("later"))  # passes later: at once again
    assert group.transactions == transactions + 2


async def test_an_opening_op_goes_at_once_while_others_wait_for_the_next_pass(gateway):
    """SQLite: ops queued for the next shared transaction do not keep the pass's first opening
    op from committing at once (it used to wait for the writer to be idle, nothing queued:
    under load some other request's settlement nearly always was, and most holds then waited
    two passes for the shared transaction); they ride along in its transaction
    (`test_group_commit`), and their callers still resume after it."""
    group = gateway.rt.db.group
    order: list[str] = []

    async def noop(tx: Tx) -> None:
        return None

    async def request(name: str, *, at_once: bool) -> None:
        await group.run(noop, at_once=at_once)
        order.append(name)

    async def other() -> None:
        order.append("ran")

    transactions = group.transactions
    await asyncio.gather(
        request("closing", at_once=False), request("opening", at_once=True), other()
    )
    assert order == ["opening", "ran", "closing"]
    assert group.transactions == transactions + 1


async def _passes_from_commit_to_caller(group, at_once: bool) -> int:
    """How many passes of the event loop a queued op's caller waits between its op running (in
    the shared transaction, just before COMMIT) and its own next step."""
    passes = 0
    ran_at: list[int] = []

    async def ticker() -> None:  # one step per pass
        nonlocal passes
        while True:
            passes += 1
            await asyncio.sleep(0)

    async def op(tx: Tx) -> None:
        ran_at.append(passes)

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        await group.run(op, at_once=at_once)
        resumed_at = passes
    finally:
        ticking.cancel()
    return resumed_at - ran_at[0]


@pytest.mark.parametrize("at_once", [False, True], ids=["closing", "opening-while-busy"])
async def test_a_queued_op_resumes_its_caller_in_the_next_pass(gateway, at_once):
    """SQLite: once the shared transaction has committed, the callers of its ops run in the next
    pass of the event loop. (Their outcome used to reach them through `asyncio.shield`, whose
    relay is a callback of its own: one more pass, and under load every pass first runs the
    other requests' ready work. Two group commits per request: two passes per request.)"""
    group = gateway.rt.db.group
    if at_once:
        async with group.turn():  # the writer is busy: the opening op queues
            waiting = asyncio.create_task(_passes_from_commit_to_caller(group, at_once))
            await _queued(group, 1)
        assert await waiting <= 1
    else:
        assert await _passes_from_commit_to_caller(group, at_once) <= 1


async def test_reserves_queued_together_never_overdraw(db_gateway):
    gateway = db_gateway
    account, _ = await gateway.account(credits=10 * PRICE)
    rt = gateway.rt

    async def hold(tx: Tx) -> str | None:
        return await credit_rows.reserve(
            tx, account, PRICE, purpose="image", request_id="r", expires_at=None, now=1.0
        )

    holds = await asyncio.gather(*(rt.db.grouped(hold, account=account) for _ in range(50)))
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
        rt.db.grouped(grant, account=account),
        rt.db.grouped(insert, account=account),
        rt.db.grouped(insert, account=account),  # the same primary key: this one must fail, alone
        rt.db.grouped(grant, account=account),
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
        outcome.append(await rt.db.grouped(hold, account=account))
        await asyncio.sleep(10)

    async with rt.db.group.turn():  # the writer is busy: the op queues
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
            await rt.db.grouped(_fail, account=None)
        except _OpFailed:
            reached.append("failed")  # the outcome is handed over...
        await asyncio.sleep(10)  # ...and the cancellation lands at the next await
        reached.append("not cancelled")

    async with rt.db.group.turn():  # the writer is busy: the op queues
        task = asyncio.create_task(request())
        await asyncio.sleep(0)  # queued, not yet run
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert reached == ["failed"]


@pytest.mark.parametrize("op", ["succeeds", "fails"])
async def test_a_request_in_a_cancelled_anyio_scope_learns_its_outcome(gateway, op):
    """An anyio cancel scope cancelled while the op is queued: the caller still gets the op's
    outcome, the cancellation lands at its next await and the scope takes it as its own. The
    wait in between is quiet (anyio delivers its cancellation on every pass of the loop until
    the task is shielded from it: a wait that took it each time would spin)."""
    account, _ = await gateway.account(credits=100)
    rt = gateway.rt
    outcome: list[object] = []
    scopes: list[anyio.CancelScope] = []

    async def hold(tx: Tx) -> str | None:
        return await credit_rows.reserve(
            tx, account, 30, purpose="image", request_id="r", expires_at=None, now=1.0
        )

    async def request() -> int:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            try:
                outcome.append(
                    await rt.db.grouped(hold if op == "succeeds" else _fail, account=account)
                )
            except _OpFailed:
                outcome.append("failed")
            await asyncio.sleep(10)
            outcome.append("not cancelled")
        assert scope.cancelled_caught
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    async with rt.db.group.turn():  # the writer is busy: the op queues
        task = asyncio.create_task(request())
        await _queued(rt.db.group, 1)
        scopes[0].cancel()
        spent = time.process_time()
        await asyncio.sleep(0.3)
        spent = time.process_time() - spent
    assert await asyncio.wait_for(task, 5) == 0
    assert spent < 0.15
    if op == "succeeds":
        assert len(outcome) == 1 and isinstance(outcome[0], str)  # the hold's id
        assert await ledger_matches(rt, account) == (70, 30)
    else:
        assert outcome == ["failed"]


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
                    await rt.db.grouped(hold if op == "succeeds" else _fail, account=account)
                except _OpFailed:
                    pass
                await asyncio.sleep(10)
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    async with rt.db.group.turn():  # the writer is busy: the op queues
        task = asyncio.create_task(request())
        await asyncio.sleep(0.05)
    assert await asyncio.wait_for(task, 5) == 0


def drop_during_commit(monkeypatch, group, *, nth: int, applied: bool = True) -> list[int]:
    """The connection drops during the `nth` COMMIT, after the database applied it (`applied`)
    or before; the caller cannot tell which. Returns the sizes of the transactions run."""
    real_transaction, real_commit = group._transaction, group._send_commit
    sizes: list[int] = []

    async def transaction(ops, *rest):
        sizes.append(len(ops))
        return await real_transaction(ops, *rest)

    async def send_commit(commit):
        if len(sizes) != nth:
            return await real_commit(commit)
        if applied:
            await real_commit(commit)
        raise ConnectionResetError("connection lost during COMMIT")

    monkeypatch.setattr(group, "_transaction", transaction)
    monkeypatch.setattr(group, "_send_commit", send_commit)
    return sizes


@pytest.mark.parametrize("batch", ["alone", "with another op"])
async def test_a_settlement_whose_commit_outcome_is_unknown(db_gateway, monkeypatch, batch):
    """The connection drops during the COMMIT of a request's settlement, which did commit: the
    usage row must still say what the ledger says (charged), not failed and free."""
    gateway = db_gateway
    account, key = await gateway.account(credits=1000)
    rt = gateway.rt
    sizes = drop_during_commit(monkeypatch, rt.db.group, nth=2)  # the settlement's
    if batch != "alone":
        real_put = rt.store.put

        async def noop(tx: Tx) -> None:
            return None

        async def put_then_queue_another(*args, **kwargs):
            size = await real_put(*args, **kwargs)
            # The writer busy for a moment (as while a checkpoint runs): the settlement queues,
            # and so does another op, to share its transaction.
            turn = rt.db.group.turn()
            await turn.acquire()
            asyncio.get_running_loop().call_later(0.05, turn.release)
            asyncio.get_running_loop().create_task(rt.db.grouped(noop, account=None))
            return size

        monkeypatch.setattr(rt.store, "put", put_then_queue_another)
    response = await gateway.client.post(
        "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "p"}, headers=auth(key)
    )
    assert sizes[1] == (1 if batch == "alone" else 2)
    charged = 1000 - (await ledger_matches(rt, account))[0]
    assert charged == 40
    async with rt.db.read() as session:
        usage = await session.get(UsageRecord, response.headers["x-request-id"])
    assert usage is not None
    assert (usage.status, usage.credit_cost) == ("succeeded", charged)
    assert response.status_code == 200  # it was delivered and paid for: the caller gets it


@pytest.mark.parametrize("applied", [True, False], ids=["committed", "not-committed"])
async def test_ops_whose_commit_outcome_is_unknown_take_effect_once(
    db_gateway, monkeypatch, applied
):
    """A batch of reserves whose COMMIT outcome is unknown: each reserve holds credit exactly
    once (it used to be run again, alone, after a COMMIT that had landed: held twice)."""
    gateway = db_gateway
    account, _ = await gateway.account(credits=10 * PRICE)
    rt = gateway.rt
    sizes = drop_during_commit(monkeypatch, rt.db.group, nth=1, applied=applied)

    async def hold(tx: Tx) -> str | None:
        return await credit_rows.reserve(
            tx, account, PRICE, purpose="image", request_id="r", expires_at=None, now=1.0
        )

    async with rt.db.group.turn():  # the writer is busy: the five queue, to share one
        tasks = [asyncio.create_task(rt.db.grouped(hold, account=account)) for _ in range(5)]
        await _queued(rt.db.group, 5)
    holds = await asyncio.gather(*tasks)
    assert sizes[0] == 5
    assert None not in holds and len(set(holds)) == 5
    assert await ledger_matches(rt, account) == (5 * PRICE, 5 * PRICE)
    async with rt.db.read() as session:
        held = (await session.execute(select(func.count()).select_from(CreditHold))).scalar()
    assert held == 5


async def _on_postgres(postgres_server, make_gateway):
    """A gateway on a fresh PostgreSQL database of its own, and an account with ten images'
    credit: (the database's name, the gateway's runtime, the account)."""
    name = f"t_{secrets.token_hex(6)}"
    await asyncio.to_thread(
        postgres_server.execute, f"CREATE DATABASE {name} TEMPLATE reapi_template"
    )
    gateway = await make_gateway(database_url=postgres_server.url(name))
    account, _ = await gateway.account(credits=10 * PRICE)
    return name, gateway.rt, account


@pytest.mark.postgres
async def test_a_lost_connection_before_commit_runs_the_ops_again_once(
    postgres_server, make_gateway, monkeypatch
):
    """PostgreSQL: the server ends the connection before the COMMIT reaches it. The outcome
    is unknown to the gateway; the commit marker says it did not land, so the ops run again
    (once)."""
    name, rt, account = await _on_postgres(postgres_server, make_gateway)
    group = rt.db.group
    real_transaction, real_commit = group._transaction, group._send_commit
    sizes: list[int] = []

    async def transaction(ops, *rest):
        sizes.append(len(ops))
        return await real_transaction(ops, *rest)

    async def killed_then_commit(commit):
        if len(sizes) == 1:
            await asyncio.to_thread(
                postgres_server.execute,
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
                " AND pid <> pg_backend_pid() AND state = 'idle in transaction'",
            )
        return await real_commit(commit)

    monkeypatch.setattr(group, "_transaction", transaction)
    monkeypatch.setattr(group, "_send_commit", killed_then_commit)

    async def hold(tx: Tx) -> str | None:
        return await credit_rows.reserve(
            tx, account, PRICE, purpose="image", request_id="r", expires_at=None, now=1.0
        )

    holds = await asyncio.gather(*(rt.db.grouped(hold, account=account) for _ in range(3)))
    assert sizes[0] == 3 and len(sizes) >= 2  # the batch, then each op again
    assert None not in holds and len(set(holds)) == 3
    assert await ledger_matches(rt, account) == (7 * PRICE, 3 * PRICE)


@pytest.mark.postgres
async def test_an_outcome_that_cannot_be_learned_runs_nothing_again(
    postgres_server, make_gateway, monkeypatch
):
    """The COMMIT's answer is lost and its marker cannot be read (another session holds the
    row past the wait): the ops fail with the error, and none runs again (their holds, which
    did commit, exist once)."""
    import asyncpg

    name, rt, account = await _on_postgres(postgres_server, make_gateway)
    group = rt.db.group
    monkeypatch.setattr("reapi_server.group_commit._PROBE_WAIT_MS", 200)
    blocker = await asyncpg.connect(
        host="127.0.0.1", port=postgres_server.port, user="reapi", database=name
    )
    holding = blocker.transaction()
    real_commit = group._send_commit
    here = asyncio.get_running_loop()

    async def hold_the_marker() -> None:
        await holding.start()
        await blocker.execute(
            "SELECT 1 FROM commit_markers WHERE owner = $1 FOR UPDATE", group._owner
        )

    async def commit_then_hold_the_marker(commit):
        await real_commit(commit)
        # The blocker's connection belongs to this loop; the COMMIT runs on the writer's.
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(hold_the_marker(), here))
        raise ConnectionResetError("connection lost during COMMIT")

    monkeypatch.setattr(group, "_send_commit", commit_then_hold_the_marker)

    async def hold(tx: Tx) -> str | None:
        return await credit_rows.reserve(
            tx, account, PRICE, purpose="image", request_id="r", expires_at=None, now=1.0
        )

    try:
        outcomes = await asyncio.gather(
            *(rt.db.grouped(hold, account=account) for _ in range(3)), return_exceptions=True
        )
    finally:
        await holding.rollback()
        await blocker.close()
    # As it came, in SQLAlchemy's OperationalError (how `Database` raises a driver's error that
    # means the database is unavailable).
    assert all(
        isinstance(o, OperationalError) and isinstance(o.orig, ConnectionResetError)
        for o in outcomes
    ), outcomes
    assert await ledger_matches(rt, account) == (7 * PRICE, 3 * PRICE)


@pytest.mark.postgres
async def test_a_postgres_batch_commits_while_the_gateway_loop_is_busy(
    postgres_server, make_gateway
):
    """PostgreSQL: a group commit's round trips do not wait for turns of the gateway's event
    loop (each statement used to: N + 3 turns per transaction under load). Here the loop is
    blocked outright once the batch is handed over, and the transaction still commits."""
    _, rt, account = await _on_postgres(postgres_server, make_gateway)
    group = rt.db.group

    async def hold(tx: Tx) -> str | None:
        return await credit_rows.reserve(
            tx, account, PRICE, purpose="image", request_id="r", expires_at=None, now=1.0
        )

    await rt.db.grouped(hold, account=account)  # the writer's connection is open
    committed = group.transactions
    tasks = [asyncio.create_task(rt.db.grouped(hold, account=account)) for _ in range(3)]
    await asyncio.sleep(0)  # the ops queue, the committer's runner starts
    await asyncio.sleep(0)  # it hands their batch over
    deadline = time.monotonic() + 10
    while group.transactions == committed and time.monotonic() < deadline:
        time.sleep(0.01)  # noqa: ASYNC251 (the point: the gateway's loop blocked)
    assert group.transactions == committed + 1
    holds = await asyncio.gather(*tasks)
    assert None not in holds and len(set(holds)) == 3
    assert await ledger_matches(rt, account) == (6 * PRICE, 4 * PRICE)


async def test_a_video_job_whose_commit_outcome_is_unknown_is_created_once(db_gateway, monkeypatch):
    """The job rows' COMMIT lands but its acknowledgement is lost: the create still answers
    200 with its one job (the rerun used to collide with the committed row: 500, and a job
    left submitting)."""
    gateway = db_gateway
    account, key = await gateway.account(credits=1000)
    drop_during_commit(monkeypatch, gateway.rt.db.group, nth=1)  # the job rows'
    created = await create(gateway, key)
    assert created.status_code == 200, created.text
    assert created.json()["status"] == "queued"
    async with gateway.rt.db.read() as session:
        jobs = (await session.execute(select(func.count()).select_from(VideoJob))).scalar()
    assert jobs == 1
    assert await ledger_matches(gateway.rt, account) == (960, 40)


async def test_commit_markers_of_processes_long_gone_are_swept(gateway):
    rt = gateway.rt
    await gateway.account()
    await rt.db.grouped(_noop, account=None)  # this process's marker
    async with rt.db.write() as session:
        session.add(CommitMarker(owner="gone", seq=7, updated_at=rt.now() - 2 * 86_400))
    await sweep_once(rt)
    async with rt.db.read() as session:
        owners = (await session.execute(select(CommitMarker.owner))).scalars().all()
    assert owners == [rt.db.group._owner]


async def _noop(tx: Tx) -> None:
    return None


_MARK_ALL = Statement(
    update(CommitMarker)
    .where(CommitMarker.owner.like("left-%"))
    .values(seq=CommitMarker.seq + 1)
    .returning(CommitMarker.owner)
)


@pytest.mark.parametrize("at_once", [True, False])
async def test_a_statement_read_in_part_does_not_keep_its_transaction_open(gateway, at_once):
    """An op may read one row of an UPDATE ... RETURNING that changes several (`Tx.first`):
    the statement is then still in progress, and SQLite refuses to COMMIT beside it. The
    transaction commits all the same, with every row changed."""
    rt = gateway.rt
    async with rt.db.write() as session:
        session.add_all(
            [CommitMarker(owner=o, seq=0, updated_at=0.0) for o in ("left-1", "left-2")]
        )

    async def op(tx: Tx) -> object:
        return await tx.first(_MARK_ALL, {})

    assert await rt.db.grouped(op, account=None, at_once=at_once) is not None
    async with rt.db.read() as session:
        seqs = (
            (
                await session.execute(
                    select(CommitMarker.seq).where(CommitMarker.owner.in_(["left-1", "left-2"]))
                )
            )
            .scalars()
            .all()
        )
    assert seqs == [1, 1]
    assert await rt.db.grouped(_noop, account=None) is None  # the writer is free again


async def test_the_committers_transactions_share_one_cursor(gateway, monkeypatch):
    """A cursor per transaction cost ~5,000 instructions (made, registered with its connection,
    freed): the committer's own connection keeps one for all its transactions."""
    group = gateway.rt.db.group
    made: list[int] = []

    class Counting(sqlite3.Connection):
        def cursor(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
            made.append(1)
            return super().cursor(*args, **kwargs)

    path = group._wal.database

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(path, isolation_level=None, factory=Counting)
        db_module._configure(connection, writer=True)
        made.clear()  # its settings' statements: counted from here on
        return connection

    group.close()
    monkeypatch.setattr(group, "_connect", connect)
    before = group.transactions
    for at_once in (True, False, True, False):
        assert await gateway.rt.db.grouped(_noop, account=None, at_once=at_once) is None
        await asyncio.sleep(0)  # the next pass: the next opening op may go at once
    assert group.transactions - before == 4
    assert made == [1]


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


def test_a_usage_row_names_every_column():
    """The hot path's usage row (a plain object) carries exactly the table's columns, in order:
    a column added to the table cannot be left out of the INSERT."""
    import dataclasses

    from reapi_server.usage.row import UsageRow

    columns = [column.key for column in UsageRecord.__table__.columns]
    assert [field.name for field in dataclasses.fields(UsageRow)] == columns
