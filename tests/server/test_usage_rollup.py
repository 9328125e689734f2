"""usage_rollups, kept by triggers, always equals a GROUP BY of the usage rows that are not
pending, whatever writes them (insert, a request's finish, the sweeper, retention, a deletion),
on SQLite and PostgreSQL; the totals read from it (and from the requests in flight) equal the
totals of the rows in every time zone; the migration counts the rows that were there before
it."""

from __future__ import annotations

import asyncio
import random
import secrets

from alembic import command
from sqlalchemy import delete, func, select, text, update
from tests.server.postgres import postgres_server  # noqa: F401  (fixture)
from tests.web.dashboard import ts, usage_row

from reapi_server.credits import repository as credit_rows
from reapi_server.credits.service import hold_or_record_refusal
from reapi_server.db import Database
from reapi_server.migrate import alembic_config, upgrade_sync
from reapi_server.models import ROLLUP_SLOT_SECONDS, Account, UsageRecord, UsageRollup
from reapi_server.retention import purge_once
from reapi_server.usage import report
from reapi_server.usage.calendar import DayRange, zone_named
from reapi_server.usage.filters import UsageFilter
from reapi_server.usage.repository import Finish, finish, insert
from reapi_server.usage.row import UsageRow


async def grouped_rows(db: Database) -> dict[tuple, tuple[int, int]]:
    async with db.read() as session:
        rows = (await session.execute(select(UsageRecord))).scalars().all()
    groups: dict[tuple, list[int]] = {}
    for row in rows:
        if row.status == "pending":  # a request in flight: not rolled up (migration 0023)
            continue
        group = (
            row.account_id,
            int(row.created_at // ROLLUP_SLOT_SECONDS),
            row.api_key_id or "",
            row.model,
            row.status,
        )
        counts = groups.setdefault(group, [0, 0])
        counts[0] += 1
        counts[1] += row.credit_cost
    return {group: (n, c) for group, (n, c) in groups.items()}


async def rollup(db: Database) -> dict[tuple, tuple[int, int]]:
    async with db.read() as session:
        rows = (await session.execute(select(UsageRollup))).scalars().all()
    return {
        (r.account_id, r.slot, r.api_key_id, r.model, r.status): (r.requests, r.credits)
        for r in rows
    }


async def test_the_rollup_follows_every_write_to_the_rows(db_gateway):
    rt = db_gateway.rt
    accounts = [(await db_gateway.account())[0] for _ in range(3)]
    base = ts("2027-01-10T00:00:00")
    rng = random.Random(5)
    rows = [
        usage_row(
            rng.choice(accounts),
            base + rng.random() * 3 * 86_400,
            api_key_id=rng.choice([None, "key_a", "key_b"]),
            model=rng.choice(["gpt-image-2", "sim-video"]),
            status="pending",
            credit_cost=0,
        )
        for _ in range(300)
    ]
    async with rt.db.write() as session:
        for row in rows:
            await insert(session, row)
    assert await rollup(rt.db) == await grouped_rows(rt.db)

    # Requests finish: charged, failed; a few are written twice (the second changes nothing).
    async with rt.db.write() as session:
        for row in rows[:200]:
            if rng.random() < 0.8:
                await finish(session, row.id, status="succeeded", credit_cost=rng.choice([40, 80]))
            else:
                await finish(session, row.id, status="failed", error_code="upstream_error")
        for row in rows[:20]:
            await finish(session, row.id, status="failed", error_code="interrupted")
    assert await rollup(rt.db) == await grouped_rows(rt.db)

    # Other columns change without moving a row between groups.
    async with rt.db.write() as session:
        await session.execute(update(UsageRecord).values(duration_ms=UsageRecord.duration_ms + 1))
    assert await rollup(rt.db) == await grouped_rows(rt.db)

    # Rows go: one by one, by retention (older than 30 days), with their account.
    async with rt.db.write() as session:
        await session.execute(
            delete(UsageRecord).where(UsageRecord.id.in_([r.id for r in rows[:7]]))
        )
    assert await rollup(rt.db) == await grouped_rows(rt.db)
    rt.clock = lambda: base + 30 * 86_400 + 86_400  # the first day is now past retention
    await purge_once(rt)
    assert await rollup(rt.db) == await grouped_rows(rt.db)
    async with rt.db.write() as session:
        await session.execute(delete(UsageRecord).where(UsageRecord.account_id == accounts[0]))
    assert await rollup(rt.db) == await grouped_rows(rt.db)
    assert all(n > 0 for n, _ in (await rollup(rt.db)).values())  # empty groups are gone


async def test_an_accounts_groups_go_with_it(db_gateway):
    rt = db_gateway.rt
    account, _ = await db_gateway.account()
    async with rt.db.write() as session:
        await insert(session, usage_row(account, ts("2027-01-10T00:00:00")))
    async with rt.db.write() as session:
        await session.execute(delete(UsageRecord).where(UsageRecord.account_id == account))
        await session.execute(
            text("DELETE FROM credit_ledger WHERE account_id = :a"), {"a": account}
        )
        await session.execute(text("DELETE FROM api_keys WHERE account_id = :a"), {"a": account})
        await session.execute(text("DELETE FROM memberships WHERE account_id = :a"), {"a": account})
        await session.execute(delete(Account).where(Account.id == account))
    assert await rollup(rt.db) == {}


async def test_totals_from_the_rollup_equal_totals_from_the_rows(db_gateway):
    rt = db_gateway.rt
    account, _ = await db_gateway.account()
    rng = random.Random(11)
    start = ts("2027-03-10T00:00:00")  # New York's spring change is on the 14th
    rows = [
        usage_row(
            account,
            start + rng.random() * 10 * 86_400,
            api_key_id=rng.choice([None, "key_a", "key_b"]),
            model=rng.choice(["gpt-image-2", "sim-video"]),
            status=rng.choice(["succeeded", "succeeded", "failed", "pending"]),
            credit_cost=rng.choice([0, 40, 80]),
        )
        for _ in range(400)
    ]
    # And rows on the edges of slots and days.
    rows += [usage_row(account, ts("2027-03-14T05:00:00") + d) for d in (-1, 0, 1)]
    rows += [usage_row(account, ts("2027-03-14T18:15:00") + d) for d in (-0.001, 0)]
    async with rt.db.write() as session:
        for row in rows:
            await insert(session, row)
            if row.status == "pending":  # a request in flight holds credit
                await session.execute(
                    text(_HELD), {"id": f"hold_{row.id}", "a": account, "r": row.id}
                )
    for zone in ("UTC", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe"):
        days = DayRange(
            DayRange.date_of_day_number(int(start // 86_400) + 1),
            DayRange.date_of_day_number(int(start // 86_400) + 8),
            zone_named(zone),
        )
        for only in ({}, {"key_id": "key_a"}, {"model": "sim-video"}, {"status": "failed"}):
            f = UsageFilter(account, days, **only)  # type: ignore[arg-type]
            async with rt.db.read() as session:
                fast = await report.totals(session, f)
                slow = await report.totals_from_rows(session, f)
            assert fast == slow, (zone, only)
            assert fast.requests > 0


_HELD = (
    "INSERT INTO credit_holds (id, account_id, amount, charged, status, purpose, request_id,"
    " expires_at, created_at) VALUES (:id, :a, 0, 0, 'held', 'image', :r, NULL, 0)"
)


async def test_a_request_in_flight_is_counted_without_the_rollup(db_gateway):
    """The hold's transaction writes the pending row and no roll-up group; the totals count
    the request all the same, and the roll-up has it once it is finished."""
    rt = db_gateway.rt
    account, _ = await db_gateway.account(credits=100)
    now = ts("2027-01-10T12:00:00")
    usage = UsageRow(
        "req_in_flight", account, None, "gpt-image-2", "images.generations", 0, "pending",
        None, None, 0, 1, now,
    )  # fmt: skip
    async with rt.db.write() as session:
        hold_id = await hold_or_record_refusal(
            session, usage, 40, purpose="image", expires_at=now + 60, now=now
        )
    assert isinstance(hold_id, str)
    assert await rollup(rt.db) == {}
    days = DayRange(
        DayRange.date_of_day_number(int(now // 86_400)),
        DayRange.date_of_day_number(int(now // 86_400)),
        zone_named("UTC"),
    )
    for only in ({}, {"status": "pending"}, {"model": "gpt-image-2"}, {"status": "failed"}):
        f = UsageFilter(account, days, **only)  # type: ignore[arg-type]
        async with rt.db.read() as session:
            assert await report.totals(session, f) == await report.totals_from_rows(session, f)
    async with rt.db.read() as session:
        assert (await report.totals(session, UsageFilter(account, days))).requests == 1
        other = UsageFilter((await db_gateway.account())[0], days)
        assert (await report.totals(session, other)).requests == 0
    async with rt.db.write() as session:
        done = Finish("req_in_flight", "succeeded")
        await credit_rows.settle(session, hold_id, 40, now, usage=done)
    assert await rollup(rt.db) == await grouped_rows(rt.db)
    assert sum(n for n, _ in (await rollup(rt.db)).values()) == 1
    async with rt.db.read() as session:
        assert (await report.totals(session, UsageFilter(account, days))).credits == 40


def test_the_migration_counts_the_rows_already_there(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    _check_backfill(url)


def test_the_migration_counts_the_rows_already_there_on_postgres(postgres_server):  # noqa: F811
    name = f"t_{secrets.token_hex(6)}"
    postgres_server.execute(f"CREATE DATABASE {name}")
    _check_backfill(postgres_server.url(name))


def _check_backfill(url: str) -> None:
    command.upgrade(alembic_config(url), "0008_admin")

    async def seed() -> None:
        db = Database(url)
        try:
            async with db.write() as session:
                await session.execute(
                    text(
                        "INSERT INTO accounts (id, balance, reserved, created_at)"
                        " VALUES ('acct_1', 0, 0, 1.0)"
                    )
                )
                for index in range(50):
                    await session.execute(
                        text(
                            "INSERT INTO usage_records (id, account_id, api_key_id, model,"
                            " endpoint, credit_cost, status, provider, attempts, duration_ms,"
                            " created_at) VALUES (:id, 'acct_1', :key, 'gpt-image-2',"
                            " 'images.generations', :cost, 'succeeded', 'p', 1, 1, :at)"
                        ),
                        {
                            "id": f"req_{index}",
                            "key": None if index % 3 else "key_x",
                            "cost": index,
                            "at": ts("2027-01-10T00:00:00") + index * 400.0,
                        },
                    )
        finally:
            await db.dispose()

    async def check() -> None:
        db = Database(url)
        try:
            assert await rollup(db) == await grouped_rows(db)
            async with db.read() as session:
                total = await session.execute(select(func.sum(UsageRollup.credits)))
            assert total.scalar() == sum(range(50))
        finally:
            await db.dispose()

    asyncio.run(seed())
    upgrade_sync(url)
    asyncio.run(check())
    # Down and up again: the triggers go and come back with the table.
    command.downgrade(alembic_config(url), "0008_admin")
    upgrade_sync(url)
    asyncio.run(check())


def test_0023_takes_pending_rows_out_and_its_downgrade_puts_them_back(tmp_path):
    _check_pending_groups(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")


def test_0023_takes_pending_rows_out_and_its_downgrade_puts_them_back_on_postgres(
    postgres_server,  # noqa: F811
):
    name = f"t_{secrets.token_hex(6)}"
    postgres_server.execute(f"CREATE DATABASE {name}")
    _check_pending_groups(postgres_server.url(name))


def _check_pending_groups(url: str) -> None:
    command.upgrade(alembic_config(url), "0022_session_step_up")
    at = ts("2027-01-10T00:00:00")

    async def write(sql: str, **values: object) -> None:
        db = Database(url)
        try:
            async with db.write() as session:
                await session.execute(text(sql), values)
        finally:
            await db.dispose()

    async def groups() -> dict[str, tuple[int, int]]:
        db = Database(url)
        try:
            async with db.read() as session:
                rows = await session.execute(select(UsageRollup))
                return {r.status: (r.requests, r.credits) for r in rows.scalars()}
        finally:
            await db.dispose()

    row = (
        "INSERT INTO usage_records (id, account_id, api_key_id, model, endpoint, credit_cost,"
        " status, provider, attempts, duration_ms, created_at) VALUES (:id, 'acct_1', NULL,"
        " 'gpt-image-2', 'images.generations', :cost, :status, 'p', 1, 1, :at)"
    )
    asyncio.run(
        write("INSERT INTO accounts (id, balance, reserved, created_at) VALUES ('acct_1', 0, 0, 1)")
    )
    asyncio.run(write(row, id="req_done", cost=40, status="succeeded", at=at))
    asyncio.run(write(row, id="req_running", cost=0, status="pending", at=at + 1))
    assert asyncio.run(groups()) == {"succeeded": (1, 40), "pending": (1, 0)}
    upgrade_sync(url)
    assert asyncio.run(groups()) == {"succeeded": (1, 40)}
    # The triggers now: a pending row is counted once finished, and a finished one goes.
    asyncio.run(write(row, id="req_new", cost=0, status="pending", at=at + 2))
    assert asyncio.run(groups()) == {"succeeded": (1, 40)}
    done = "UPDATE usage_records SET status = 'failed', credit_cost = 0 WHERE id = :id"
    asyncio.run(write(done, id="req_new"))
    assert asyncio.run(groups()) == {"succeeded": (1, 40), "failed": (1, 0)}
    asyncio.run(write("DELETE FROM usage_records WHERE id = :id", id="req_running"))
    asyncio.run(write("DELETE FROM usage_records WHERE id = :id", id="req_done"))
    assert asyncio.run(groups()) == {"failed": (1, 0)}
    asyncio.run(write(row, id="req_later", cost=0, status="pending", at=at + 3))
    command.downgrade(alembic_config(url), "0022_session_step_up")
    assert asyncio.run(groups()) == {"failed": (1, 0), "pending": (1, 0)}
    # 0013's triggers again: a pending row's insert is counted.
    asyncio.run(write(row, id="req_old_way", cost=0, status="pending", at=at + 4))
    assert asyncio.run(groups()) == {"failed": (1, 0), "pending": (2, 0)}
