"""A group commit's ops on PostgreSQL, their statements sent in runs instead of one by one.

Run one after the other, a batch of N ops is N round trips on the writer connection, each
waiting for PostgreSQL's answer and then for the writer thread's turn on a core it shares with
the gateway's event loop (measured: ~0.7 ms per round trip against ~0.2 ms of execution). The
hot path's ops are one statement each, and most of a batch's ops are of two kinds (holds and
settlements): here the ops of a kind send their statements in one round trip (asyncpg's
`fetchmany`: one Bind/Execute per op, one Sync), so a batch costs about as many round trips as
it has kinds of op.

The result is the one sequential execution gives, in an order of the ops chosen here: by the
kind of their first statement (in order of first appearance), then in batch order. The ops of
one batch are concurrent requests' (a request waits for its op before it queues another), so
any order of them is as valid as the queue's; the accounts are all locked before the first op
(`lock_order`), so no order can deadlock. Within a run each statement sees what the ones before
it wrote (each Execute is a command of its own in the transaction).

What keeps it exact:
- Only statements that answer exactly one row (`one_row`) are sent in runs: `fetchmany` answers
  the rows of all its executions in one list, so that is how they are told apart.
- An op runs up to its first statement before any op's statement is sent; that part of an op
  reads nothing from the database. An op that makes a second statement makes it right after its
  first when it is the last of its run. When it is not, the later ops of the run have already
  written: a statement that touches only its own request's rows (`own_rows`: the idempotency
  record's answer) goes all the same, as no other op's statement can see the difference; any
  other (a refused hold reading why) has the batch run again, op after op, in a new transaction
  (`Sequential`).
- An op that awaits anything but its `Tx` (the contract says it must not) is treated the same.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # group_commit imports this module
    from .group_commit import Params, Row, Statement, Tx

__all__ = ["Sequential", "inline_sql", "one_row", "own_rows", "run_pipelined"]

#: Statements that always answer exactly one row (registered by `one_row`).
_ONE_ROW: set[int] = set()
#: Statements that touch only their own request's rows (registered by `own_rows`).
_OWN_ROWS: set[int] = set()


def one_row(statement: Statement) -> Statement:
    """Mark `statement` as answering exactly one row whatever its parameters: the ops whose
    first statement it is may send it in a run."""
    _ONE_ROW.add(id(statement))
    return statement


def own_rows(statement: Statement) -> Statement:
    """Mark `statement` as touching only rows of its own request, which no other op of a batch
    reads or writes: it may follow later ops' statements."""
    _OWN_ROWS.add(id(statement))
    return statement


class Sequential(Exception):
    """The batch cannot be run in runs and keep the order of its statements: run it again, op
    after op, in a transaction of its own."""


class _Call:
    """A statement an op awaits: sent by `run_pipelined`, which sends back its answer."""

    __slots__ = ("argument", "method", "statement")

    def __init__(self, method: str, statement: Statement, argument: Any) -> None:
        self.method = method
        self.statement = statement
        self.argument = argument

    def __await__(self) -> Generator[_Call, Any, Any]:
        return (yield self)


class _CollectingTx:
    """The `Tx` the ops see: each call is handed to the driver (`run_pipelined`)."""

    dialect_name = "postgresql"

    async def execute(self, statement: Statement, params: Params) -> int:
        result: int = await _Call("execute", statement, params)
        return result

    async def execute_many(self, statement: Statement, rows: Sequence[Params]) -> None:
        await _Call("execute_many", statement, rows)

    async def first(self, statement: Statement, params: Params) -> Row | None:
        result: Row | None = await _Call("first", statement, params)
        return result

    async def all(self, statement: Statement, params: Params) -> list[Row]:
        result: list[Row] = await _Call("all", statement, params)
        return result


class _Op:
    """One op's coroutine, driven by hand: `pending` is the call it waits on."""

    __slots__ = ("coroutine", "done", "index", "pending", "result")

    def __init__(self, index: int, coroutine: Coroutine[Any, Any, Any]) -> None:
        self.index = index
        self.coroutine = coroutine
        self.pending: _Call | None = None
        self.done = False
        self.result: Any = None

    def send(self, value: Any = None, error: BaseException | None = None) -> None:
        """Resume the op with a statement's answer (or its error) until its next call."""
        try:
            yielded = (
                self.coroutine.throw(error) if error is not None else self.coroutine.send(value)
            )
        except StopIteration as stop:
            self.done, self.pending, self.result = True, None, stop.value
            return
        if not isinstance(yielded, _Call):
            raise Sequential("an op awaited something other than its Tx")
        self.pending = yielded

    def kind(self) -> tuple[str, int]:
        assert self.pending is not None
        return self.pending.method, id(self.pending.statement)


async def run_pipelined(
    tx: Tx, connection: Any, dialect: Any, ops: Sequence[Callable[[Tx], Awaitable[Any]]]
) -> list[Any]:
    """Run `ops` in the open transaction of `connection` (asyncpg's; `tx` is a `Tx` over it):
    their results, in `ops`' order. `Sequential` when that cannot be done in runs (nothing
    sent by then stands: the caller rolls back)."""
    collecting = _CollectingTx()
    driven: list[_Op] = []
    try:
        for index, op in enumerate(ops):
            coroutine = op(collecting)
            if not isinstance(coroutine, Coroutine):
                raise Sequential("an op that is not a coroutine function")
            driven.append(_Op(index, coroutine))
            driven[-1].send()
        kinds: dict[tuple[str, int], list[_Op]] = {}
        for item in driven:
            if not item.done:
                kinds.setdefault(item.kind(), []).append(item)
        for (method, statement_id), run in kinds.items():
            if len(run) > 1 and method == "first" and statement_id in _ONE_ROW:
                await _send_run(tx, connection, dialect, run)
            else:
                for item in run:
                    await _finish(tx, item)
        return [item.result for item in driven]
    finally:
        for item in driven:
            if not item.done:
                item.coroutine.close()


async def _send_run(tx: Tx, connection: Any, dialect: Any, run: list[_Op]) -> None:
    """The first statements of `run` (one statement, one row each) in one round trip; then
    each op goes on in turn. Only the last may make a further statement (see the module)."""
    calls = [item.pending for item in run]
    statement = calls[0].statement  # type: ignore[union-attr]
    sql, _ = statement.values(dialect, calls[0].argument)  # type: ignore[union-attr]
    values = [statement.values(dialect, call.argument)[1] for call in calls]  # type: ignore[union-attr]
    rows = await connection.fetchmany(sql, values)
    if len(rows) != len(run):
        raise RuntimeError("a one-row statement answered another number of rows")
    last = len(run) - 1
    for position, (item, row) in enumerate(zip(run, rows, strict=True)):
        item.send(tuple(row))
        if position == last:
            await _finish(tx, item)
            continue
        while not item.done:
            assert item.pending is not None
            if id(item.pending.statement) not in _OWN_ROWS:
                raise Sequential("an op made a second statement after later ops' first")
            await _step(tx, item)


async def _finish(tx: Tx, item: _Op) -> None:
    """Send the op's statements one by one until it is done."""
    while not item.done:
        await _step(tx, item)


async def _step(tx: Tx, item: _Op) -> None:
    """Send the op's pending statement and resume it with the answer."""
    call = item.pending
    assert call is not None
    try:
        answer = await getattr(tx, call.method)(call.statement, call.argument)
    except Exception as error:
        item.send(error=error)  # the op may catch it (it would see it either way)
        return
    item.send(answer)


#: Text written into SQL as it is: nothing a string literal could be ended or escaped by,
#: whether `standard_conforming_strings` is on or off.
_PLAIN = re.compile(r"[A-Za-z0-9_.:-]*")
_PLACEHOLDER = re.compile(r"\$(\d+)")


def inline_sql(statement: Statement, dialect: Any, params: Params) -> str | None:
    """`statement`'s SQL with its parameters' values written in, for a simple query that
    also carries other statements (the group commit's BEGIN). Only plain text, integers,
    finite floats and lists of plain text are written in; None for anything else, and the
    caller sends the statement with its parameters."""
    sql, values = statement.values(dialect, params)
    literals = [_literal(value) for value in values]
    if None in literals:
        return None
    return _PLACEHOLDER.sub(lambda match: literals[int(match.group(1)) - 1] or "", sql)


def _literal(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return f"'{value}'" if _PLAIN.fullmatch(value) else None
    if isinstance(value, list):
        items = [f"'{item}'" for item in value if isinstance(item, str) and _PLAIN.fullmatch(item)]
        return f"ARRAY[{','.join(items)}]" if len(items) == len(value) else None
    return None
