"""Group commit: the hot path's writes from concurrent requests share one transaction.

Each request hands its unit of work (an *op*: an async function of a `Tx`) to the
`GroupCommitter` and waits for its result. The committer runs every op queued by then, one after
the other, in one transaction on the driver's own connection, and commits once. Ops run in turn,
so a later op sees what an earlier one wrote: the credit reserve stays one conditional UPDATE per
request, and concurrent reserves still cannot overdraw. If any op raises, the whole transaction
is rolled back and each op is run again in a transaction of its own, so one failing request never
takes another's work with it (ops are deterministic: their ids are made before they are queued).

Ops queued during one pass of the event loop share a transaction at the start of the next pass.
An op that opens a request (its credit hold, which the upstream call waits for) is instead
committed at once, in its caller's task, on a SQLite file (a SQLite transaction never leaves the
loop), when the writer's turn is free and no other opening op went at once in this pass
(`at_once`, `_idle`); ops already queued for the next pass's transaction do not count (waiting
until none was, as this did before the sixth round of issue 15, held back most holds under
load: some other request's settlement nearly always was queued). Holding the opening ops back
until the next pass, as this did before, released the requests of one pass together: they
called the upstream together, came back together and were processed one after the other while
the core otherwise idled. With a 50 ms upstream at 32
connections the gateway ran in such waves at 58% of the upstream's own throughput (issue 15).
One opening op per pass is enough to break them: requests that the loop handles one after the
other then leave for the upstream one after the other. The later opening ops of a busy pass join
the batch, because a transaction per op costs two to three times the CPU of its ops (under load
a transaction per request cost about a third more CPU per request than sharing one).
Skipping every at-once commit while batches keep coming, as tried, brought the waves back
(the model: 76% of direct instead of 94%). Ops that come while the writer is busy (a
`Database.write` session holds it, a checkpoint runs, another process holds SQLite's lock, or on
PostgreSQL a transaction is on the wire) queue and share the next transaction.
`bench/lockstep_model.py` compares these rules.

A transaction costs more than its ops, so the opening op committed at once also carries the ops
queued by then in its transaction (`_lead`), and on a SQLite file a closing op (a settlement: its
caller's answer waits for it, no upstream call does) waits a little for company when enough other
requests are open, as PostgreSQL's commit_delay gated by commit_siblings: its transaction starts
`_DEFER` later instead of in the next pass when the caller counts `_SIBLINGS` or more other
requests between their opening and closing ops (`siblings`: the image requests' live holds), and at
once when an opening op queues meanwhile; an opening op committed at once meanwhile carries it.
With one connection nothing else is open and nothing waits: a closing op whose caller counted
no other open request is committed at once too, when the writer is idle, without taking the
pass's at-once slot (no runner task, no hand-over, one resumption of the request less: ~1% of
its instructions, twelfth round). With a 50 ± 25 ms upstream at 32
connections requests come back spread out and each transaction carried few ops: 1.0 transactions
per request, 0.7 with the wait (tenth round of issue 15, docs/benchmarks.md).

An op must never take effect twice, so nothing is run again unless its transaction certainly did
not commit. A COMMIT whose answer is lost (the connection dropped during it) may have landed:
every transaction also writes its number into this committer's row of `commit_markers`, and that
row decides — read with FOR UPDATE on PostgreSQL, which waits for a COMMIT still in flight. Landed:
the ops' results stand. Did not land: the ops run again. Cannot be read: every op fails with the
error (its caller finds out from its own rows, as a request does), and none runs again.

Statements are SQLAlchemy Core, compiled once per dialect and run on the raw driver connection:
`sqlite3` inline on the event loop (no await inside a SQLite transaction, so it holds the write
lock for microseconds), asyncpg on PostgreSQL (a batch pays one BEGIN/COMMIT round trip and holds
the hot account row's lock once, instead of once per request).

On a SQLite file the committer keeps a `sqlite3` connection of its own (`connect`) instead of
checking the writer engine's out of its pool for every transaction: that checkout and return
(SQLAlchemy's connection, its pool, a greenlet each way) cost more CPU than the transaction
itself. The writer engine's sessions (`Database.write`) and the committer's transactions take
turns on one lock (`turn`), as they took turns on that pool's single connection before.
On PostgreSQL the committer likewise keeps one connection checked out of the writer pool between
transactions: a checkout, the pool's ping and the return cost about a quarter of a millisecond of
CPU per transaction. A kept connection that died meanwhile (a server restart) fails before
COMMIT, so the transaction runs again, once, on a new one (`_postgres_transaction`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import operator
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, cast, overload

import anyio
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.sql import Executable, Select
from sqlalchemy.sql.compiler import SQLCompiler

from .db_errors import is_sqlite_busy, is_unavailable
from .kept_outcome import KeptOutcome
from .models import CommitMarker
from .pg_pipeline import Sequential, inline_sql, run_pipelined
from .wal_bound import WalBound
from .writer_loop import WriterLoop
from .writer_turn import WriterTurn

__all__ = ["GroupCommitter", "SessionTx", "Statement", "Tx", "as_tx", "forget_idle_markers"]

log = logging.getLogger("reapi_server.db")

T = TypeVar("T")
Row = Sequence[Any]
Params = Mapping[str, Any]

#: Ops per transaction at most; the rest wait for the next one.
_MAX_BATCH = 256
_BUSY_TIMEOUT = 30.0
#: How long a closing op's transaction waits for company (seconds), and how many other
#: requests must be open for it to wait at all (PostgreSQL's commit_delay and commit_siblings).
_DEFER = 0.0005
_SIBLINGS = 4
#: How long a commit marker is waited for when a COMMIT's outcome is unknown (PostgreSQL).
_PROBE_WAIT_MS = 10_000


class Statement:
    """A Core statement, compiled once per dialect into SQL and the order of its parameters.

    `column_keys` names the columns an INSERT without explicit values writes (its parameters
    are then named after the columns)."""

    __slots__ = ("_bound", "_compiled", "clause", "column_keys")

    def __init__(self, clause: Executable, *, column_keys: Sequence[str] | None = None) -> None:
        self.clause = clause
        self.column_keys = tuple(column_keys) if column_keys is not None else None
        self._compiled: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {}
        #: Per dialect: (SQL, what picks the parameters' values in order, the literals).
        self._bound: dict[str, tuple[str, Callable[[Params], tuple[Any, ...]], dict[str, Any]]] = {}

    def compiled(self, dialect: Dialect) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        """(SQL, parameter names in order, values of the statement's own literals)."""
        cached = self._compiled.get(dialect.name)
        if cached is None:
            kwargs: dict[str, Any] = {"dialect": dialect}
            if self.column_keys is not None:
                kwargs["column_keys"] = list(self.column_keys)
            compiled = self.clause.compile(**kwargs)  # type: ignore[attr-defined]
            assert isinstance(compiled, SQLCompiler)
            names = tuple(compiled.positiontup or ())
            literals = {
                name: bind.effective_value
                for name, bind in compiled.binds.items()
                if not bind.required
            }
            cached = self._compiled[dialect.name] = (str(compiled), names, literals)
        return cached

    def values(self, dialect: Dialect, params: Params) -> tuple[str, tuple[Any, ...]]:
        """The SQL and its parameters' values in order (`params` first, then the literals).
        Run for every statement of every request: one C-level `itemgetter` call."""
        bound = self._bound.get(dialect.name)
        if bound is None:
            sql, names, literals = self.compiled(dialect)
            bound = self._bound[dialect.name] = (sql, _picker(names), literals)
        sql, pick, literals = bound
        return sql, pick({**literals, **params} if literals else params)


def _picker(names: Sequence[str]) -> Callable[[Params], tuple[Any, ...]]:
    """The values of `names` in a mapping, as a tuple (`itemgetter` answers a bare value for
    one name)."""
    if len(names) > 1:
        return operator.itemgetter(*names)
    if names:
        (name,) = names
        return lambda params: (params[name],)
    return lambda params: ()


class Tx(Protocol):
    """One open transaction. `execute` returns the number of rows changed."""

    @property
    def dialect_name(self) -> str:
        """ "sqlite" or "postgresql": for the few statements written once per database."""
        ...

    async def execute(self, statement: Statement, params: Params) -> int: ...

    async def execute_many(self, statement: Statement, rows: Sequence[Params]) -> None: ...

    async def first(self, statement: Statement, params: Params) -> Row | None: ...

    async def all(self, statement: Statement, params: Params) -> list[Row]: ...


class SessionTx:
    """A `Tx` over an ORM session's transaction (the administrative and background paths)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    @property
    def dialect_name(self) -> str:
        return self._session.get_bind().dialect.name

    async def _connection(self) -> AsyncConnection:
        return await self._session.connection()

    async def execute(self, statement: Statement, params: Params) -> int:
        result = await (await self._connection()).execute(statement.clause, dict(params))
        return int(result.rowcount)

    async def execute_many(self, statement: Statement, rows: Sequence[Params]) -> None:
        if rows:
            await (await self._connection()).execute(statement.clause, [dict(r) for r in rows])

    async def first(self, statement: Statement, params: Params) -> Row | None:
        result = await (await self._connection()).execute(statement.clause, dict(params))
        row = result.first()
        return None if row is None else tuple(row)

    async def all(self, statement: Statement, params: Params) -> list[Row]:
        result = await (await self._connection()).execute(statement.clause, dict(params))
        return [tuple(row) for row in result]


def as_tx(target: Tx | AsyncSession) -> Tx:
    return SessionTx(target) if isinstance(target, AsyncSession) else target


class _SqliteTx:
    """A transaction's statements on one `sqlite3` cursor: `Connection.execute` makes a cursor
    per statement, about a microsecond each (a request runs ~15 statements). The transaction's
    BEGIN, COMMIT and ROLLBACK go through the same cursor (`statement`): a cursor resets its last
    statement before the next, and SQLite refuses to COMMIT while a write statement is still in
    progress (an UPDATE ... RETURNING whose rows `first` did not all read). The committer's own
    connection keeps one for all its transactions: a cursor made and freed per transaction
    cost ~5,000 instructions (two transactions a request at one connection)."""

    dialect_name = "sqlite"

    def __init__(self, connection: sqlite3.Connection, dialect: Dialect) -> None:
        self.connection = connection
        self._cursor = connection.cursor()
        self._dialect = dialect

    def statement(self, sql: str) -> None:
        """A statement of the transaction's own (BEGIN, COMMIT, ROLLBACK)."""
        self._cursor.execute(sql)

    async def commit(self) -> None:
        self._cursor.execute("COMMIT")

    async def rollback(self) -> bool:
        """True when the transaction was still open and is now rolled back."""
        if not self.connection.in_transaction:
            return False
        self._cursor.execute("ROLLBACK")
        return True

    async def execute(self, statement: Statement, params: Params) -> int:
        sql, values = statement.values(self._dialect, params)
        return self._cursor.execute(sql, values).rowcount

    async def execute_many(self, statement: Statement, rows: Sequence[Params]) -> None:
        if rows:
            sql, _ = statement.values(self._dialect, rows[0])
            batch = [statement.values(self._dialect, row)[1] for row in rows]
            self._cursor.executemany(sql, batch)

    async def first(self, statement: Statement, params: Params) -> Row | None:
        sql, values = statement.values(self._dialect, params)
        row: Row | None = self._cursor.execute(sql, values).fetchone()
        return row

    async def all(self, statement: Statement, params: Params) -> list[Row]:
        sql, values = statement.values(self._dialect, params)
        return list(self._cursor.execute(sql, values).fetchall())


class _AsyncpgTx:
    dialect_name = "postgresql"

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self._connection = connection  # asyncpg.Connection
        self._dialect = dialect

    async def execute(self, statement: Statement, params: Params) -> int:
        sql, values = statement.values(self._dialect, params)
        status: str = await self._connection.execute(sql, *values)
        count = status.rpartition(" ")[2]
        return int(count) if count.isdigit() else 0

    async def execute_many(self, statement: Statement, rows: Sequence[Params]) -> None:
        if rows:
            sql, _ = statement.values(self._dialect, rows[0])
            batch = [statement.values(self._dialect, row)[1] for row in rows]
            await self._connection.executemany(sql, batch)

    async def first(self, statement: Statement, params: Params) -> Row | None:
        sql, values = statement.values(self._dialect, params)
        row = await self._connection.fetchrow(sql, *values)
        return None if row is None else tuple(row)

    async def all(self, statement: Statement, params: Params) -> list[Row]:
        sql, values = statement.values(self._dialect, params)
        return [tuple(row) for row in await self._connection.fetch(sql, *values)]


#: An op and the account whose rows it touches.
_Op = tuple[Callable[[Tx], Awaitable[Any]], str | None]
#: (op, where its outcome goes, the account whose rows it touches)
_Item = tuple[Callable[[Tx], Awaitable[Any]], KeptOutcome, str | None]
#: An op's result (with its transaction's size), or the error it is to raise.
_Outcome = tuple[Any, BaseException | None]

_MARK = Statement(
    update(CommitMarker)
    .where(CommitMarker.owner == bindparam("b_owner"))
    .values(seq=bindparam("b_seq"), updated_at=bindparam("b_now"))
)
_NEW_MARK = Statement(insert(CommitMarker), column_keys=("owner", "seq", "updated_at"))


def _lock_and_mark(locking: Select[Any]) -> Statement:
    """PostgreSQL: a transaction's first statement locks its ops' accounts (`locking`, on the
    array parameter `b_ids`) and then writes its number into the marker row, in one round trip
    instead of two. Answers (accounts locked, marker rows written). The select list runs in
    order, so the accounts are locked before any other row, as `lock_order` requires (the
    marker row is this committer's alone). The marker is upserted: the statement is sent
    without waiting for its answer (`_begin_locked`), and the sweeper may have deleted an idle
    committer's row (`forget_idle_markers`)."""
    from sqlalchemy.dialects.postgresql import insert as upsert  # PostgreSQL's only

    new = upsert(CommitMarker).values(
        owner=bindparam("b_owner"), seq=bindparam("b_seq"), updated_at=bindparam("b_now")
    )
    mark = (
        new.on_conflict_do_update(
            index_elements=[CommitMarker.owner],
            set_={"seq": new.excluded.seq, "updated_at": new.excluded.updated_at},
        )
        .returning(CommitMarker.owner)
        .cte("mark")
    )
    return Statement(
        select(
            select(func.count()).select_from(locking.subquery("locked")).scalar_subquery(),
            select(func.count()).select_from(mark).scalar_subquery(),
        )
    )


#: FOR UPDATE (PostgreSQL; SQLite has no COMMIT in flight): waits for the transaction that
#: holds the row, so what it reads is final.
_READ_MARK = Statement(
    select(CommitMarker.seq).where(CommitMarker.owner == bindparam("b_owner")).with_for_update()
)


class _OutcomeUnknown(Exception):
    """The COMMIT was sent and no answer came back: it may or may not have landed."""

    def __init__(self, error: Exception, seq: int, results: list[Any]) -> None:
        super().__init__(type(error).__name__)
        self.error = error
        self.seq = seq
        #: What the ops returned: their results if the transaction landed.
        self.results = results


class GroupCommitter:
    """Runs queued ops in shared transactions on `engine` (the writer engine), one at a time."""

    def __init__(
        self,
        engine: AsyncEngine,
        locking: Select[Any] | None = None,
        wal: WalBound | None = None,
        connect: Callable[[], sqlite3.Connection] | None = None,
        turn: WriterTurn | None = None,
        writer_engine: Callable[[], AsyncEngine] | None = None,
    ) -> None:
        self._engine = engine
        #: On PostgreSQL: makes the engine of the committer's own connection, on the loop of a
        #: thread of its own (`writer_loop`), where its transactions run.
        self._make_writer_engine = writer_engine
        self._writer = WriterLoop() if writer_engine is not None else None
        self._writer_engine: AsyncEngine | None = None
        #: On PostgreSQL: locks the accounts of a transaction's ops, with its marker's write
        #: (`lock_order.LOCKING`: the first statement of every transaction).
        self._lock_and_mark = _lock_and_mark(locking) if locking is not None else None
        #: On SQLite: checkpointed between transactions once past its bound (`wal_bound`).
        self._wal = wal
        #: On a SQLite file: opens the committer's own connection (made on first use).
        self._connect = connect
        self._own: sqlite3.Connection | None = None
        #: Its transactions' statements' cursor (`_SqliteTx`), made with it.
        self._own_tx: _SqliteTx | None = None
        #: On PostgreSQL: the writer pool's connection the committer keeps between transactions.
        self._held: AsyncConnection | None = None
        self._held_asyncpg: Any = None
        #: Whether an opening op was committed at once in this pass of the event loop.
        self._led = False
        #: While the runner waits for company (`_DEFER`): what wakes it early.
        self._deferred: asyncio.Future[None] | None = None
        #: `transactions` when the last checkpoint that completed began.
        self._checkpointed_after = -1
        #: `transactions` when `_wal_due` last asked the WAL, and its answer.
        self._wal_asked = -1
        self._wal_was_due = False
        #: Held by a transaction, by a checkpoint (which must come between two of them) and,
        #: on SQLite, by a session of the writer engine (`turn`); on a SQLite file, across
        #: the processes that write it (`writer_turn`).
        self._turn = turn if turn is not None else WriterTurn(None)
        self._dialect = engine.dialect
        self._sqlite = engine.dialect.name == "sqlite"
        self._queue: list[_Item] = []
        self._runner: asyncio.Task[None] | None = None
        #: This committer's row in `commit_markers`, and the number of its last transaction.
        self._owner = secrets.token_hex(16)
        self._seq = 0
        #: Transactions committed and ops run (for tests and metrics).
        self.transactions = 0
        self.ops = 0

    async def run(
        self,
        op: Callable[[Tx], Awaitable[T]],
        account: str | None = None,
        at_once: bool = False,
        siblings: int | None = None,
    ) -> T:
        """Run `op` in the next shared transaction and return its result once committed.
        `account`: the account whose rows the op touches (locked first: see `lock_order`).
        `at_once`: committed now if the writer's turn is free (an op that opens a request; see
        `_idle`). `siblings`: how many other requests are open (between their opening and
        closing ops) as the caller counted them (None: not counted); from `_SIBLINGS` on, a
        closing op's transaction waits up to `_DEFER` for company (on a SQLite file), and at 0
        it is committed now as an opening op is, if the writer is idle (`_lead`): nobody is
        there to share its transaction, and it does not take the pass's at-once slot.

        Shielded like `Database.write`: a request cancelled while its op is queued still learns
        the outcome (say, whether its credit hold exists); the cancellation lands afterwards."""
        result, _ = await self.run_sized(op, account, at_once, siblings)
        return result

    async def run_sized(
        self,
        op: Callable[[Tx], Awaitable[T]],
        account: str | None = None,
        at_once: bool = False,
        siblings: int | None = None,
    ) -> tuple[T, int]:
        """`run`, and how many ops the transaction that committed this one carried (1 when it
        ran alone after its batch failed, or at once): what a trace says of the group commit."""
        # A closing op with no other request open (one connection) goes at once too: no runner
        # task, no hand-over, no resumption of the request through its coroutines for the
        # outcome. It does not ask the WAL (a read of its index each time): the next opening
        # op asks, and a checkpoint due meanwhile comes one transaction later.
        if (at_once and self._idle()) or (siblings == 0 and self._idle(asking_wal=False)):
            result, error = await self._lead(op, account, opening=at_once)
            if error is not None:
                raise error
            return cast("tuple[T, int]", result)
        loop = asyncio.get_running_loop()
        handoff = KeptOutcome(loop)
        self._queue.append((op, handoff, account))
        if self._runner is None:
            # Started on the next loop turn: every request that queues before then joins in.
            # A closing op among enough open requests waits a little longer for company (on a
            # SQLite file, where it was measured).
            defer = (
                not at_once
                and siblings is not None
                and siblings >= _SIBLINGS
                and self._connect is not None
            )
            self._runner = loop.create_task(self._drain(defer))
        elif at_once and self._deferred is not None:
            _wake(self._deferred)  # an opening op waits for no company
        try:
            return cast("tuple[T, int]", await handoff.future)
        except asyncio.CancelledError as cancelled:
            # The caller's (an op's error is never one: it would stop the writer, `_drain`),
            # also when it came just after the outcome was settled.
            message = cancelled.args[0] if cancelled.args else None
        # Cancelled while queued (a bare task.cancel(), or an enclosing anyio scope): wait for
        # the outcome all the same, hand it over (a result or the op's error), and let the same
        # cancellation land at the caller's next await.
        try:
            await handoff.wait_after_cancel()
        finally:
            _recancel(message)
        return cast("tuple[T, int]", handoff.outcome())

    def _idle(self, asking_wal: bool = True) -> bool:
        """Whether an op may be committed at once (`_lead`): on a SQLite file, with none
        committed at once yet in this pass of the event loop, the turn free (no transaction
        running, no session holding it) and no checkpoint due (the queue's runner does that one
        between two transactions; not asked with `asking_wal` False). Ops queued for the next
        shared transaction do not count: this op carries them."""
        return (
            self._connect is not None
            and not self._led
            and not self._turn.locked()
            and not (asking_wal and self._wal_due())
        )

    def _wal_due(self) -> bool:
        """`WalBound.due`, asked again only once this committer has committed since it last
        asked (or checkpointed): at one connection the next request's hold asks once for the
        two transactions before it (a settlement committed at once does not ask: `run_sized`;
        a `stat` or a `pread`, 2 to 6 us). The WAL grows by
        commits; another writer's grows it until this committer's next commit, which asks."""
        if self._wal is None:
            return False
        if self._wal_asked != self.transactions:
            self._wal_asked = self.transactions
            self._wal_was_due = self._wal.due()
        return self._wal_was_due

    async def _lead(
        self, op: Callable[[Tx], Awaitable[Any]], account: str | None, opening: bool = True
    ) -> _Outcome:
        """Commit one op now, in its caller's task, on the committer's own SQLite connection:
        the transaction runs without leaving the event loop (only another process's write lock
        makes `BEGIN IMMEDIATE` wait, and then whatever queues meanwhile waits for the turn
        this holds).

        Not shielded (anyio's shield cost 7 us a request on a quiet machine, ~28 on a busy
        one: `bench/group_commit_overhead.py`): the task can be cancelled only where it
        suspends, and that is only while it waits for another process, for the file lock
        (`writer_turn`, whose wait lets go of a lock taken as it is cancelled) or for SQLite's
        lock (`_begin_immediate`), before its transaction began. Then nothing was written, and
        the cancellation is the whole outcome. Once begun, a SQLite transaction does not
        suspend (an op awaits nothing but its `Tx`: `Database.grouped`); one that did would be
        rolled back by its cancellation, nothing written either.

        The ops queued for the next shared transaction by then ride along (`carried`): their
        transaction would follow within a pass, and a transaction costs more than its ops. If
        this one does not commit, or is cancelled (before it began), they go back to the
        queue, ahead of what came since, for the runner already on its way, and this op runs
        alone. An opening op takes the pass's one at-once slot (`opening`); a closing op
        committed at once because no other request is open does not."""
        if opening:
            self._led = True
            asyncio.get_running_loop().call_soon(self._next_pass)
        async with self._turn:
            # Taken once the turn is ours, as the runner takes its batch.
            carried, self._queue = self._queue[: _MAX_BATCH - 1], self._queue[_MAX_BATCH - 1 :]
            if not carried:
                (outcome,) = await self._outcomes([(op, account)])
                return outcome
            try:
                outcomes = await self._outcomes([*_ops(carried), (op, account)], retry=False)
            except BaseException:
                self._requeue(carried)
                raise
            if outcomes is None:
                self._requeue(carried)
                (outcome,) = await self._outcomes([(op, account)])
                return outcome
        _hand_over(carried, outcomes[:-1])
        return outcomes[-1]

    def _requeue(self, carried: list[_Item]) -> None:
        """Put ops an at-once transaction carried but did not commit back at the queue's head,
        with a runner (the one they had may have found the queue empty meanwhile)."""
        self._queue[:0] = carried
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._drain())

    def _next_pass(self) -> None:
        self._led = False

    async def _drain(self, defer: bool = False) -> None:
        batch: list[_Item] = []
        try:
            if defer:
                loop = asyncio.get_running_loop()
                deferred = self._deferred = loop.create_future()
                timer = loop.call_later(_DEFER, _wake, deferred)
                try:
                    await deferred
                finally:
                    timer.cancel()
                    self._deferred = None
            while self._queue:
                async with self._turn:
                    # Taken once the turn is ours: whatever queued while we waited joins in.
                    batch, self._queue = self._queue[:_MAX_BATCH], self._queue[_MAX_BATCH:]
                    if not batch:  # an op committed at once carried them (`_lead`)
                        break
                    # By account (stable: in queue order within one), as accounts are locked.
                    batch.sort(key=lambda item: item[2] or "")
                    await self._commit(batch)
                    if self._wal_due():
                        await self._checkpoint()
        except BaseException:
            # Only when the loop itself is going away: nobody must wait forever.
            stopped = RuntimeError("the database writer stopped")
            for _, handoff, _ in [*batch, *self._queue]:
                handoff.settle(error=stopped)
            self._queue = []
            raise
        finally:
            self._runner = None

    def turn(self) -> WriterTurn:
        """The writer's turn: whoever else writes through this process's SQLite writer takes it
        for the length of their transaction, so that they and group commits (of this process
        and, on a file, of the others: `writer_turn`) never meet at SQLite's write lock, where
        the loser could only poll."""
        return self._turn

    def close(self) -> None:
        if self._own is not None:
            self._own.close()
            self._own = self._own_tx = None
        if self._wal is not None:
            self._wal.close()

    def _own_connection(self) -> sqlite3.Connection:
        assert self._connect is not None
        if self._own is None:
            self._own = self._connect()
        return self._own

    async def checkpoint(self) -> bool | None:
        """The periodic checkpoint (`wal_bound`): within the WAL's bound, a copy beside the
        commits; past it, a RESTART between two transactions. Whether it copied all the WAL
        held; None without a WAL (PostgreSQL), or with nothing to do. Without a WAL-index to
        read, a RESTART unless this committer wrote nothing since its last one."""
        if self._wal is None or not self._wal.size():
            return None
        if not self._wal.due():
            copied = await self._wal.copy()
            if copied is not None or self._wal.index.frames() is not None:
                return copied
            if self.transactions == self._checkpointed_after:
                return None
        async with self._turn:
            return await self._checkpoint()

    async def erase_wal(self) -> bool:
        """A TRUNCATE checkpoint (`wal_erasure`): the WAL copied into the database and its file
        cut to zero bytes, so that no page image written before a deletion is left in it. As
        the RESTART at the bound: a copy beside the commits first, then the TRUNCATE between
        two transactions, holding the writer for what came since and the same bounded wait
        for readers. Whether it finished (True without a WAL file)."""
        if self._wal is None:
            return True
        await self._wal.copy()
        async with self._turn:
            return await self._checkpoint("TRUNCATE")

    async def _checkpoint(self, mode: str = "RESTART") -> bool:
        """With the turn held."""
        assert self._wal is not None
        transactions = self.transactions
        done = await self._wal.checkpoint(mode)
        self._wal_asked = -1  # the WAL started over, or the next try has a time of its own
        if done:
            self._checkpointed_after = transactions
        return done

    async def _commit(self, batch: list[_Item]) -> None:
        """Commit `batch` and hand each op's caller its outcome. On PostgreSQL the transaction
        runs on the writer's own loop (`writer_loop`); the futures are settled here, on theirs."""
        ops = _ops(batch)
        if self._writer is not None:
            outcomes = await self._writer.run(functools.partial(self._outcomes, ops))
        else:
            outcomes = await self._outcomes(ops)
        _hand_over(batch, outcomes)

    @overload
    async def _outcomes(self, batch: list[_Op]) -> list[_Outcome]: ...

    @overload
    async def _outcomes(self, batch: list[_Op], retry: bool) -> list[_Outcome] | None: ...

    async def _outcomes(self, batch: list[_Op], retry: bool = True) -> list[_Outcome] | None:
        """Run `batch` in one transaction: what each op's caller is to be given, in order.
        `retry=False`: None when the transaction did not commit, the ops not run again."""
        try:
            results = await self._transaction(
                [op for op, _ in batch], [a for _, a in batch if a is not None]
            )
        except _OutcomeUnknown as unknown:
            landed = await self._landed(unknown.seq)
            if landed is None:
                error = _as_sqlalchemy(unknown.error)
                return [(None, error)] * len(batch)
            if not landed:
                return await self._failed(batch, unknown.error) if retry else None
            log.info("commit outcome was unknown: it landed", extra={"code": unknown.args[0]})
            results = unknown.results
            self.transactions += 1
            self.ops += len(batch)
        except Exception as error:
            return await self._failed(batch, error) if retry else None
        size = len(batch)
        return [((result, size), None) for result in results]

    async def _failed(self, batch: list[_Op], error: Exception) -> list[_Outcome]:
        """The batch's transaction did not commit: run each op again, alone, so that only the
        op at fault fails."""
        if len(batch) == 1:
            return [(None, _as_sqlalchemy(error))]
        log.info("group commit retried op by op", extra={"code": type(error).__name__})
        outcomes: list[_Outcome] = []
        for op in batch:
            outcomes += await self._outcomes([op])
        return outcomes

    async def _transaction(
        self, ops: list[Callable[[Tx], Awaitable[Any]]], accounts: Sequence[str] = ()
    ) -> list[Any]:
        """Run `ops` in one transaction (after locking `accounts`) and commit;
        `_OutcomeUnknown` when the COMMIT got no answer. Any other error: the transaction did
        not commit."""
        self._seq += 1
        if self._connect is not None:
            results = await self._sqlite_transaction(self._own_connection(), ops, self._seq)
            self.transactions += 1
            self.ops += len(ops)
            return results
        if not self._sqlite:
            results = await self._postgres_transaction(ops, accounts)
            self.transactions += 1
            self.ops += len(ops)
            return results
        # Closed by hand: `async with engine.connect()` closes in a task of its own, which kept
        # the writer connection one more turn of the event loop: each batch waited that turn
        # before the next could begin (measured: 2 ms p50, 19 ms p99 per transaction at 32
        # connections with a 50 ms upstream; 0.7 and 2.5 ms after).
        connection = await self._engine.connect()
        try:
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            results = await self._sqlite_transaction(driver.sqlite, ops, self._seq)
        finally:
            await _close(connection)
        self.transactions += 1
        self.ops += len(ops)
        return results

    async def _postgres_transaction(
        self, ops: list[Callable[[Tx], Awaitable[Any]]], accounts: Sequence[str]
    ) -> list[Any]:
        """On the connection the committer keeps (`_held`). One that was kept from an earlier
        transaction may have died meanwhile (the server restarted): when such a connection
        fails before any COMMIT was sent, the transaction certainly did not commit, and it runs
        again, once, on a new connection. This replaces the pool's ping before every checkout,
        a round trip per transaction."""
        reused = self._held is not None
        try:
            return await self._asyncpg_transaction(
                await self._held_driver(), ops, self._seq, accounts
            )
        except Exception as error:
            lost = isinstance(error, _OutcomeUnknown) or self._held_lost(error)
            if lost:
                await self._drop_held()
            if not (lost and reused) or isinstance(error, _OutcomeUnknown):
                raise
            log.info("writer connection lost while idle", extra={"code": type(error).__name__})
        except BaseException:
            await self._drop_held()  # cancelled mid-statement: the connection's state is unknown
            raise
        self._seq += 1
        return await self._asyncpg_transaction(await self._held_driver(), ops, self._seq, accounts)

    async def _held_driver(self) -> Any:
        """The asyncpg connection of the committer's own checkout from the writer pool, made
        on first use (the pool pings it then) and kept for the next transactions."""
        self._held_asyncpg = None
        if self._held is None:
            self._held = await self._postgres_engine().connect()
        raw = await self._held.get_raw_connection()
        self._held_asyncpg = raw.driver_connection
        return self._held_asyncpg

    def _held_lost(self, error: Exception) -> bool:
        driver = self._held_asyncpg
        return is_unavailable(error) or driver is None or bool(driver.is_closed())

    async def _drop_held(self) -> None:
        """Give up the kept connection; the pool discards it and the next transaction opens
        (and pings) another."""
        held, self._held, self._held_asyncpg = self._held, None, None
        if held is None:
            return
        with anyio.CancelScope(shield=True):
            try:
                await held.invalidate()
            except Exception as error:
                log.warning(
                    "writer connection not closed cleanly", extra={"code": type(error).__name__}
                )
            await _close(held)

    def _postgres_engine(self) -> AsyncEngine:
        """The engine of the committer's connections on PostgreSQL: its own, made on the
        writer's loop, or else (no `writer_engine`) the writer engine."""
        if self._make_writer_engine is None:
            return self._engine
        if self._writer_engine is None:
            self._writer_engine = self._make_writer_engine()
        return self._writer_engine

    async def aclose(self) -> None:
        """Close the committer's connections (`close`, and on PostgreSQL its kept one) and
        stop its writer loop."""
        self.close()
        if self._wal is not None:
            await self._wal.aclose()
        if self._writer is None:
            await self._close_held()
            return
        if self._writer.started:
            await self._writer.run(self._close_held)
            self._writer.stop()

    async def _close_held(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            await _close(held)
        engine, self._writer_engine = self._writer_engine, None
        if engine is not None:
            await engine.dispose()

    async def _mark(self, tx: Tx, seq: int) -> None:
        """Write this transaction's number into the committer's marker row."""
        now = time.time()
        if not await tx.execute(_MARK, {"b_owner": self._owner, "b_seq": seq, "b_now": now}):
            await tx.execute(_NEW_MARK, {"owner": self._owner, "seq": seq, "updated_at": now})

    async def _run_ops(
        self, tx: Tx, ops: list[Callable[[Tx], Awaitable[Any]]], seq: int
    ) -> list[Any]:
        await self._mark(tx, seq)
        results = []
        for op in ops:  # a loop, not a list comprehension: that would be a coroutine more
            results.append(await op(tx))
        return results

    async def _begin_locked(self, driver: Any, tx: Tx, seq: int, accounts: Sequence[str]) -> None:
        """PostgreSQL: BEGIN, then lock the ops' accounts and write the commit marker. Sent as
        one round trip (one simple query, the values written in: `inline_sql`) whenever the
        values allow; one simple query is planned each time (~0.2 ms of the server's CPU per
        transaction), a round trip costs more (the writer thread then waits for the GIL on a
        busy gateway's core)."""
        if self._lock_and_mark is None:
            await driver.execute("BEGIN")
            await self._mark(tx, seq)
            return
        params = {
            "b_ids": sorted(set(accounts)),
            "b_owner": self._owner,
            "b_seq": seq,
            "b_now": time.time(),
        }
        inline = inline_sql(self._lock_and_mark, self._dialect, params)
        if inline is not None:
            await driver.execute(f"BEGIN;\n{inline}")
            return
        await driver.execute("BEGIN")
        await tx.first(self._lock_and_mark, params)

    async def _sqlite_transaction(
        self, connection: sqlite3.Connection, ops: list[Callable[[Tx], Awaitable[Any]]], seq: int
    ) -> list[Any]:
        tx = self._own_tx
        if tx is None or tx.connection is not connection:
            tx = _SqliteTx(connection, self._dialect)
            if connection is self._own:  # kept with it: one cursor for all its transactions
                self._own_tx = tx
        if not _began(tx):
            await self._begin_immediate(tx)  # another process's lock: wait for it
        try:
            results = await self._run_ops(tx, ops, seq)
        except BaseException:
            await tx.rollback()
            raise
        await self._finish(tx.commit, tx.rollback, seq, results)
        return results

    async def _asyncpg_transaction(
        self,
        driver: Any,
        ops: list[Callable[[Tx], Awaitable[Any]]],
        seq: int,
        accounts: Sequence[str],
    ) -> list[Any]:
        async def rollback() -> bool:
            """True when the transaction was still open and is now rolled back."""
            try:
                if driver.is_closed() or not driver.is_in_transaction():
                    return False
                await driver.execute("ROLLBACK")
            except Exception:
                return False
            return True

        async def commit() -> None:
            await driver.execute("COMMIT")

        tx = _AsyncpgTx(driver, self._dialect)
        try:
            await self._begin_locked(driver, tx, seq, accounts)
            try:
                if len(ops) > 1:
                    results = await run_pipelined(tx, driver, self._dialect, ops)
                else:
                    results = [await op(tx) for op in ops]
            except Sequential:
                # The ops cannot go in runs and keep their order (`pg_pipeline`): nothing of
                # the attempt stands; the same transaction's work, op after op.
                await driver.execute("ROLLBACK")
                await self._begin_locked(driver, tx, seq, accounts)
                results = [await op(tx) for op in ops]
        except BaseException:
            with anyio.CancelScope(shield=True):
                await rollback()
            raise
        await self._finish(commit, rollback, seq, results)
        return results

    async def _finish(
        self,
        commit: Callable[[], Awaitable[None]],
        rollback: Callable[[], Awaitable[bool]],
        seq: int,
        results: list[Any],
    ) -> None:
        try:
            await self._send_commit(commit)
            return
        except Exception as error:
            if await rollback():  # it was still open: it certainly did not commit
                raise
            unknown = _OutcomeUnknown(error, seq, results)
        raise unknown  # outside the except block: it carries the error, chains nothing

    async def _send_commit(self, commit: Callable[[], Awaitable[None]]) -> None:
        """The COMMIT itself (a seam for tests that lose its answer)."""
        await commit()

    async def _landed(self, seq: int) -> bool | None:
        """Whether transaction `seq` committed, by its marker; None when that cannot be read."""
        params = {"b_owner": self._owner}
        if self._connect is not None:
            try:
                tx = _SqliteTx(self._own_connection(), self._dialect)
                row = await tx.first(_READ_MARK, params)
            except Exception as error:
                log.error("commit outcome unknown", extra={"code": type(error).__name__})
                return None
            return row is not None and int(row[0]) == seq
        try:
            connection = await (self._engine if self._sqlite else self._postgres_engine()).connect()
            try:
                raw = await connection.get_raw_connection()
                driver: Any = raw.driver_connection
                if self._sqlite:
                    row = await _SqliteTx(driver.sqlite, self._dialect).first(_READ_MARK, params)
                else:
                    async with driver.transaction():
                        # A backend cut off from its client may hold the row until it notices:
                        # past this, the outcome stays unknown rather than stall every write.
                        await driver.execute(f"SET LOCAL lock_timeout = '{_PROBE_WAIT_MS}ms'")
                        row = await _AsyncpgTx(driver, self._dialect).first(_READ_MARK, params)
            finally:
                await _close(connection)
        except Exception as error:
            log.error("commit outcome unknown", extra={"code": type(error).__name__})
            return None
        return row is not None and int(row[0]) == seq

    @staticmethod
    async def _begin_immediate(tx: _SqliteTx) -> None:
        """Take the write lock after `BEGIN IMMEDIATE` found it held by another process: wait
        with async sleeps (a writer outside `writer_turn`: the processes of this gateway wait
        for each other there). The first try is the caller's, without this coroutine (every
        transaction begins, few wait); the clock is read only from here on, on
        `time.monotonic` (anyio's clock costs a syscall or two more)."""
        deadline = time.monotonic() + _BUSY_TIMEOUT
        pause = 0.001
        while True:
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)
            try:
                tx.statement("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if not is_sqlite_busy(error) or time.monotonic() >= deadline:
                    raise


def _ops(items: list[_Item]) -> list[_Op]:
    """The queued items' ops with their accounts, for `_outcomes`."""
    return [(op, account) for op, _, account in items]


def _hand_over(items: list[_Item], outcomes: list[_Outcome]) -> None:
    """Give each queued item's caller its op's outcome (the runner's batch, an at-once op's
    carried ops: the same hand-off)."""
    for (_, handoff, _), (result, error) in zip(items, outcomes, strict=True):
        handoff.settle(result, error)


def _wake(waiting: asyncio.Future[None]) -> None:
    if not waiting.done():
        waiting.set_result(None)


def _began(tx: _SqliteTx) -> bool:
    """`BEGIN IMMEDIATE`, once: False when another process holds SQLite's write lock."""
    try:
        tx.statement("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if not is_sqlite_busy(error):
            raise
        return False
    return True


async def forget_idle_markers(session: AsyncSession, before: float) -> int:
    """Delete the marker rows of committers idle since `before` (processes long gone; a live
    one that was merely idle writes its row again)."""
    result = await session.execute(delete(CommitMarker).where(CommitMarker.updated_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def _close(connection: AsyncConnection) -> None:
    """Give the connection back, shielded; a failure to do so changes no outcome (the pool
    discards a broken connection)."""
    with anyio.CancelScope(shield=True):
        try:
            await connection.close()
        except Exception as error:
            log.warning(
                "writer connection not closed cleanly", extra={"code": type(error).__name__}
            )


def _recancel(message: Any = None) -> None:
    """Cancel the current task again: the cancellation swallowed while waiting is redelivered,
    with its message (by which an anyio scope knows its own). The cancel request stays counted
    once (`uncancel` first), so that `asyncio.timeout` still recognises its own cancellation
    and raises TimeoutError."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
        task.cancel(message)


@functools.cache
def _driver_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """The drivers' integrity and general database errors. asyncpg comes with the `postgres`
    extra: without it no PostgreSQL connection exists, so none of its errors can occur."""
    integrity: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)
    database: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)
    try:
        from asyncpg.exceptions import (  # type: ignore[import-untyped]
            IntegrityConstraintViolationError,
            PostgresError,
        )
    except ImportError:
        return integrity, database
    return (*integrity, IntegrityConstraintViolationError), (*database, PostgresError)


def _as_sqlalchemy(error: Exception) -> Exception:
    """A driver's exception as SQLAlchemy's (what callers of the session paths catch)."""
    if isinstance(error, sqlalchemy_exc.SQLAlchemyError):
        return error
    integrity, database = _driver_errors()
    if isinstance(error, integrity):
        wrapped: Exception = sqlalchemy_exc.IntegrityError(None, None, error)
    elif isinstance(error, sqlite3.OperationalError):
        wrapped = sqlalchemy_exc.OperationalError(None, None, error)
    elif isinstance(error, database):
        wrapped = sqlalchemy_exc.DatabaseError(None, None, error)
    else:
        return error
    wrapped.__cause__ = error
    return wrapped
