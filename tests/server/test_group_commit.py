"""Group commit on a SQLite file: the ops queued for the next shared transaction ride along with
an op committed at once (`GroupCommitter._lead`), and go back to the queue when that
transaction does not commit; a closing op among many open requests waits a little for company
(`_DEFER`, `_SIBLINGS`)."""

import asyncio
import shutil
import sqlite3
import time

import pytest
from sqlalchemy import text

from reapi_server import group_commit
from reapi_server.db import Database
from reapi_server.group_commit import Statement, Tx


class _OpFailed(Exception):
    pass


async def _noop(tx: Tx) -> None:
    return None


async def _fail(tx: Tx) -> None:
    raise _OpFailed


async def test_queued_ops_ride_along_with_an_op_committed_at_once(gateway):
    """The closing ops queued before an opening op in the same pass commit in its transaction:
    one transaction instead of two (under load a transaction costs more than its ops), and the
    opening op still goes first."""
    group = gateway.rt.db.group
    order: list[str] = []
    sizes: dict[str, int] = {}

    async def request(name: str, *, at_once: bool) -> None:
        _, sizes[name] = await group.run_sized(_noop, at_once=at_once)
        order.append(name)

    async def other() -> None:
        order.append("ran")

    transactions, ops = group.transactions, group.ops
    await asyncio.gather(
        request("closing 1", at_once=False),
        request("closing 2", at_once=False),
        request("opening", at_once=True),
        other(),
    )
    assert order == ["opening", "ran", "closing 1", "closing 2"]
    assert (group.transactions - transactions, group.ops - ops) == (1, 3)
    assert sizes == {"closing 1": 3, "closing 2": 3, "opening": 3}
    assert not group._queue
    await asyncio.sleep(0.01)
    assert group._runner is None  # the runner found nothing left to commit


async def test_carried_ops_whose_transaction_fails_are_run_again_apart(gateway):
    """A carried op that fails takes nobody's work with it: the opening op commits alone, and
    the carried ops go back to the queue, where the runner commits them (the failing one
    alone, as in any batch)."""
    group = gateway.rt.db.group
    transactions = group.transactions
    results = await asyncio.gather(
        group.run_sized(_fail),
        group.run_sized(_noop),
        group.run_sized(_noop, at_once=True),
        return_exceptions=True,
    )
    assert isinstance(results[0], _OpFailed)
    assert results[1:] == [(None, 1), (None, 1)]
    # Committed: the opening op alone, then (its two-op batch rolled back) the carried op
    # that succeeds.
    assert group.transactions - transactions == 2


@pytest.mark.parametrize("cancelled", [False, True], ids=["waits", "cancelled"])
async def test_carried_ops_outlive_an_opening_op_cancelled_before_it_began(
    tmp_path, migrated_template, cancelled
):
    """An opening op that carries queued ops waits for a foreign writer's SQLite lock (before
    its transaction began, the one place it suspends): cancelled there, it writes nothing and
    the ops it carried go back to the queue and commit once the lock is free; not cancelled,
    all commit together."""
    path = tmp_path / "x.db"
    shutil.copy(migrated_template, path)
    db = Database(f"sqlite+aiosqlite:///{path}")
    async with db.write() as session:
        await session.execute(text("CREATE TABLE t (v TEXT)"))

    def insert(value: str):
        statement = Statement(text(f"INSERT INTO t VALUES ('{value}')"))

        async def op(tx: Tx) -> int:
            return await tx.execute(statement, {})

        return op

    try:
        foreign = sqlite3.connect(path, isolation_level=None)
        foreign.execute("BEGIN IMMEDIATE")
        closing = asyncio.ensure_future(db.grouped(insert("closing"), account=None))
        opening = asyncio.ensure_future(db.grouped(insert("opening"), account=None, at_once=True))
        await asyncio.sleep(0.2)
        assert not closing.done() and not opening.done()
        assert not db.group._queue  # the opening op carries the closing one
        if cancelled:
            opening.cancel()
            await asyncio.sleep(0.05)
            assert opening.done() and not closing.done()  # back with the runner, waiting
        foreign.execute("COMMIT")
        foreign.close()
        assert await asyncio.wait_for(closing, 5) == 1
        if cancelled:
            with pytest.raises(asyncio.CancelledError):
                await opening
        else:
            assert await asyncio.wait_for(opening, 5) == 1
        async with db.read() as session:
            rows = (await session.execute(text("SELECT v FROM t ORDER BY v"))).scalars().all()
        assert rows == (["closing"] if cancelled else ["closing", "opening"])
    finally:
        await db.dispose()


# -- a closing op among many open requests waits a little for company --------------------------


async def _passes(task: asyncio.Future, most: int) -> int:
    """Passes of the event loop until `task` is done (at most `most`)."""
    for passes in range(most):
        if task.done():
            return passes
        await asyncio.sleep(0)
    return most


async def test_a_closing_op_with_few_siblings_does_not_wait(gateway, monkeypatch):
    """Below `_SIBLINGS` other open requests (one connection: none), a closing op's transaction
    starts in the next pass, as before."""
    monkeypatch.setattr(group_commit, "_DEFER", 5.0)
    group = gateway.rt.db.group
    closing = asyncio.ensure_future(group.run(_noop, siblings=group_commit._SIBLINGS - 1))
    assert await _passes(closing, 50) < 50


async def test_a_closing_op_with_no_other_request_open_commits_at_once(gateway):
    """A closing op whose caller counted no other open request (one connection) commits in its
    own task, as an opening op does, with no runner task; and it leaves the pass's at-once slot
    to an opening op."""
    group = gateway.rt.db.group
    transactions = group.transactions
    closing = asyncio.ensure_future(group.run_sized(_noop, siblings=0))
    await asyncio.sleep(0)  # one pass: its own task has run
    assert closing.done() and closing.result() == (None, 1)
    assert group.transactions == transactions + 1
    assert group._runner is None
    opening = asyncio.ensure_future(group.run_sized(_noop, at_once=True))
    await asyncio.sleep(0)
    assert opening.done()  # at once still: the closing op took no slot


async def test_one_connection_asks_the_wal_once_per_request(gateway, monkeypatch):
    """A hold and a settlement each committed at once: the WAL is asked before the hold (for
    the two transactions since the last ask), not again before the settlement."""
    group = gateway.rt.db.group
    asked = []
    due = group._wal.due
    monkeypatch.setattr(group._wal, "due", lambda: asked.append(1) or due())
    for _ in range(3):
        await group.run(_noop, at_once=True)  # the hold
        await asyncio.sleep(0)  # the upstream call: the pass ends
        await group.run(_noop, siblings=0)  # the settlement
        await asyncio.sleep(0)
    assert len(asked) == 3


async def test_a_closing_op_not_counted_is_queued(gateway):
    """Without a count (`siblings=None`: a release, a refusal's row) an op queues for the next
    shared transaction, as before."""
    group = gateway.rt.db.group
    closing = asyncio.ensure_future(group.run(_noop))
    await asyncio.sleep(0)
    assert not closing.done() and group._runner is not None
    await asyncio.wait_for(closing, 1)


async def test_a_closing_op_among_many_open_requests_waits_for_company(gateway, monkeypatch):
    """With `_SIBLINGS` or more other requests open, a closing op's transaction waits up to
    `_DEFER`; an opening op committed at once meanwhile carries it (one transaction)."""
    monkeypatch.setattr(group_commit, "_DEFER", 5.0)
    group = gateway.rt.db.group
    transactions = group.transactions
    closing = asyncio.ensure_future(group.run_sized(_noop, siblings=group_commit._SIBLINGS))
    assert await _passes(closing, 50) == 50  # waiting
    assert group.transactions == transactions
    assert await group.run_sized(_noop, at_once=True) == (None, 2)
    assert await asyncio.wait_for(closing, 1) == (None, 2)
    assert group.transactions == transactions + 1


async def test_the_wait_for_company_is_bounded(gateway, monkeypatch):
    monkeypatch.setattr(group_commit, "_DEFER", 0.05)
    group = gateway.rt.db.group
    started = time.monotonic()
    await asyncio.wait_for(group.run(_noop, siblings=group_commit._SIBLINGS), 2)
    assert 0.04 <= time.monotonic() - started < 1.5


async def test_an_opening_op_queued_meanwhile_ends_the_wait(gateway, monkeypatch):
    """An opening op that cannot go at once (the writer is busy) queues behind the waiting
    closing op: the upstream call waits for it, so the transaction starts without waiting."""
    monkeypatch.setattr(group_commit, "_DEFER", 5.0)
    group = gateway.rt.db.group
    closing = asyncio.ensure_future(group.run(_noop, siblings=group_commit._SIBLINGS))
    await asyncio.sleep(0)
    async with group.turn():  # the writer is busy: the opening op queues
        opening = asyncio.ensure_future(group.run(_noop, at_once=True))
        await asyncio.sleep(0)
        assert len(group._queue) == 2
    await asyncio.wait_for(asyncio.gather(closing, opening), 1)


async def test_a_closing_op_waits_for_company_only_on_a_sqlite_file(db_gateway, monkeypatch):
    """PostgreSQL's committer (its transactions are round trips on a thread of their own) was
    not measured with the wait: there a closing op's transaction starts as before."""
    if not db_gateway.rt.db.is_postgres:
        pytest.skip("on a SQLite file the closing op waits: the tests above")
    monkeypatch.setattr(group_commit, "_DEFER", 5.0)
    group = db_gateway.rt.db.group
    await asyncio.wait_for(group.run(_noop, siblings=group_commit._SIBLINGS), 2)
