"""What the usage rollup's triggers cost each request's writes (SQLite).

    python bench/usage_rollup_writes.py [--requests 20000] [--batch 20]

A request writes its usage row twice: inserted (pending) when it starts, finished (status and
credits) when it ends; the roll-up's triggers add an upsert into `usage_rollups` to the second
(migration 0023_rollup_finished_rows; before it, an upsert to the first too, and a move between
groups to the second). Two copies of a freshly migrated database, one
with the triggers dropped, get the same rows through the same statements, in group-commit-sized
transactions (`--batch` requests each, WAL, synchronous=NORMAL as the gateway runs SQLite);
reported: CPU time per request, with and without the triggers.
"""

from __future__ import annotations

import argparse
import random
import secrets
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

INSERT = (
    "INSERT INTO usage_records (id, account_id, api_key_id, model, endpoint, credit_cost, status,"
    " error_code, provider, attempts, duration_ms, created_at)"
    " VALUES (?, ?, ?, ?, ?, 0, 'pending', NULL, NULL, 0, 0, ?)"
)
FINISH = (
    "UPDATE usage_records SET status = ?, credit_cost = ?, error_code = ?,"
    " provider = coalesce(?, provider), attempts = coalesce(?, attempts),"
    " duration_ms = coalesce(?, duration_ms) WHERE id = ?"
)


def _run(path: Path, requests: int, batch: int, accounts: list[str]) -> float:
    """CPU microseconds per request (insert, then finish)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    rng = random.Random(1)
    now = time.time()
    ids = [f"req_{secrets.token_hex(12)}" for _ in range(requests)]
    started = time.process_time()
    for start in range(0, requests, batch):
        chunk = ids[start : start + batch]
        db.execute("BEGIN IMMEDIATE")
        for request_id in chunk:
            now += 0.05
            db.execute(
                INSERT,
                (
                    request_id,
                    rng.choice(accounts),
                    "key_x",
                    "gpt-image-2",
                    "images.generations",
                    now,
                ),
            )
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        for request_id in chunk:
            db.execute(FINISH, ("succeeded", 40, None, "openai", 1, 900, request_id))
        db.execute("COMMIT")
    spent = time.process_time() - started
    db.close()
    return spent / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=20, help="requests per transaction")
    args = parser.parse_args()

    from reapi_server.migrate import upgrade_sync

    with tempfile.TemporaryDirectory(prefix="reapi-rollup-bench-") as tmp:
        base = Path(tmp) / "base.db"
        upgrade_sync(f"sqlite+aiosqlite:///{base}")
        db = sqlite3.connect(base)
        accounts = [f"acct_{i}" for i in range(50)]
        db.executemany(
            "INSERT INTO accounts (id, balance, reserved, created_at) VALUES (?, 0, 0, 1.0)",
            [(a,) for a in accounts],
        )
        db.commit()
        db.close()
        with_triggers, without = Path(tmp) / "with.db", Path(tmp) / "without.db"
        shutil.copy(base, with_triggers)
        shutil.copy(base, without)
        db = sqlite3.connect(without)
        for trigger in ("usage_rollup_insert", "usage_rollup_update", "usage_rollup_delete"):
            db.execute(f"DROP TRIGGER {trigger}")
        db.commit()
        db.close()
        results = {"without the triggers": [], "with the triggers": []}
        for _ in range(3):  # alternated, so that a busy moment of the machine hits both
            results["without the triggers"].append(
                _run(without, args.requests, args.batch, accounts)
            )
            results["with the triggers"].append(
                _run(with_triggers, args.requests, args.batch, accounts)
            )
        print(f"{args.requests:,} requests per run, {args.batch} per transaction, best of 3\n")
        print("| usage writes | CPU per request (µs) |")
        print("|---|---|")
        for name, runs in results.items():
            print(f"| {name} | {min(runs):.1f} |")


if __name__ == "__main__":
    main()
