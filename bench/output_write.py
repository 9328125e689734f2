"""CPU per small output written by the local store: on its writer thread (`LocalDiskStore.put`,
as the gateway does) against the same write made on the event loop itself (what the store did
before the sixth round of issue 15) and on a worker thread of its own per write
(`anyio.to_thread`), one at a time (a request at a time) and 32 at once.

    python bench/output_write.py                 # 3 rounds of 2,000 writes each way
    python bench/output_write.py --writes 5000 --rounds 5

CPU is the process's (both threads) over the writes; the ways take turns going first. The body
is as large as the PNG bench/gateway.py's upstream answers with; each write is a new task output
(a file straight under its name), all kept until the end: on ext4 without a journal a new inode
costs more for every inode deleted nearby in the last minutes, so deleting between rounds would
charge one round's deletions to the next. The file system's own CPU swings with whatever else
writes to (and deletes on) the disk, so each way is also timed with the write replaced by a call
that does nothing: what is left is the cost of the way there and back alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from _bench import unjournaled_note

from reapi_server.mirror import LocalDiskStore, local

#: As large as the PNG bench/gateway.py's upstream answers with.
PNG = os.urandom(4182)


WAYS = ("thread", "loop", "anyio")


def _keys(round_: int, way: str, count: int) -> list[str]:
    return [f"outputs/req_{round_:04x}{way}{n:020x}/0.png" for n in range(count)]


async def _timed(writes: list[Callable[[], Awaitable[object]]], at_once: int) -> float:
    """CPU microseconds per write, `at_once` writes in flight at a time."""
    start = time.process_time()
    for first in range(0, len(writes), at_once):
        batch = writes[first : first + at_once]
        if at_once == 1:
            await batch[0]()
        else:
            await asyncio.gather(*(write() for write in batch))
    return (time.process_time() - start) / len(writes) * 1e6


def _nothing(target: str, data: bytes, output: bool) -> None:
    """In place of the write: what is left is the cost of getting there and back."""


async def main(writes: int, rounds: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="reapi-output-write-"))
    store = LocalDiskStore(root)
    store.prepare()
    results: dict[tuple[str, str, int], list[float]] = {}
    try:
        for round_ in range(rounds):
            order = WAYS[round_ % 3 :] + WAYS[: round_ % 3]  # no way always first
            for kind, function in (("write", local._write_whole), ("bare", _nothing)):
                for at_once in (1, 32):
                    for way in order:
                        letter = "abc"[WAYS.index(way)]
                        keys = _keys(
                            round_ * 4 + (at_once > 1) * 2 + (kind == "bare"), letter, writes
                        )
                        writes_ = [_way(way, store, function, key) for key in keys]
                        cost = await _timed(writes_, at_once)
                        results.setdefault((kind, way, at_once), []).append(cost)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for kind, title in (("write", "the write"), ("bare", "the way there and back alone")):
        print(
            f"| {title}: in flight | on the loop (µs CPU) | on the writer thread "
            "| a worker thread each (anyio) |"
        )
        print("|---|--:|--:|--:|")
        for at_once in (1, 32):
            loop_cost, thread_cost, anyio_cost = (
                statistics.median(results[(kind, way, at_once)])
                for way in ("loop", "thread", "anyio")
            )
            print(f"| {at_once} | {loop_cost:.1f} | {thread_cost:.1f} | {anyio_cost:.1f} |")
        print()
    print(f"({rounds} rounds of {writes} writes each way, medians)")
    if (note := unjournaled_note(root.parent)) is not None:
        print(f"({note})")


def _way(
    way: str, store: LocalDiskStore, function: Callable[[str, bytes, bool], None], key: str
) -> Callable[[], Awaitable[object]]:
    async def write() -> None:
        target, output = store._target(key)
        data = local._header("image/png") + PNG
        if way == "loop":
            function(target, data, output)
        elif way == "thread":
            await store.writer.run(function, target, data, output)
        else:
            await anyio.to_thread.run_sync(function, target, data, output)

    return write


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(main(args.writes, args.rounds))
    except ImportError:
        asyncio.run(main(args.writes, args.rounds))
