"""Database engines and units of work.

SQLite (the default) allows one writer at a time. Rather than letting concurrent writers fail with
"database is locked", every write transaction here starts with `BEGIN IMMEDIATE`, on a dedicated
single-connection engine or on the group committer's own connection: writers in this process take
turns (`GroupCommitter.turn`), and so do the writers of other processes on the same file
(`writer_turn`: a file lock, waited for on a worker thread); a writer outside that protocol is
waited for with async sleeps (see `_begin_write`). Reads use a separate pool and never
block behind writers (WAL mode). SQLite calls run inline on the event loop (`sqlite_inline`).

PostgreSQL uses one pooled asyncpg engine for both; row-level locking does the queueing.

The requests' own writes (credit holds, settlements, usage rows, job rows) do not open a session
each: they go through `Database.grouped`, which runs the writes of concurrent requests in one
transaction on the writer connection (`group_commit`).
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    asynccontextmanager,
    contextmanager,
    nullcontext,
)
from pathlib import Path
from typing import Any, TypeVar

import anyio
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool

from .db_errors import is_sqlite_busy, is_unavailable
from .extras import require
from .group_commit import GroupCommitter, Tx, as_tx
from .lock_order import LOCKING, lock_accounts
from .private import PRIVATE_FILE, private_file, tighten
from .sqlite_inline import connect_inline
from .wal_bound import WAL_LIMIT_BYTES, WalBound
from .wal_erasure import WalErasure
from .writer_turn import SUFFIX as WRITER_LOCK_SUFFIX
from .writer_turn import WriterTurn

__all__ = ["Database"]

T = TypeVar("T")

_BUSY_TIMEOUT_MS = 30_000
#: Execution option (and connection info key) of a write transaction that runs with SQLite's
#: foreign key enforcement off: schema migrations (`Database.write`).
_FOREIGN_KEYS_OFF = "reapi_foreign_keys_off"
_READ_BUSY_TIMEOUT_MS = 1_000


def _sqlite_engine(url: str, *, writer: bool) -> AsyncEngine:
    path = make_url(url).database or ""
    engine = create_async_engine(
        url,
        async_creator=lambda: connect_inline(path),
        poolclass=AsyncAdaptedQueuePool,
        pool_size=1 if writer else 4,
        max_overflow=0,
        # A writer waits its turn for the one connection instead of failing.
        pool_timeout=_BUSY_TIMEOUT_MS / 1000,
        # Every unit of work ends in COMMIT or ROLLBACK already; a reset on return would only
        # cost one more statement per transaction.
        pool_reset_on_return=None,
    )
    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that BEGIN IMMEDIATE is ours to send.
        dbapi_connection.isolation_level = None
        _configure(dbapi_connection, writer=writer)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(_FOREIGN_KEYS_OFF):
            # Only outside a transaction does SQLite take this: before BEGIN, then.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.info[_FOREIGN_KEYS_OFF] = True
        connection.exec_driver_sql(begin)

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _on_checkin(dbapi_connection: Any, record: Any) -> None:
        # Back in the pool, the transaction is over: enforce again for whoever comes next
        # (group commit uses the driver connection directly, past the "begin" hook).
        if record is not None and record.info.pop(_FOREIGN_KEYS_OFF, False):
            dbapi_connection.execute("PRAGMA foreign_keys=ON")

    return engine


def _configure(connection: Any, *, writer: bool) -> None:
    """The settings of every connection to the database (a `sqlite3` connection, or
    aiosqlite's, which takes the same calls)."""
    cursor = connection.cursor()
    # The writer must not block the event loop waiting for a lock: it retries instead.
    cursor.execute(f"PRAGMA busy_timeout={0 if writer else _READ_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Checkpoints (which fsync) run on a thread between group commits (`wal_bound`), never
    # inline on the event loop as part of whichever COMMIT crossed the WAL size threshold.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    # A WAL that SQLite restarts from its beginning is also cut back to the bound.
    cursor.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # What is deleted (an account, an output's row, a usage row past its retention) is zeroed
    # in its page, not left in the file until the space is reused. Many builds have it on by
    # default (Debian's: what the benchmarks measured), others not.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _group_writer(path: str) -> sqlite3.Connection:
    """The group committer's own connection (see `group_commit`): BEGIN IMMEDIATE is ours."""
    connection = sqlite3.connect(path, isolation_level=None)
    _configure(connection, writer=True)
    return connection


def _is_file(database: str | None) -> bool:
    return bool(database) and database != ":memory:" and not str(database).startswith("file:")


def _private_sqlite_files(database: str) -> None:
    """The database file is made 0600 before SQLite opens it: SQLite gives its WAL and shared
    memory files the database's mode, and would otherwise create it world-readable (umask 022).
    Files an earlier version made are tightened."""
    if not _is_file(database):
        return
    path = Path(database)
    if not path.parent.is_dir():
        return  # SQLite says what is wrong when it opens it
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal", WRITER_LOCK_SUFFIX):
        tighten(path.with_name(path.name + suffix), PRIVATE_FILE)


async def _check_foreign_keys(session: AsyncSession) -> None:
    violations = (await session.execute(text("PRAGMA foreign_key_check"))).all()
    if violations:
        tables = sorted({str(row[0]) for row in violations})
        raise RuntimeError(f"foreign key violations in {', '.join(tables)}")


class Database:
    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        """`timeout`: seconds for a PostgreSQL connection to open and for each statement on it;
        past it the database counts as unavailable. A server that stopped answering (a
        partition, a dead host) would otherwise hold requests forever."""
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        writer_engine: Callable[[], AsyncEngine] | None = None
        if self.dialect == "sqlite":
            _private_sqlite_files(make_url(url).database or "")
            self._reader = _sqlite_engine(url, writer=False)
            self._writer = _sqlite_engine(url, writer=True)
        else:
            if make_url(url).get_driver_name() == "asyncpg":
                require("a PostgreSQL database_url", "postgres", "asyncpg")
            limits = {} if timeout is None else {"timeout": timeout, "command_timeout": timeout}
            self._reader = self._writer = create_async_engine(
                url, pool_size=10, max_overflow=20, pool_pre_ping=True, connect_args=limits
            )
            # The group committer's connections, on its writer loop (`writer_loop`): it keeps
            # one, and opens another only to learn a lost COMMIT's outcome.
            writer_engine = functools.partial(
                create_async_engine, url, poolclass=NullPool, connect_args=limits
            )
        self._read_sessions = async_sessionmaker(self._reader, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(self._writer, expire_on_commit=False)
        path = make_url(url).database or ""
        on_file = self.dialect == "sqlite" and _is_file(path)
        self.group = GroupCommitter(
            self._writer,
            LOCKING if self.is_postgres else None,
            wal=WalBound(path) if on_file else None,
            connect=(lambda: _group_writer(path)) if on_file else None,
            turn=WriterTurn(path if on_file else None, _BUSY_TIMEOUT_MS / 1000),
            writer_engine=writer_engine,
        )
        #: On a SQLite file: the WAL truncated after deletions (`wal_erasure`).
        self._erasure = WalErasure(self.group.erase_wal) if on_file else None
        self._unavailable_at: float | None = None

    def personal_data_deleted(self) -> None:
        """Call once a deletion the privacy policy promises has committed (an account, an
        output, the retention job's run, a sent message's text): on a SQLite file the WAL,
        which may still hold the rows as they were, is truncated within
        `wal_erasure.ERASE_AFTER_SECONDS`, readers permitting. PostgreSQL: nothing (its old
        row versions go with autovacuum)."""
        if self._erasure is not None:
            self._erasure.request()

    async def grouped(
        self,
        op: Callable[[Tx], Awaitable[T]],
        *,
        account: str | None,
        at_once: bool = False,
        siblings: int | None = None,
    ) -> T:
        """Run `op` in a transaction shared with the other requests' writes (group commit),
        return its result once committed. The op must not await anything but its `Tx`.
        `account`: the account whose rows the op touches (see `lock_order`). `at_once`: the op
        opens a request (the upstream call waits for it): committed now if the writer is idle,
        instead of waiting for the others of this pass of the event loop (`group_commit`).
        `siblings`: the other requests open beside this closing op (None: not counted); with
        enough of them its transaction waits a little for company, with none it is committed
        now if the writer is idle (`group_commit`).
        Its errors as `_watched` has them, without the context manager (~2 us, twice a
        request)."""
        try:
            return await self.group.run(op, account, at_once, siblings)
        except Exception as error:
            wrapped = self._seen(error)
            if wrapped is None:
                raise
        raise wrapped  # outside the except block: nothing chained as __context__

    async def lock_accounts(self, session: AsyncSession, *account_ids: str) -> None:
        """The first statement of a write transaction that changes several rows: lock their
        accounts, in id order (PostgreSQL; see `lock_order`)."""
        if self.is_postgres:
            await lock_accounts(as_tx(session), account_ids)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def _watched(self) -> Iterator[None]:
        """Errors that mean the database is unavailable (`db_errors`) are remembered, for
        readiness, and raised as SQLAlchemy's `OperationalError` whatever the driver raised
        (asyncpg's connect raises bare OSErrors), so that callers and the API's error handler
        see one kind."""
        wrapped: OperationalError | None = None
        try:
            yield
        except Exception as error:
            wrapped = self._seen(error)
            if wrapped is None:
                raise
        if wrapped is not None:
            raise wrapped  # outside the except block: nothing chained as __context__

    def _seen(self, error: Exception) -> OperationalError | None:
        """An error that means the database is unavailable is remembered (`_watched`); what is
        to be raised instead of `error`, or None to raise it as it is. The driver's error stays
        as `.orig`, as SQLAlchemy keeps it for its own errors."""
        if not is_unavailable(error):
            return None
        self._unavailable_at = time.monotonic()
        if isinstance(error, SQLAlchemyError):
            return None
        return OperationalError(None, None, error)

    def seconds_since_unavailable(self) -> float | None:
        """How long ago an operation last failed because the database was unavailable."""
        if self._unavailable_at is None:
            return None
        return time.monotonic() - self._unavailable_at

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        # Closed by hand: `async with AsyncSession` closes in a separate task, which holds the
        # connection for one more loop iteration — under load, the pool runs dry and waiters
        # queue behind newcomers (long tail latencies).
        session = self._read_sessions()
        try:
            with self._watched():
                yield session
        finally:
            with anyio.CancelScope(shield=True):
                await session.close()

    @asynccontextmanager
    async def write(self, *, enforce_foreign_keys: bool = True) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises.

        Shielded from (anyio) cancellation: a request cancelled mid-transaction still finishes
        it, so the caller always knows whether, say, its credit hold exists.

        `enforce_foreign_keys=False` is for schema migrations on SQLite, which alter a table by
        copying it and dropping the original: with enforcement on, that drop deletes the rows
        of every ON DELETE CASCADE child. SQLite's own procedure: enforcement off for the
        transaction, `PRAGMA foreign_key_check` before the commit (a violation rolls it back).
        PostgreSQL alters tables in place and ignores the flag."""
        with anyio.CancelScope(shield=True), self._watched():
            async with self._writer_turn():
                relaxed = not enforce_foreign_keys and self.dialect == "sqlite"
                session = await self._begin_write(relaxed)
                try:
                    yield session
                    if relaxed:
                        await _check_foreign_keys(session)
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise
                finally:
                    await session.close()

    def _writer_turn(self) -> AbstractAsyncContextManager[Any]:
        """SQLite: the group committer's turn (it writes on a connection of its own); on
        PostgreSQL row locks do the queueing."""
        return self.group.turn() if self.dialect == "sqlite" else nullcontext()

    async def _begin_write(self, relaxed: bool = False) -> AsyncSession:
        """A session whose write transaction has begun. On SQLite, `BEGIN IMMEDIATE` takes the
        write lock; while another process holds it, wait with async sleeps (never in SQLite's
        busy handler, which would stall the event loop) for up to the busy timeout."""
        deadline = anyio.current_time() + _BUSY_TIMEOUT_MS / 1000
        pause = 0.001
        while True:
            session = self._write_sessions()
            try:
                # autobegin: the "begin" listener sends BEGIN
                await session.connection(
                    execution_options={_FOREIGN_KEYS_OFF: True} if relaxed else None
                )
                return session
            except OperationalError as error:
                await session.close()
                if not is_sqlite_busy(error) or anyio.current_time() >= deadline:
                    raise
            await anyio.sleep(pause)
            pause = min(pause * 2, 0.05)

    async def checkpoint(self) -> None:
        """Copy the SQLite WAL back into the database file and restart it, between two group
        commits, on a worker thread (`wal_bound`); the writer also does so by itself whenever
        the WAL passes its bound. PostgreSQL needs nothing."""
        await self.group.checkpoint()

    async def ping(self) -> None:
        """Raise unless the database answers."""
        async with self.read() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self._erasure is not None:
            await self._erasure.aclose()
        await self.group.aclose()
        await self._reader.dispose()
        if self._writer is not self._reader:
            await self._writer.dispose()
