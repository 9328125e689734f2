"""Per-request credit rows past `retention_days`: closed holds are deleted and the requests'
ledger rows folded into one `carried` row per account, with the account's balance, held credit
and debt unchanged and still the sums of its ledger; held holds and payment, grant and promotion
rows stay. On SQLite and PostgreSQL."""

import pytest
from sqlalchemy import func, select, update
from tests.server.helpers import auth

from reapi_server.credits import movements
from reapi_server.credits import repository as credit_rows
from reapi_server.models import MAX_CREDITS, Account, CreditHold, LedgerEntry
from reapi_server.retention import purge_once

DAY = 86_400.0
PER_REQUEST = {"reserve", "settle", "release"}


async def _sums(rt, account_id: str) -> dict[str, tuple[int, int, int]]:
    """The account's (balance, reserved, debt), and the sums of its ledger's columns."""
    async with rt.db.read() as session:
        account = await session.get(Account, account_id)
        ledger = (
            await session.execute(
                select(
                    func.coalesce(func.sum(LedgerEntry.amount), 0),
                    func.coalesce(func.sum(LedgerEntry.reserved_delta), 0),
                    func.coalesce(func.sum(LedgerEntry.debt_delta), 0),
                ).where(LedgerEntry.account_id == account_id)
            )
        ).one()
    assert account is not None
    return {
        "account": (account.balance, account.reserved, account.debt),
        "ledger": tuple(int(x) for x in ledger),
    }


async def _ledger(rt, account_id: str) -> list[LedgerEntry]:
    async with rt.db.read() as session:
        return await credit_rows.ledger_for_account(session, account_id)


async def _holds(rt, account_id: str) -> list[CreditHold]:
    async with rt.db.read() as session:
        return await credit_rows.holds_for_account(session, account_id)


async def _request(gateway, key: str) -> str:
    answer = await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p"}, headers=auth(key)
    )
    assert answer.status_code == 200, answer.text
    return answer.headers["x-request-id"]


async def test_old_request_rows_go_and_the_sums_stay(db_gateway):
    rt = db_gateway.rt
    start = rt.now()
    rt.clock = lambda: start
    account, key = await db_gateway.account(credits=10_000)
    old = [await _request(db_gateway, key) for _ in range(2)]
    async with rt.db.write() as session:
        # A request that never ended: its hold stays held, whatever its age.
        await credit_rows.reserve(
            session, account, 70, purpose="video", request_id="req_held", expires_at=None, now=start
        )
        await credit_rows.grant(session, account, 500, start, kind="promo")
        await movements.add(
            session, account, 300, kind="purchase", source_id="pi_1:purchase", now=start
        )
    rt.clock = lambda: start + 2 * DAY
    young = await _request(db_gateway, key)
    async with rt.db.write() as session:  # a chargeback beyond the balance: debt
        await movements.take_back(
            session,
            account,
            20_000,
            kind="dispute",
            source_id="dp_1:taken",
            now=rt.now(),
            into_debt=True,
        )
    before = await _sums(rt, account)
    assert before["account"] == before["ledger"]
    assert before["account"][1] == 70 and before["account"][2] > 0
    old_kinds = [e.kind for e in await _ledger(rt, account) if e.created_at < start + DAY]
    assert (
        sum(kind in PER_REQUEST for kind in old_kinds) == 5
    )  # 2 requests' reserve and settle, 1 reserve

    rt.clock = lambda: start + 31 * DAY  # the old rows are 31 days old, the young ones 29
    report = await purge_once(rt)

    assert await _sums(rt, account) == before
    holds = await _holds(rt, account)
    assert sorted((h.request_id, h.status) for h in holds) == sorted(
        [("req_held", "held"), (young, "settled")]
    )
    assert not {h.request_id for h in holds} & set(old)
    ledger = await _ledger(rt, account)
    old_rows = [e for e in ledger if e.created_at < start + DAY]
    assert sorted(e.kind for e in old_rows) == ["carried", "grant", "promo", "purchase"]
    assert all(e.hold_id is None for e in old_rows)
    young_kinds = sorted(e.kind for e in ledger if e.created_at >= start + DAY)
    assert young_kinds == ["dispute", "reserve", "settle"]
    assert (report.credit_holds, report.ledger_rows) == (2, 4)  # 5 rows became 1

    rt.clock = lambda: start + 33 * DAY  # the young rows too: still one carried row
    await purge_once(rt)
    assert await _sums(rt, account) == before
    assert [h.request_id for h in await _holds(rt, account)] == ["req_held"]
    kinds = sorted(e.kind for e in await _ledger(rt, account))
    assert kinds == ["carried", "dispute", "grant", "promo", "purchase"]


async def test_every_account_in_batches_of_one(db_gateway):
    """Batches of one: each account still ends with one carried row, and nothing young goes."""
    rt = db_gateway.rt
    start = rt.now()
    rt.clock = lambda: start
    accounts = [await db_gateway.account(credits=1000) for _ in range(3)]
    for _ in range(2):
        for _, key in accounts:
            await _request(db_gateway, key)
    rt.clock = lambda: start + 2 * DAY
    for _, key in accounts:
        await _request(db_gateway, key)
    before = {account: await _sums(rt, account) for account, _ in accounts}
    rt.clock = lambda: start + 31 * DAY
    report = await purge_once(rt, batch=1)
    for account, _ in accounts:
        assert await _sums(rt, account) == before[account]
        kinds = sorted(e.kind for e in await _ledger(rt, account))
        assert kinds == ["carried", "grant", "reserve", "settle"]
        assert len(await _holds(rt, account)) == 1
    assert report.credit_holds == 6


async def test_holds_with_ids_from_before_ordered_ids_go_too(db_gateway):
    """Holds made by earlier versions have random ids: below the cutoff's ids or above the
    next day's, they go with the first run; in between, once the cutoff passes them."""
    rt = db_gateway.rt
    start = rt.now()
    account, _ = await db_gateway.account()
    ids = ["hold_" + "0" * 24, "hold_" + "f" * 24]
    async with rt.db.write() as session:
        for hold_id in ids:
            session.add(
                CreditHold(
                    id=hold_id,
                    account_id=account,
                    amount=5,
                    charged=5,
                    status="settled",
                    purpose="image",
                    request_id="req_legacy",
                    created_at=start,
                    closed_at=start,
                )
            )
    rt.clock = lambda: start + 29 * DAY
    await purge_once(rt)
    assert len(await _holds(rt, account)) == 2
    rt.clock = lambda: start + 31 * DAY
    await purge_once(rt)
    assert await _holds(rt, account) == []


async def test_sums_past_the_bound_are_carried_on_several_rows(db_gateway):
    """Rows each within ±MAX_CREDITS may sum past it: the carried rows split the sum."""
    rt = db_gateway.rt
    start = rt.now()
    account, _ = await db_gateway.account(credits=0)
    async with rt.db.write() as session:
        for kind, amounts in (
            ("grant", (MAX_CREDITS, MAX_CREDITS, MAX_CREDITS - 1)),
            ("settle", (-MAX_CREDITS, -MAX_CREDITS, -MAX_CREDITS + 1)),
        ):
            for amount in amounts:
                session.add(
                    LedgerEntry(
                        account_id=account,
                        kind=kind,
                        amount=amount,
                        reserved_delta=0,
                        created_at=start,
                    )
                )
    rt.clock = lambda: start + 31 * DAY
    await purge_once(rt)
    carried = [e.amount for e in await _ledger(rt, account) if e.kind == "carried"]
    assert sorted(carried) == [-MAX_CREDITS, -MAX_CREDITS, -MAX_CREDITS + 1]
    assert (await _sums(rt, account))["ledger"] == (0, 0, 0)


@pytest.mark.parametrize("status", ["settled", "released"])
async def test_a_closed_hold_goes_at_31_days_not_29(db_gateway, status):
    rt = db_gateway.rt
    start = rt.now()
    account, _ = await db_gateway.account()
    async with rt.db.write() as session:
        hold = await credit_rows.reserve(
            session, account, 10, purpose="image", request_id="req_x", expires_at=None, now=start
        )
        assert hold is not None
        await session.execute(
            update(CreditHold).where(CreditHold.id == hold).values(status=status, closed_at=start)
        )
    rt.clock = lambda: start + 29 * DAY
    await purge_once(rt)
    assert len(await _holds(rt, account)) == 1
    rt.clock = lambda: start + 31 * DAY
    await purge_once(rt)
    assert await _holds(rt, account) == []


async def test_two_processes_fold_each_row_once(db_gateway):
    """Two processes running the job at once, in batches of one: the sums stay, and every old
    per-request row is folded (a row another process folded first is not counted again)."""
    import asyncio

    from tests.server.test_videos import _second_runtime

    rt = db_gateway.rt
    start = rt.now()
    rt.clock = lambda: start
    accounts = [await db_gateway.account(credits=1000) for _ in range(2)]
    for _ in range(3):
        for _, key in accounts:
            await _request(db_gateway, key)
    before = {account: await _sums(rt, account) for account, _ in accounts}
    second = await _second_runtime(db_gateway, rt.settings.resolved_database_url)
    try:
        rt.clock = second.clock = lambda: start + 31 * DAY
        await asyncio.gather(purge_once(rt, batch=1), purge_once(second, batch=1))
    finally:
        await second.aclose()
    for account, _ in accounts:
        assert await _sums(rt, account) == before[account]
        kinds = {e.kind for e in await _ledger(rt, account)}
        assert kinds == {"carried", "grant"}
        assert await _holds(rt, account) == []
