"""What an image request's database writes cost on SQLite, without HTTP around them.

    python bench/db_hot_path.py [--requests 6000] [--concurrency 1,32] [--repetitions 3]
        [--page-sizes 1024,2048] [--frames] [--prefill 200000]

Runs the writes of `images.service.generate` through the group committer on a freshly
migrated database (the gateway's own `Database`, its settings and WAL bound): per request the
opening op (key counter, debit, hold, ledger row, pending usage row; committed at once when the
writer is idle) and, after one turn of the event loop, the closing op (the hold's settlement,
refund, ledger row, output row, usage row's finish). `--concurrency` requests run at a time.
Reported per request: CPU (this process, checkpoints included), transactions, and bytes
appended to the WAL. `--frames` first lists the b-trees (tables and indexes) each of one request's
two transactions writes a page of: at one connection every one of them is a page in the WAL; then,
at each `--concurrency`, the WAL frames per request of each b-tree over a run (page splits, the
header page of a growing file and pages shared by a batch's requests included). `--prefill`
first writes that many earlier requests' rows (usage row, hold, two ledger rows, output row),
spread over the last 30 days, so that the trees have the depth of a gateway in service: splits
and their frames are counted as they come there.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import provision_gateway
from sqlalchemy import text

from reapi_server.credits import repository as credit_rows
from reapi_server.credits.repository import KeySpend
from reapi_server.credits.service import hold_or_record_refusal
from reapi_server.db import Database
from reapi_server.group_commit import Tx
from reapi_server.ids import ordered_id
from reapi_server.mirror.outputs import MirroredFile
from reapi_server.mirror.repository import insert_outputs
from reapi_server.usage import repository as usage_rows
from reapi_server.usage.row import UsageRow

PRICE = 4


def wal_frames_bytes(path: str) -> int:
    """Bytes of the frames in the WAL since it last started over (those carrying its header's
    salt): what its transactions appended, whatever the file's size (it is reused)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return 0
    if len(data) < 32:
        return 0
    page = int.from_bytes(data[8:12], "big")
    salt = data[16:24]
    frame, offset = 24 + page, 32
    while offset + frame <= len(data) and data[offset + 8 : offset + 16] == salt:
        offset += frame
    return offset - 32


async def _request(db: Database, account: str, key: KeySpend) -> None:
    now = time.time()
    request_id = ordered_id("req", 20)
    usage = UsageRow(
        request_id, account, key.key_id, "gpt-image-2", "images.generations", 0, "pending",
        None, None, 0, 1, now,
    )  # fmt: skip

    async def open_request(tx: Tx) -> object:
        return await hold_or_record_refusal(
            tx, usage, PRICE, purpose="image", expires_at=now + 900, now=now, key=key
        )

    hold_id = await db.grouped(open_request, account=account, at_once=True)
    assert isinstance(hold_id, str), hold_id
    await asyncio.sleep(0)
    file_id = ordered_id("file", 37)
    files = [MirroredFile(file_id, request_id, f"outputs/{request_id}/0.png", "image/png", 4200,
                          "image")]  # fmt: skip

    async def close_request(tx: Tx) -> object:
        closed = await credit_rows.settle(tx, hold_id, PRICE, now)
        await insert_outputs(tx, files, account, now)
        await usage_rows.finish(
            tx, request_id, status="succeeded", credit_cost=PRICE, provider="openai",
            attempts=1, duration_ms=3,
        )  # fmt: skip
        return closed

    await db.grouped(close_request, account=account)


async def _run(url: str, requests: int, concurrency: int) -> dict[str, float]:
    db = Database(url)
    async with db.read() as session:
        row = (await session.execute(text("SELECT id, account_id FROM api_keys"))).one()
    key_id, account = str(row[0]), str(row[1])
    key = KeySpend(key_id, 0.0)
    wal = db.group._wal
    assert wal is not None
    wal_path = wal.database + "-wal"
    written, uncounted = 0, 0.0
    checkpoint = wal.checkpoint

    async def counted(mode: str = "RESTART") -> bool:
        nonlocal written, uncounted
        counting = time.process_time()
        appended = wal_frames_bytes(wal_path)
        uncounted += time.process_time() - counting  # the bench's own reading
        done = await checkpoint(mode)
        if done:
            written += appended
        return done

    wal.checkpoint = counted  # type: ignore[method-assign]
    restarted = await db.group.checkpoint()
    # After a completed checkpoint the next commit restarts the WAL, whose old frames (still
    # carrying its header's salt until then) are not this run's.
    written = 0 if restarted else -wal_frames_bytes(wal_path)
    uncounted = 0.0
    queue = iter(range(requests))

    async def worker() -> None:
        for _ in queue:
            await _request(db, account, key)

    transactions = db.group.transactions
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu - uncounted, time.perf_counter() - wall
    transactions = db.group.transactions - transactions
    written += wal_frames_bytes(wal_path)
    await db.dispose()
    return {
        "cpu_us": cpu / requests * 1e6,
        "wall_us": wall / requests * 1e6,
        "tx": transactions / requests,
        "wal_kib": written / requests / 1024,
    }


def _frames_by_tree(database: str) -> list[str]:
    """The b-tree (table or index) of each page in the WAL since it last started over."""
    data = Path(database + "-wal").read_bytes()
    page, salt = int.from_bytes(data[8:12], "big"), data[16:24]
    pages, offset = [], 32
    while offset + 24 + page <= len(data) and data[offset + 8 : offset + 16] == salt:
        pages.append(int.from_bytes(data[offset : offset + 4], "big"))
        offset += 24 + page
    with sqlite3.connect(database) as connection:
        trees = dict(connection.execute("SELECT pageno, name FROM dbstat"))
    return sorted(trees.get(number, f"page {number}") for number in pages)


async def _frames(url: str, database: str) -> list[list[str]]:
    """What each of one request's two transactions writes to the WAL (run alone, after 50
    requests), b-tree by b-tree."""
    db = Database(url)
    async with db.read() as session:
        row = (await session.execute(text("SELECT id, account_id FROM api_keys"))).one()
    key, account = KeySpend(str(row[0]), 0.0), str(row[1])
    for _ in range(50):
        await _request(db, account, key)
    group, found = db.group, []
    transaction = group._sqlite_transaction

    async def traced(connection: sqlite3.Connection, ops: Any, seq: int) -> Any:
        # The writer's busy timeout is 0: a checkpoint the WAL bound's thread still runs makes
        # this one answer "busy" at once, and the WAL would still hold the earlier requests.
        for _ in range(500):
            if not connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
                break
            await asyncio.sleep(0.01)
        results = await transaction(connection, ops, seq)
        found.append(_frames_by_tree(database))
        return results

    group._sqlite_transaction = traced  # type: ignore[method-assign]
    await _request(db, account, key)
    await db.dispose()
    return found


def _prefill(database: str, requests: int) -> None:
    """Rows of `requests` earlier requests of the bench's account and key, spread over the last
    30 days, written by plain SQL in one transaction (the roll-up's triggers run as usual)."""
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        account, key = connection.execute("SELECT account_id, id FROM api_keys").fetchone()
        start, step = time.time() - 30 * 86_400, 30 * 86_400 / max(requests, 1)
        connection.execute("BEGIN")
        connection.execute(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)"
            " INSERT INTO usage_records (id, account_id, api_key_id, model, endpoint,"
            " credit_cost, status, error_code, provider, attempts, duration_ms, created_at)"
            " SELECT printf('req_%011x%s', CAST((? + i * ?) * 1000 AS INTEGER),"
            " lower(hex(randomblob(10)))), ?, ?, 'gpt-image-2', 'images.generations', ?,"
            " 'succeeded', NULL, 'openai', 1, 3, ? + i * ? FROM n",
            (requests, start, step, account, key, PRICE, start, step),
        )
        connection.execute(
            "INSERT INTO credit_holds (id, account_id, amount, charged, status, purpose,"
            " request_id, expires_at, created_at, closed_at, api_key_id, period_start)"
            " SELECT 'hold_' || substr(id, 5, 11) || lower(hex(randomblob(12))), account_id,"
            " credit_cost, credit_cost, 'settled', 'image', id, created_at + 900, created_at,"
            " created_at + 1, api_key_id, 0 FROM usage_records ORDER BY created_at"
        )
        for kind, amount, reserved in (("reserve", -PRICE, PRICE), ("settle", 0, -PRICE)):
            connection.execute(
                "INSERT INTO credit_ledger (account_id, kind, amount, reserved_delta,"
                " debt_delta, hold_id, created_at) SELECT account_id, ?, ?, ?, 0, id, created_at"
                " FROM credit_holds ORDER BY created_at",
                (kind, amount, reserved),
            )
        connection.execute(
            "INSERT INTO stored_outputs (id, account_id, storage_key, content_type, size_bytes,"
            " kind, task_id, created_at) SELECT 'file_' || lower(hex(randomblob(18))),"
            " account_id, 'outputs/' || id || '/0.png', 'image/png', 4200, 'image', id,"
            " created_at FROM usage_records ORDER BY created_at"
        )
        connection.execute("COMMIT")
    finally:
        connection.close()


class _AppendedFrames:
    """The page numbers of the frames appended to the WAL since the last call, read from where
    the last call stopped (from the start again once SQLite restarted the WAL: a new salt)."""

    def __init__(self, database: str) -> None:
        self._wal = database + "-wal"
        self._salt, self._offset = b"", 32

    def __call__(self) -> list[int]:
        try:
            file = open(self._wal, "rb")  # noqa: SIM115 (closed below)
        except FileNotFoundError:
            return []
        with file:
            header = file.read(32)
            if len(header) < 32:
                return []
            page, salt = int.from_bytes(header[8:12], "big"), header[16:24]
            if salt != self._salt:
                self._salt, self._offset = salt, 32
            pages = []
            while True:
                frame = os.pread(file.fileno(), 24, self._offset)
                if len(frame) < 24 or frame[8:16] != salt:
                    return pages
                pages.append(int.from_bytes(frame[:4], "big"))
                self._offset += 24 + page


async def _frames_per_request(
    url: str, database: str, concurrency: int, requests: int
) -> tuple[dict[str, float], float]:
    """WAL frames per request of each b-tree over `requests` requests at `concurrency` (each
    transaction's frames read after it), and transactions per request. Pages are named by the
    b-tree that holds them at the end of the run (pages new to the file are named then too)."""
    db = Database(url)
    async with db.read() as session:
        row = (await session.execute(text("SELECT id, account_id FROM api_keys"))).one()
    key, account = KeySpend(str(row[0]), 0.0), str(row[1])
    group, pages = db.group, collections.Counter[int]()
    transaction, transactions = group._sqlite_transaction, 0
    appended = _AppendedFrames(database)

    async def traced(connection: sqlite3.Connection, ops: Any, seq: int) -> Any:
        nonlocal transactions
        appended()  # whatever came before (a checkpoint's restart is seen by its new salt)
        results = await transaction(connection, ops, seq)
        pages.update(appended())
        transactions += 1
        return results

    group._sqlite_transaction = traced  # type: ignore[method-assign]
    queue = iter(range(requests))

    async def worker() -> None:
        for _ in queue:
            await _request(db, account, key)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await db.dispose()
    with sqlite3.connect(database) as connection:
        trees = dict(connection.execute("SELECT pageno, name FROM dbstat"))
    counted = collections.Counter[str]()
    for number, n in pages.items():
        counted[trees.get(number, "page freed since")] += n
    return {tree: n / requests for tree, n in counted.items()}, transactions / requests


def _print_frames(name: str, found: dict[int, tuple[dict[str, float], float]]) -> None:
    levels = sorted(found)
    print(f"{name}: WAL frames per request, by b-tree")
    print(f"| b-tree | {' | '.join(f'c={c}' for c in levels)} |")
    print(f"|---|{'--:|' * len(levels)}")
    trees = {tree for per_tree, _ in found.values() for tree in per_tree}
    for tree in sorted(trees, key=lambda t: -sum(found[c][0].get(t, 0.0) for c in levels)):
        print(f"| {tree} | {' | '.join(f'{found[c][0].get(tree, 0.0):.2f}' for c in levels)} |")
    print(f"| **all** | {' | '.join(f'**{sum(found[c][0].values()):.2f}**' for c in levels)} |")
    print(f"| transactions | {' | '.join(f'{found[c][1]:.3f}' for c in levels)} |")
    print()


def _set_page_size(database: str, size: int) -> None:
    """Rewrite the database with pages of `size` bytes (SQLite changes it only outside WAL)."""
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=DELETE")
        connection.execute(f"PRAGMA page_size={size}")
        connection.execute("VACUUM")
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument(
        "--page-sizes",
        default="",
        help="also run on copies rewritten with these page sizes (bytes, comma-separated),"
        " interleaved with the database as migrated",
    )
    parser.add_argument(
        "--frames",
        action="store_true",
        help="print the b-trees each transaction writes, and the WAL frames per request of each",
    )
    parser.add_argument(
        "--prefill",
        type=int,
        default=0,
        help="earlier requests' rows written first (spread over 30 days): trees of that size",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("REAPI_")},
            "REAPI_DATA_DIR": workdir,
            "REAPI_LOG_LEVEL": "WARNING",
            "REAPI_METRICS_LISTEN": "off",
        }
        provision_gateway(env, "bench@example.com", {"bench": []})
        template = Path(workdir) / "reapi.db"
        if args.prefill:
            _prefill(str(template), args.prefill)
        databases = {"as migrated": str(template)}
        for size in [int(s) for s in args.page_sizes.split(",") if s]:
            copy = Path(workdir) / f"pages-{size}" / "reapi.db"
            copy.parent.mkdir()
            shutil.copy(template, copy)
            _set_page_size(str(copy), size)
            databases[f"{size}-byte pages"] = str(copy)
        if args.frames:
            for name, database in databases.items():
                opening, closing = asyncio.run(_frames(f"sqlite+aiosqlite:///{database}", database))
                for what, trees in (("opening", opening), ("closing", closing)):
                    print(f"{name}, {what} transaction: {len(trees)} pages: {', '.join(trees)}")
            print()
            levels = [int(c) for c in args.concurrency.split(",")]
            for name, database in databases.items():
                url = f"sqlite+aiosqlite:///{database}"
                found = {
                    c: asyncio.run(_frames_per_request(url, database, c, args.requests))
                    for c in levels
                }
                _print_frames(name, found)
        print(
            "| database | conc. | CPU per request (us) | runs | transactions per request |"
            " WAL per request (KiB) |"
        )
        print("|---|--:|--:|---|--:|--:|")
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in databases}
            for _ in range(args.repetitions):
                for name, database in databases.items():  # interleaved
                    url = f"sqlite+aiosqlite:///{database}"
                    runs[name].append(asyncio.run(_run(url, args.requests, concurrency)))
            for name, done in runs.items():
                median = {k: statistics.median(r[k] for r in done) for k in done[0]}
                print(
                    f"| {name} | {concurrency} | {median['cpu_us']:.0f} |"
                    f" {', '.join(format(r['cpu_us'], '.0f') for r in done)} |"
                    f" {median['tx']:.3f} | {median['wal_kib']:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
