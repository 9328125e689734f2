"""The writer's turn across processes on one SQLite file (`writer_turn`): a writer waits for
another process's turn on the kernel's lock, woken when it ends, instead of retrying
`BEGIN IMMEDIATE` in growing sleeps; a wait has a bound; a holder that dies frees the turn."""

import asyncio
import fcntl
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from sqlalchemy import text

from reapi_server.db import Database
from reapi_server.db_errors import is_sqlite_busy
from reapi_server.group_commit import Statement, Tx
from reapi_server.writer_turn import WriterTurn

_INSERT = Statement(text("INSERT INTO t VALUES (2)"))

#: Another gateway process: takes the turn, writes, says so, holds it until the test lets it go
#: (`_let_go`), at most `hold` seconds. Timed by its own clock, a hold ended early by the
#: test's whenever a busy machine was slow to wake the test after "held".
_HOLDER = """
import asyncio, select, sqlite3, sys
from reapi_server.writer_turn import WriterTurn

async def main(path, hold):
    async with WriterTurn(path):
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO t VALUES (1)")
        print("held", flush=True)
        select.select([sys.stdin], [], [], hold)
        connection.execute("COMMIT")
    print("released", flush=True)
    await asyncio.sleep(30)  # alive, turn released, until stopped

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


def _holder(path: Path, hold: float = 30.0) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), str(hold)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


def _let_go(holder: subprocess.Popen[str]) -> None:
    """The holder commits and releases the turn now; returns once it has."""
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "released"


async def _database(tmp_path: Path, migrated_template: Path) -> tuple[Database, Path]:
    path = tmp_path / "reapi.db"
    shutil.copy(migrated_template, path)
    db = Database(f"sqlite+aiosqlite:///{path}")
    async with db.write() as session:
        await session.execute(text("CREATE TABLE t (v INTEGER)"))
    return db, path


async def test_a_group_commit_waits_for_another_process_turn_without_polling(
    tmp_path, migrated_template
):
    db, path = await _database(tmp_path, migrated_template)
    begins: list[str] = []
    db.group._own_connection().set_trace_callback(
        lambda sql: begins.append(sql) if sql.startswith("BEGIN") else None
    )
    ticks = 0
    twenty_ticks = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1
            if ticks == 20:
                twenty_ticks.set()

    async def insert(tx: Tx) -> None:
        await tx.execute(_INSERT, {})

    async def let_go_later() -> None:
        # Once 0.3 s have passed and the event loop ran meanwhile (20 ticks): while the wait
        # blocked the loop, this task could not run, and the holder would let go after its
        # 10 s alone, with the ticks short.
        await asyncio.sleep(0.3)
        await twenty_ticks.wait()
        await asyncio.to_thread(_let_go, holder)

    holder = _holder(path, 10)
    try:
        tick_task = asyncio.create_task(ticker())
        started = time.perf_counter()
        letting_go = asyncio.create_task(let_go_later())
        await db.grouped(insert, account=None)
        waited = time.perf_counter() - started
        tick_task.cancel()
        await asyncio.wait_for(letting_go, 10)
    finally:
        holder.terminate()
        holder.wait(10)
    assert waited >= 0.3  # it did wait for the other process's transaction
    # One BEGIN IMMEDIATE, once the turn was free: none failed against the other's lock
    # (retrying in sleeps of 1, 2, 4 ... 50 ms took eleven over 0.4 s).
    assert begins == ["BEGIN IMMEDIATE"]
    assert db.group.turn().waits == 1
    assert ticks >= 20  # the event loop went on meanwhile
    async with db.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 2
    await db.dispose()


async def test_a_wait_past_the_timeout_leaves_sqlite_lock_to_decide_and_leaks_no_lock(tmp_path):
    path = tmp_path / "x.db"
    sqlite3.connect(path).executescript("CREATE TABLE t (v INTEGER)")
    holder = _holder(path)
    try:
        turn = WriterTurn(str(path), timeout=0.2)
        started = time.perf_counter()
        async with turn:
            # Past the timeout without the file lock: SQLite's lock, still the other's, decides
            # (the writer retries it for its own busy timeout, then fails as busy). The holder
            # holds for 30 s: a wait that ends well before is the timeout's doing.
            assert 0.15 <= time.perf_counter() - started < 5
            with pytest.raises(sqlite3.OperationalError) as raised:
                sqlite3.connect(path, timeout=0).execute("BEGIN IMMEDIATE")
            assert is_sqlite_busy(raised.value)
        assert turn.waits == 0
        assert not turn.locked()
        _let_go(holder)
        # The given-up wait's thread took the lock when the holder let go, and let it go.
        deadline = time.monotonic() + 5
        while True:
            taken = WriterTurn(str(path), timeout=0.05)
            async with taken:
                if taken.waits == 0 and taken._held is not None:
                    break
            assert time.monotonic() < deadline, "a given-up wait kept the lock"
            await asyncio.sleep(0.05)
    finally:
        holder.terminate()
        holder.wait(10)


async def test_a_holder_that_dies_frees_the_turn(tmp_path):
    path = tmp_path / "x.db"
    sqlite3.connect(path).executescript("CREATE TABLE t (v INTEGER)")
    holder = _holder(path, 60)
    turn = WriterTurn(str(path), timeout=10)

    async def take() -> float:
        async with turn:
            return time.perf_counter()

    waiting = asyncio.create_task(take())
    await asyncio.sleep(0.2)
    assert not waiting.done()
    os.kill(holder.pid, signal.SIGKILL)
    killed = time.perf_counter()
    holder.wait(10)
    assert await waiting - killed < 2


def test_a_forked_child_takes_the_turn_on_a_descriptor_of_its_own(tmp_path):
    """The lock file's descriptor opened before a fork is the parent's open file: the child
    taking its lock on it would share the parent's turn instead of waiting for it."""
    turn = WriterTurn(str(tmp_path / "db.sqlite"))
    asyncio.run(turn.acquire())  # the parent holds the turn (its descriptor opened)
    try:
        child = os.fork()
        if child == 0:  # the child: the turn must be busy for it
            try:
                fcntl.flock(turn._descriptor(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os._exit(0)
            finally:
                os._exit(1)
        _, status = os.waitpid(child, 0)
    finally:
        turn.release()
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("cancel", ["task", "anyio scope"])
async def test_an_opening_op_cancelled_while_another_process_has_the_turn_runs_not(
    tmp_path, migrated_template, cancel
):
    """An opening op (`at_once`) finding the writer idle runs in its caller's task, unshielded
    (`GroupCommitter._lead`). Cancelled while it waits for another process's turn, before its
    transaction began, the caller gets the cancellation and the op never runs (with anyio's
    shield, as before, it ran once the turn came and its caller learned nothing of it); the
    turn is left free for the next writer."""
    db, path = await _database(tmp_path, migrated_template)
    ran: list[str] = []
    scopes: list[anyio.CancelScope] = []

    async def insert(tx: Tx) -> None:
        ran.append("ran")
        await tx.execute(_INSERT, {})

    async def request() -> bool:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            await db.grouped(insert, account=None, at_once=True)
        return scope.cancelled_caught

    holder = _holder(path)
    try:
        task = asyncio.create_task(request())
        await asyncio.sleep(0.1)  # waiting for the other process's turn
        assert not task.done()
        if cancel == "task":
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            scopes[0].cancel()
            assert await asyncio.wait_for(task, 5)
        _let_go(holder)
    finally:
        holder.terminate()
        holder.wait(10)
    await asyncio.sleep(0.1)  # the holder's release reached the abandoned wait's thread
    assert ran == []
    assert not db.group.turn().locked()
    await db.grouped(insert, account=None, at_once=True)
    async with db.read() as session:  # the other process's row and the last op's
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 2
    await db.dispose()
