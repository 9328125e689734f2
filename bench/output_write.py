"""CPU per small output written by the local store: on its writer thread (`LocalDiskStore.put`,
as the gateway does) against the same write made on the event loop itself (what the store did
before the sixth round of issue 15), one at a time (a request at a time) and 32 at once.

    python bench/output_write.py                 # 3 rounds of 2,000 writes each way
    python bench/output_write.py --writes 5000 --rounds 5

CPU is the process's (both threads) over the writes; the ways alternate within each round. The
body is the 4,182-byte PNG bench/gateway.py's upstream answers with; each write is a new task
output (a file straight under its name), deleted again between rounds.
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

from reapi_server.mirror import LocalDiskStore, local

#: As large as the PNG bench/gateway.py's upstream answers with.
PNG = os.urandom(4182)


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


async def main(writes: int, rounds: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="reapi-output-write-"))
    store = LocalDiskStore(root)
    store.prepare()
    results: dict[tuple[str, int], list[float]] = {}
    try:
        for round_ in range(rounds):
            for at_once in (1, 32):
                for way in ("thread", "loop"):
                    keys = _keys(round_ * 2 + (at_once > 1), way[0], writes)

                    def thread_write(key: str) -> Callable[[], Awaitable[object]]:
                        return lambda: store.put(key, PNG, "image/png")

                    def loop_write(key: str) -> Callable[[], Awaitable[object]]:
                        async def write() -> None:
                            target, output = store._target(key)
                            local._write_whole(target, local._header("image/png") + PNG, output)

                        return write

                    make = thread_write if way == "thread" else loop_write
                    cost = await _timed([make(key) for key in keys], at_once)
                    results.setdefault((way, at_once), []).append(cost)
            for shard in (root / "outputs").iterdir():
                for entry in shard.iterdir():
                    entry.unlink()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("| writes in flight | on the loop (µs CPU/write) | on the writer thread | difference |")
    print("|---|--:|--:|--:|")
    for at_once in (1, 32):
        loop_cost = statistics.median(results[("loop", at_once)])
        thread_cost = statistics.median(results[("thread", at_once)])
        print(
            f"| {at_once} | {loop_cost:.1f} | {thread_cost:.1f} | {thread_cost - loop_cost:+.1f} |"
        )
    print(f"\n({rounds} rounds of {writes} writes each way, medians)")


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
