"""The writer's turn on a SQLite file, shared by every process that writes it (`serve --workers
N`, an administration command beside a running gateway).

SQLite lets one writer in at a time. Another process's `BEGIN IMMEDIATE` fails at once with
SQLITE_BUSY (the writer connections' `busy_timeout` is 0: SQLite's busy handler would sleep on
the event loop), and retrying with sleeps of 1, 2, 4 … 50 ms waited far longer than the lock is
held (a fraction of a millisecond): with two workers under load each worker's writer slept
through ~15% of the time while the file was free, and its requests waited with it.

So a writer first takes an exclusive `flock` on a file beside the database (`<database>-writer`)
for as long as its transaction (or checkpoint) lasts. Free, as it nearly always is, that is one
system call. Held by another process, a worker thread blocks in `flock` and the kernel wakes it
the moment the holder lets go; the event loop serves other requests meanwhile, and what queues
for the writer joins the next transaction. The kernel drops the lock of a process that dies.
SQLite's lock stays the rule: a writer outside this protocol (the `sqlite3` shell, say) still
makes `BEGIN IMMEDIATE` fail and the writer retry, as before; and a wait for the file lock that
outlasts the busy timeout (a holder that hangs) gives up on it and leaves the writer to SQLite's
lock, so that errors come where and as they came before.

Within a process an `asyncio.Lock` orders the turn first (the file lock belongs to the process's
open file, which its own tasks share).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from types import TracebackType

import anyio

from .private import PRIVATE_FILE

__all__ = ["SUFFIX", "WriterTurn"]

#: The suffix of the lock file, beside the database's own -wal and -shm.
SUFFIX = "-writer"

#: Forks this process came through: a descriptor opened before the last one is the parent's
#: (counted, rather than `os.getpid()` compared on every turn: a system call each).
_forks = [0]
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


class WriterTurn:
    """`async with turn:` (or `acquire`/`release`, as an `asyncio.Lock`) holds the writer's
    turn; `database`: the SQLite file's path, or None for a database no other process can open
    (in memory)."""

    def __init__(self, database: str | None, timeout: float = 30.0) -> None:
        self._local = asyncio.Lock()
        self._path = None if database is None else database + SUFFIX
        self._timeout = timeout
        #: The lock file, opened once per process (`_descriptor`), and after which fork.
        self._fd: int | None = None
        self._opened_after = 0
        #: The descriptor whose lock this turn holds (one of its own after a wait), if any.
        self._held: int | None = None
        #: Turns taken after waiting for another process (for tests and the benchmarks).
        self.waits = 0

    def locked(self) -> bool:
        return self._local.locked()

    async def acquire(self) -> None:
        await self._local.acquire()
        try:
            await self._take_file()
        except BaseException:
            self._local.release()
            raise

    def release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            fcntl.flock(held, fcntl.LOCK_UN)
            if held != self._fd:
                os.close(held)
        self._local.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def _descriptor(self) -> int | None:
        """The lock file, opened on first use (and again in a forked child, whose inherited
        descriptor would share the parent's lock); None where it cannot be made."""
        if self._path is None:
            return None
        if self._fd is None or self._opened_after != _forks[0]:
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
            except OSError:
                self._path = None  # a read-only folder: SQLite's lock alone, as before
                return None
            self._opened_after = _forks[0]
        return self._fd

    async def _take_file(self) -> None:
        fd = self._descriptor()
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            self._held = fd
            return
        # Another process has the turn: wait for it on a descriptor of this wait's own, which
        # a wait given up on can let go of without touching anyone else's lock.
        assert self._path is not None
        claim = _Claim(os.open(self._path, os.O_RDWR | os.O_CLOEXEC))
        try:
            with anyio.move_on_after(self._timeout):
                await anyio.to_thread.run_sync(claim.take, abandon_on_cancel=True)
        except BaseException:
            if claim.settle():
                os.close(claim.fd)  # taken as the wait was cancelled: closing lets it go
            raise
        if claim.settle():
            self._held = claim.fd
            self.waits += 1
        # Else the wait outlasted the busy timeout: the turn goes on without the file lock, and
        # SQLite's own lock decides, as for a writer outside this protocol (the writer retries
        # it for its busy timeout, then fails with SQLITE_BUSY: `database_unavailable`).


class _Claim:
    """One wait for the lock on a worker thread, which the waiting task may give up on: the
    thread and the task agree, under a lock of their own, on who lets the lock go."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._agree = threading.Lock()
        self._taken = False
        self._given_up = False

    def take(self) -> None:
        """On the worker thread: block until the lock is ours."""
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        with self._agree:
            self._taken = True
            if self._given_up:
                os.close(self.fd)  # closing lets the lock go

    def settle(self) -> bool:
        """On the event loop, once the wait ended or timed out: True if the lock is held (the
        caller's now); False after giving up (the thread lets go if it takes it later)."""
        with self._agree:
            if self._taken:
                return True
            self._given_up = True
            return False
