"""Random hex digits for ids, drawn from the OS's random bytes a few kilobytes at a time.

Every image request made four ids of random digits (its request id, credit hold, output file
and the core's request key), each an `os.urandom` call: four `getrandom` system calls a request,
a tenth of a request's system calls at 32 connections (docs/benchmarks.md, "Fifteenth round").
The same bytes fetched 8 KiB at a time cost one system call per ~60 requests; they are as
unpredictable (each id gets digits no other id got, from the same source).

Each call takes a slot of its own: `itertools.count` hands out slot numbers atomically under
the GIL, so two threads never get the same digits, and no lock is taken. When the pool runs out
the caller puts a new one in place (two callers racing put two; slots taken from either were
still handed out once). A forked child draws a new pool at once: it must not repeat the digits
its parent goes on to use.
"""

from __future__ import annotations

import itertools
import os

__all__ = ["random_hex"]

#: Hex digits of one slot: the most one call takes from the pool (longer ones ask the OS).
SLOT = 64
#: Random bytes fetched at a time (16 KiB of hex digits: 256 slots).
POOL_BYTES = 8192

_pool: tuple[str, itertools.count[int]]


def _refill() -> None:
    global _pool
    _pool = (os.urandom(POOL_BYTES).hex(), itertools.count(0, SLOT))


def random_hex(digits: int) -> str:
    """`digits` random hex digits (0-9, a-f)."""
    if digits > SLOT:
        return os.urandom((digits + 1) // 2).hex()[:digits]
    while True:
        pool, slots = _pool
        start = next(slots)
        if start < len(pool):
            return pool[start : start + digits]
        _refill()


_refill()
os.register_at_fork(after_in_child=_refill)
