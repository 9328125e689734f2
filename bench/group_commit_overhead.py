"""What the group committer's own Python costs per transaction on SQLite, with ops that do nothing.

    python bench/group_commit_overhead.py [--transactions 20000] [--repetitions 5]
        [--before /tmp/reapi-before/src]

Runs `Database.grouped` on a freshly migrated SQLite file (the gateway's own `Database`, uvloop)
with an op that does nothing, one at a time: `at once` (an opening op, committed in its caller's
task: every call after a pass of the event loop, as at one connection), `queued` (a closing op,
committed by the queue's runner in the next pass) and `a request`: one of each, as an image
request makes them at one connection (its hold, then its settlement: two transactions, the figure
per request). `bare` is the same transaction on `sqlite3` alone (BEGIN IMMEDIATE, the commit
marker's UPDATE, COMMIT): the difference is the committer's Python, the writer's turn and the
WAL's size check. Each figure is this process's CPU time per transaction (per request for `a
request`), the pass of the event loop between two calls included (the same in every column).
With `--before SRC` the same runs on another checkout's `src` too (in a child process with that
tree first on its path), interleaved with this one, repetition by repetition.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _bench import interleaved

MODES = ("at once", "queued", "a request", "bare")


async def _nothing(tx: Any) -> None:
    return None


async def _measure(database: str, transactions: int) -> dict[str, float]:
    from reapi_server.db import Database

    db = Database(f"sqlite+aiosqlite:///{database}")
    figures: dict[str, float] = {}
    try:
        for mode, kinds in (
            ("at once", (True,)),
            ("queued", (False,)),
            ("a request", (True, False)),
        ):
            for _ in range(200):  # warm: statements prepared, the marker row written
                for at_once in kinds:
                    await db.grouped(_nothing, account=None, at_once=at_once)
                await asyncio.sleep(0)
            before = db.group.transactions
            cpu = time.process_time()
            for _ in range(transactions):
                for at_once in kinds:
                    await db.grouped(_nothing, account=None, at_once=at_once)
                await asyncio.sleep(0)  # the pass ends: the next opening op may go at once
            cpu = time.process_time() - cpu
            assert db.group.transactions - before == transactions * len(kinds)
            figures[mode] = cpu / transactions * 1e6
    finally:
        await db.dispose()
    figures["bare"] = await _bare(database, transactions)
    return figures


async def _bare(database: str, transactions: int) -> float:
    connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    try:
        cursor = connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")  # as the gateway's writer (`db`)
        update = "UPDATE commit_markers SET seq = ?, updated_at = ? WHERE owner = ?"
        cursor.execute("INSERT OR REPLACE INTO commit_markers VALUES ('bare', 0, 0)")
        cpu = time.process_time()
        for seq in range(transactions):
            cursor.execute("BEGIN IMMEDIATE")
            cursor.execute(update, (seq, time.time(), "bare"))
            cursor.execute("COMMIT")
            await asyncio.sleep(0)
        return (time.process_time() - cpu) / transactions * 1e6
    finally:
        connection.close()


def _child(database: str, transactions: int) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - the gateway's own loop when it is there
        figures = asyncio.run(_measure(database, transactions))
    else:
        figures = uvloop.run(_measure(database, transactions))
    print(json.dumps(figures))


def _run(src: str | None, database: str, transactions: int) -> dict[str, float]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, __file__, "--child", database, "--transactions", str(transactions)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return figures


def _migrate(workdir: str) -> str:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REAPI_")},
        "REAPI_DATA_DIR": workdir,
        "REAPI_LOG_LEVEL": "WARNING",
        "REAPI_METRICS_LISTEN": "off",
    }
    cli = str(Path(sys.executable).with_name("reapi-server"))
    subprocess.run([cli, "migrate"], env=env, check=True, capture_output=True)
    return str(Path(workdir) / "reapi.db")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=20_000)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--before", help="another checkout's `src`, measured interleaved")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.transactions)
        return
    with tempfile.TemporaryDirectory() as workdir:
        database = _migrate(workdir)
        runs = interleaved(
            args.before, args.repetitions, lambda src: _run(src, database, args.transactions)
        )
    print("| code | mode | CPU per transaction (us), median | runs |")
    print("|---|---|--:|---|")
    for mode in MODES:
        for name, done in runs.items():
            values = [r[mode] for r in done]
            print(
                f"| {name} | {mode} | {statistics.median(values):.1f} |"
                f" {', '.join(format(v, '.1f') for v in values)} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
