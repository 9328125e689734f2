"""How long the writer waits at the WAL's checkpoints: requests one at a time, as at one connection.

    python bench/wal_copy.py [--requests 3000] [--repetitions 3] [--before /tmp/reapi-before/src]

Runs `Database.grouped` on a copy of a freshly migrated SQLite file (the gateway's own `Database`,
uvloop), one request at a time: its hold committed at once, then its settlement queued, each
writing ~14 WAL frames (a row with a 56 KB blob: about what an image request writes at one
connection, 28 frames), so that the WAL reaches its 16 MiB bound every ~145 requests, as in the
gateway. Per request: its wall time (both commits and the passes of the event loop between
them), the figures p50, p99, p99.9 and the slowest (ms); this process's CPU per request (ms, the
copies' worker thread included); how long each RESTART held the writer (median, slowest); how
many copies beside the commits and RESTARTs ran. With `--before SRC`
the same runs on another checkout's `src` too (a child process with that tree first on its
path), interleaved with this one, repetition by repetition.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _bench import interleaved
from group_commit_overhead import _migrate

_ROW = "INSERT INTO wal_copy_rows VALUES (randomblob(56000))"


async def _measure(database: str, requests: int) -> dict[str, float]:
    from sqlalchemy import text

    from reapi_server.db import Database
    from reapi_server.group_commit import Statement

    insert = Statement(text(_ROW))

    async def write(tx: Any) -> None:
        await tx.execute(insert, {})

    db = Database(f"sqlite+aiosqlite:///{database}")
    async with db.write() as session:
        await session.execute(text("CREATE TABLE wal_copy_rows (v BLOB)"))
    times: list[float] = []
    try:
        for _ in range(50):  # warm
            await db.grouped(write, account=None, at_once=True)
            await db.grouped(write, account=None)
            await asyncio.sleep(0)
        wal = db.group._wal
        assert wal is not None
        held: list[float] = []  # each RESTART's wall time: the writer waits for all of it
        restart = wal.checkpoint

        async def timed() -> bool:
            start = time.perf_counter()
            try:
                return await restart()
            finally:
                held.append(time.perf_counter() - start)

        wal.checkpoint = timed  # type: ignore[method-assign]
        restarts, copies = wal.completed, getattr(wal, "copies", 0)
        cpu = time.process_time()
        for _ in range(requests):
            start = time.perf_counter()
            await db.grouped(write, account=None, at_once=True)  # the hold
            await db.grouped(write, account=None)  # the settlement
            times.append(time.perf_counter() - start)
            await asyncio.sleep(0)  # the answer leaves; the next request comes
        cpu = time.process_time() - cpu
        restarts, copies = wal.completed - restarts, getattr(wal, "copies", 0) - copies
    finally:
        await db.dispose()
    times.sort()

    def at(share: float) -> float:
        return times[min(len(times) - 1, int(share * len(times)))] * 1e3

    return {
        "p50": at(0.5),
        "p99": at(0.99),
        "p99.9": at(0.999),
        "max": times[-1] * 1e3,
        "cpu": cpu / requests * 1e3,
        "restart ms": statistics.median(held) * 1e3 if held else 0.0,
        "slowest restart ms": max(held, default=0.0) * 1e3,
        "restarts": restarts,
        "copies": copies,
    }


def _child(database: str, requests: int) -> None:
    import uvloop

    print(json.dumps(uvloop.run(_measure(database, requests))))


def _run(src: str | None, template: str, requests: int) -> dict[str, float]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as workdir:
        database = str(Path(workdir) / "reapi.db")
        shutil.copy(template, database)
        out = subprocess.run(
            [sys.executable, __file__, "--child", database, "--requests", str(requests)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--before", help="another checkout's `src`, measured interleaved")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.requests)
        return
    with tempfile.TemporaryDirectory() as workdir:
        template = _migrate(workdir)
        runs = interleaved(
            args.before,
            args.repetitions,
            lambda src: _run(src, template, args.requests),
            echo=True,
        )
    keys = (
        "p50",
        "p99",
        "p99.9",
        "max",
        "cpu",
        "restart ms",
        "slowest restart ms",
        "restarts",
        "copies",
    )
    print("| code | " + " | ".join(keys) + " |")
    print("|---|" + "--:|" * len(keys))
    for name, done in runs.items():
        cells = []
        for key in keys:
            values = [r[key] for r in done]
            spread = f" ({min(values):.2f} to {max(values):.2f})" if len(values) > 1 else ""
            cells.append(f"{statistics.median(values):.2f}{spread}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
