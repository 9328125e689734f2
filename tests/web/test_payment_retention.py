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


async def test_the_retention_job_clears_hosted_links_of_payments_detached_before(db_web):
    """Rows detached while detaching still kept Stripe's hosted invoice, PDF and receipt links
    (they show the buyer's name, email and card) lose them at the next run; attached rows keep
    theirs, and every row keeps its invoice id and number."""
    from sqlalchemy import update

    rt = db_web.rt
    account_id, _ = await db_web.account(credits=0)
    links = {
        "invoice_url": "https://invoice.stripe.com/i/acct_1/live_x",
        "invoice_pdf_url": "https://pay.stripe.com/invoice/acct_1/live_x/pdf",
        "receipt_url": "https://pay.stripe.com/receipts/payment/x",
    }
    made = []
    async with rt.db.write() as session:
        for _ in range(2):
            payment = await payments.insert(
                session,
                account_id=account_id,
                product="pack-small",
                credits=100,
                amount=500,
                currency="eur",
                status="paid",
                now=rt.now(),
                invoice_id="in_1",
            )
            made.append(payment.id)
        await session.execute(
            update(Payment).values(invoice_number="ABC-0001", **links)  # as before the fix
        )
        await session.execute(
            update(Payment)
            .where(Payment.id == made[0])
            .values(account_id=None, detached_at=rt.now())
        )
    await purge_once(rt)
    async with rt.db.read() as session:
        detached = await session.get(Payment, made[0])
        attached = await session.get(Payment, made[1])
    assert (detached.invoice_url, detached.invoice_pdf_url, detached.receipt_url) == (None,) * 3
    assert (detached.invoice_id, detached.invoice_number) == ("in_1", "ABC-0001")
    assert attached.invoice_url == links["invoice_url"] and attached.receipt_url
