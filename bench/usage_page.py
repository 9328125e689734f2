"""The usage page for a busy account: how long /dashboard/usage (and its neighbours) take to render
when the account has 100,000 usage rows in its 30 days.

    python bench/usage_page.py [--rows 100000] [--other-rows 100000] [--renders 60] [--postgres]

Seeds a fresh database (SQLite in a temporary data dir, or with --postgres a throwaway PostgreSQL
server from Debian's binaries, as the tests start one) through the gateway's own repository: one
account with three keys whose rows are spread over the last 30 days (keys 70/25/5 %, three models
60/30/10 %, 90 % succeeded, 8 % failed, 2 % running), and other accounts' rows interleaved in time,
as a shared database holds them. Then a signed-in browser session (an in-process ASGI client: the
page's own work, no network) renders each page `--renders` times after a warm-up; reported per
page: p50, p95 and max wall time, and the CPU time of this process per render (the database runs
in it for SQLite) and, with --postgres, of the PostgreSQL server's processes: figures a loaded
machine inflates less than wall time.

Not a timed test: the numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.server.postgres, for --postgres

DAY = 86_400.0
MODELS = (("gpt-image-2", "images.generations", 40), ("sim-video", "videos.create", 80))


def _choice(options: list[tuple[object, int]]) -> object:
    return random.choices([o for o, _ in options], [w for _, w in options])[0]


def _rows(account: str, keys: list[str], count: int, now: float) -> Iterator[dict[str, object]]:
    models = [("gpt-image-2", 60), ("sim-video", 30), ("seedream-4", 10)]
    statuses = [("succeeded", 90), ("failed", 8), ("pending", 2)]
    for _ in range(count):
        model = str(_choice(models))
        status = str(_choice(statuses))
        yield {
            "id": f"req_{secrets.token_hex(12)}",
            "account_id": account,
            "api_key_id": _choice([(keys[0], 70), (keys[1], 25), (keys[2], 5)]),
            "model": model,
            "endpoint": "videos.create" if model == "sim-video" else "images.generations",
            "credit_cost": random.choice((40, 80, 120)) if status == "succeeded" else 0,
            "status": status,
            "error_code": "upstream_error" if status == "failed" else None,
            "provider": "primary",
            "attempts": 1,
            "duration_ms": random.randint(300, 9000),
            "created_at": now - random.random() * 30 * DAY,
        }


async def _seed(rt: object, rows: int, other_rows: int, now: float) -> tuple[str, str]:
    """(the busy account's owner's user id, its account id)"""
    from sqlalchemy import insert, text

    from reapi_server.accounts.service import create_account
    from reapi_server.api_keys.service import issue_key
    from reapi_server.identity import repository as users
    from reapi_server.models import UsageRecord

    db = rt.db  # type: ignore[attr-defined]
    async with db.write() as session:
        account = await create_account(session, "busy@bench.local", credits_granted=0, now=now)
        keys = [
            (await issue_key(session, account.id, name=name, now=now))[0].id
            for name in ("production", "staging", "laptop")
        ]
        others = []
        for index in range(20):
            other = await create_account(
                session, f"other{index}@bench.local", credits_granted=0, now=now
            )
            others.append((other.id, [(await issue_key(session, other.id, now=now))[0].id] * 3))
        user = await users.find_user_by_email(session, "busy@bench.local")
        assert user is not None
    seeded = list(_rows(account.id, keys, rows, now))
    for index in range(other_rows):
        other_id, other_keys = others[index % len(others)]
        seeded.extend(_rows(other_id, other_keys, 1, now))
    seeded.sort(key=lambda row: float(row["created_at"]))  # type: ignore[arg-type]  # arrival order
    for start in range(0, len(seeded), 5000):
        async with db.write() as session:
            await session.execute(insert(UsageRecord), seeded[start : start + 5000])
    # A database in service has statistics, and (PostgreSQL) autovacuum has cleared the row
    # versions the rollup's upserts left behind.
    if db.is_postgres:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(db.url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as connection:
            await connection.execute(text("VACUUM ANALYZE"))
        await engine.dispose()
    else:
        async with db.write() as session:
            await session.execute(text("ANALYZE"))
    return user.id, account.id


def _summary(name: str, walls: list[float], cpus: list[float], db_cpu: float | None) -> str:
    walls.sort()
    p95 = walls[max(0, int(len(walls) * 0.95) - 1)]
    database = f" {db_cpu:.1f} |" if db_cpu is not None else ""
    return (
        f"| {name} | {statistics.median(walls):.1f} | {p95:.1f} | {walls[-1]:.1f} "
        f"| {statistics.median(cpus):.1f} |{database}"
    )


def _server_cpu_ms(data_dir: str) -> float:
    """CPU time so far of a PostgreSQL server: its postmaster and every backend (Linux /proc)."""
    postmaster = int(Path(data_dir, "postmaster.pid").read_text().split()[0])
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that just ended
        pid, parent = int(stat.parent.name), int(fields[1])
        if postmaster in (pid, parent):
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


async def _run(
    args: argparse.Namespace, database_url: str | None, data_dir: Path, server_dir: str | None
) -> None:
    import httpx

    from reapi_server.app import create_app
    from reapi_server.config import Settings
    from reapi_server.identity.sessions import Client
    from reapi_server.migrate import upgrade_sync

    overrides: dict[str, object] = {
        "data_dir": data_dir,
        "run_background_tasks": False,
        "secret_key": "bench-secret",
        "metrics_listen": "off",
        "public_base_url": "http://bench.local",
    }
    if database_url:
        overrides["database_url"] = database_url
    settings = Settings(**overrides)  # type: ignore[arg-type]
    await asyncio.to_thread(upgrade_sync, settings.resolved_database_url)
    app = create_app(settings, migrate=False)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    try:
        rt = app.state.runtime
        now = time.time()
        started = time.perf_counter()
        user_id, _ = await _seed(rt, args.rows, args.other_rows, now)
        print(
            f"seeded {args.rows:,} rows for the account and {args.other_rows:,} for others "
            f"in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        web = app.routes[-1].app.state.web
        from reapi_server.identity import repository as users

        async with rt.db.write() as session:
            user = await users.get_user(session, user_id)
            # What a sign-up records (the account was made as an operator makes one).
            await users.insert_consents(session, user_id, web.identity.config.consents(), now)
        signed_in = await web.identity.start_session(user, Client("127.0.0.1", "bench"))
        cookies = {web.cookies.session_name: signed_in.token}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench.local", cookies=cookies
        ) as client:
            first = await client.get("/dashboard/usage")
            assert first.status_code == 200, first.status_code
            older = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
            pages = {
                "/dashboard/usage (30 days, all rows)": "/dashboard/usage",
                "/dashboard/usage, page 2 (keyset)": older.replace("&amp;", "&"),
                "/dashboard/usage?model=sim-video": "/dashboard/usage?model=sim-video",
                "/dashboard/usage?status=failed": "/dashboard/usage?status=failed",
                "/dashboard (overview)": "/dashboard",
                "/api/usage (JSON, 100 rows + totals)": "/api/usage",
            }
            print(f"\nrenders per page: {args.renders} (after 5 warm-up renders)\n")
            extra, rule = (" PostgreSQL CPU mean (ms) |", "---|") if server_dir else ("", "")
            print(f"| page | p50 (ms) | p95 (ms) | max (ms) | CPU p50 (ms) |{extra}")
            print(f"|---|---|---|---|---|{rule}")
            for name, path in pages.items():
                for _ in range(5):
                    assert (await client.get(path)).status_code == 200
                walls, cpus = [], []
                # (CPU clocks tick every 10 ms: the server's is taken over all the renders)
                db_before = _server_cpu_ms(server_dir) if server_dir else 0.0
                for _ in range(args.renders):
                    wall, cpu = time.perf_counter(), time.process_time()
                    answer = await client.get(path)
                    walls.append((time.perf_counter() - wall) * 1000)
                    cpus.append((time.process_time() - cpu) * 1000)
                    assert answer.status_code == 200
                db_cpu = (
                    (_server_cpu_ms(server_dir) - db_before) / args.renders if server_dir else None
                )
                print(_summary(name, walls, cpus, db_cpu))
    finally:
        await lifespan.__aexit__(None, None, None)


@contextmanager
def _postgres() -> Iterator[tuple[str, str]]:
    from tests.server.postgres import PostgresServer, pg_bin

    bindir = pg_bin()
    if bindir is None:
        raise SystemExit("--postgres needs Debian's PostgreSQL (apt-get install postgresql)")
    server = PostgresServer(bindir)
    server.start()
    try:
        server.execute("CREATE DATABASE bench")
        yield server.url("bench"), server.data
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="the account's usage rows")
    parser.add_argument("--other-rows", type=int, default=100_000, help="other accounts' rows")
    parser.add_argument("--renders", type=int, default=60, help="timed renders per page")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the rows")
    args = parser.parse_args()
    random.seed(args.seed)
    os.environ.setdefault("REAPI_METRICS_LISTEN", "off")
    with tempfile.TemporaryDirectory(prefix="reapi-usage-bench-") as tmp:
        database = "PostgreSQL" if args.postgres else "SQLite"
        print(f"database: {database}; python {sys.version.split()[0]}")
        if args.postgres:
            with _postgres() as (url, server_dir):
                asyncio.run(_run(args, url, Path(tmp), server_dir))
        else:
            asyncio.run(_run(args, None, Path(tmp), None))


if __name__ == "__main__":
    main()
