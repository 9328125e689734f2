"""Payment records are kept 7 years (`payment_retention_days`), attached or detached, and the
retention job deletes them after that — and nothing younger (SQLite and PostgreSQL)."""

from sqlalchemy import select

from reapi_server.billing import repository as payments
from reapi_server.models import Payment
from reapi_server.retention import purge_once

YEAR = 365 * 86_400.0


async def _payment_ids(rt) -> set[str]:
    async with rt.db.read() as session:
        return set((await session.execute(select(Payment.id))).scalars())


async def test_payments_are_kept_seven_years_then_purged(db_web):
    rt = db_web.rt
    start = rt.now()
    account_id, _ = await db_web.account(credits=0)
    async with rt.db.write() as session:
        kept = await payments.insert(
            session,
            account_id=account_id,
            product="pack-small",
            credits=100,
            amount=500,
            currency="eur",
            status="paid",
            now=start,
        )
        detached = await payments.insert(
            session,
            account_id=account_id,
            product="pack-large",
            credits=1000,
            amount=4000,
            currency="eur",
            status="paid",
            now=start,
        )
        await payments.detach(session, [detached.id], now=start)  # as if deleted at once
        young = await payments.insert(
            session,
            account_id=account_id,
            product="pack-small",
            credits=100,
            amount=500,
            currency="eur",
            status="paid",
            now=start + 0.2 * YEAR,
        )
    assert rt.settings.payment_retention_days == 7 * 365 + 2

    rt.clock = lambda: start + 6.9 * YEAR
    report = await purge_once(rt)
    assert report.payments == 0
    assert await _payment_ids(rt) == {kept.id, detached.id, young.id}

    rt.clock = lambda: start + 7.01 * YEAR  # past 7 years and the leap days
    report = await purge_once(rt)
    assert report.payments == 2
    assert await _payment_ids(rt) == {young.id}
