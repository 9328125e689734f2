"""The operator refunds through Stripe: `reapi-server payments refund|list` against a live
gateway's database and the Stripe simulator (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time

import pytest
from tests.server.billing_live import PACKS, SECRET, LiveBilling, live_billing
from typer.testing import CliRunner

from reapi_server.billing.operator import parse_money, refund_payment
from reapi_server.cli import app
from reapi_server.errors import GatewayError
from reapi_server.models import Account, LedgerEntry

runner = CliRunner()


@pytest.fixture
async def billing(tmp_path, migrated_template, database_url):
    data_dir = tmp_path / "live"
    async with live_billing(data_dir, migrated_template, database_url=database_url) as live:
        yield live


def _config(billing: LiveBilling, path) -> str:
    settings = billing.live.runtime.settings
    packs = "\n".join(
        f'[[billing.packs]]\nid = "{p.id}"\nname = "{p.name}"\ncredits = {p.credits}\n'
        f'unit_amount = {p.unit_amount}\ncurrency = "{p.currency}"\n'
        for p in PACKS
    )
    path.write_text(
        f'data_dir = "{settings.data_dir}"\n'
        f'database_url = "{settings.resolved_database_url}"\n'
        "[billing]\n"
        f'stripe_secret_key = "{billing.sim.secret_key}"\n'
        f'stripe_webhook_secrets = ["{SECRET}"]\n'
        f'stripe_api_base = "{billing.sim.base_url}"\n' + packs
    )
    return str(path)


async def _cli(*args: str) -> str:
    result = await asyncio.to_thread(runner.invoke, app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


async def test_refund_half_from_the_cli_then_the_rest(billing, tmp_path, monkeypatch):
    account = await billing.person()
    started = await billing.checkout(account)
    billing.sim.complete_session(started.session_id)
    await billing.paid(account, 1000)
    config = _config(billing, tmp_path / "reapi.toml")
    # `--config` sets REAPI_CONFIG for the process: gone again after this test.
    monkeypatch.setenv("REAPI_CONFIG", config)
    [payment] = await billing.payments(account)
    listed = await _cli("payments", "list", "--config", config)
    assert payment.id in listed and "10.00 EUR" in listed and "paid" in listed
    output = await _cli(
        "payments", "refund", "--payment", payment.id, "--amount", "5.00", "--config", config
    )
    assert "refunded 5.00 EUR" in output and "500 credits taken back" in output
    assert await billing.state(account) == (500, 0, 0)
    await billing.idle()  # the charge.refunded webhook arrives too: nothing more moves
    assert await billing.state(account) == (500, 0, 0)
    assert [r["amount"] for r in billing.sim.objects("refund")] == [500]
    too_much = await asyncio.to_thread(
        runner.invoke,
        app,
        ["payments", "refund", "--payment", payment.id, "--amount", "6", "--config", config],
    )
    assert too_much.exit_code == 1 and "at most 5.00 EUR" in too_much.output
    rest = await _cli("payments", "refund", "--payment", payment.id, "--config", config)
    assert "refunded 5.00 EUR" in rest
    assert await billing.state(account) == (0, 0, 0)
    assert "refunded 10.00 EUR" in await _cli("payments", "list", "--config", config)


async def test_spent_credit_is_waived_unless_the_operator_takes_it_back(billing):
    account = await billing.person()
    started = await billing.checkout(account)
    billing.sim.complete_session(started.session_id)
    await billing.paid(account, 1000)
    async with billing.db.write() as session:  # 900 spent
        (await session.get(Account, account)).balance = 100
        session.add(
            LedgerEntry(
                account_id=account, kind="settle", amount=-900, reserved_delta=0, created_at=1.0
            )
        )
    [payment] = await billing.payments(account)
    done = await refund_payment(billing.billing, payment.id, amount=500, take_back_spent=True)
    assert (done.taken, done.debt, done.waived) == (100, 400, 0)
    assert await billing.state(account) == (0, 0, 400)
    done = await refund_payment(billing.billing, payment.id)
    assert (done.taken, done.debt, done.waived) == (0, 0, 500)
    assert await billing.state(account) == (0, 0, 400)


def test_amounts_in_the_currency_unit():
    assert parse_money("5", "eur") == 500
    assert parse_money("5.5", "usd") == 550
    assert parse_money("1000", "jpy") == 1000
    assert parse_money("999999999999.99", "eur") == 99_999_999_999_999
    for bad in ("0", "-1", "5.555", "abc", "1.5", "NaN", "sNaN", "Infinity", "1e12", "1e30"):
        currency = "jpy" if bad == "1.5" else "eur"
        with pytest.raises(GatewayError):
            parse_money(bad, currency)


def test_a_huge_exponent_is_refused_before_any_work():
    """Turning `1e999999` into an integer takes tens of seconds (quadratic in the exponent),
    in the event loop: any signed-in person typed it as an automatic top-up's monthly cap."""
    started = time.process_time()
    for typed in ("1e999999", "9" * 5000, "1e-999999"):
        with pytest.raises(GatewayError):
            parse_money(typed, "eur")
    assert time.process_time() - started < 0.5


async def test_deletion_keeps_payments_seven_years_then_the_retention_job_purges_them(billing):
    from sqlalchemy import select
    from tests.conftest import two_host_catalog

    from reapi_server.accounts.personal_data import PersonalData
    from reapi_server.models import BillingProfile, Payment, Refund, TopUp
    from reapi_server.retention import purge_once
    from reapi_server.runtime import build_runtime

    account = await billing.person()
    started = await billing.checkout(account, save_card=True)
    billing.sim.complete_session(started.session_id)
    await billing.paid(account, 1000)
    [payment] = await billing.payments(account)
    await refund_payment(billing.billing, payment.id, amount=300)
    settings = billing.live.runtime.settings
    year = 365 * 86_400.0
    now = [payment.created_at + 1]
    rt = build_runtime(
        settings,
        catalog=two_host_catalog(),
        clock=lambda: now[0],
        secret=billing.live.runtime.secret,
    )
    try:
        people = PersonalData.for_runtime(rt)
        user_id = await people.user_id_for(await billing.email_of(account))
        assert user_id is not None
        await people.delete(user_id)
        async with billing.db.read() as session:
            kept = await session.get(Payment, payment.id)
            assert kept is not None and kept.account_id is None and kept.detached_at
            assert kept.stripe_customer_id and kept.invoice_id and kept.amount_refunded == 300
            assert len((await session.execute(select(Refund))).scalars().all()) == 1
            assert await session.get(BillingProfile, account) is None
            assert (await session.execute(select(TopUp))).first() is None
        now[0] = payment.created_at + 6.9 * year
        assert (await purge_once(rt)).payments == 0
        now[0] = payment.created_at + 7.01 * year
        assert (await purge_once(rt)).payments == 1
        async with billing.db.read() as session:
            assert await session.get(Payment, payment.id) is None
            assert (await session.execute(select(Refund))).first() is None
    finally:
        await rt.aclose()


async def test_an_operator_refund_of_held_credits_is_done_and_applied_once_they_close(billing):
    import time

    from reapi_server.credits import repository as credits

    account = await billing.person()
    started = await billing.checkout(account)
    billing.sim.complete_session(started.session_id)
    await billing.paid(account, 1000)
    async with billing.db.write() as session:  # a running job holds all of it
        hold = await credits.reserve(
            session,
            account,
            1000,
            purpose="video",
            request_id="req-held",
            expires_at=time.time() + 600,
            now=time.time(),
        )
    assert hold is not None
    [payment] = await billing.payments(account)
    done = await refund_payment(billing.billing, payment.id)  # the money went back: no error
    assert done.waiting and (done.taken, done.debt, done.waived) == (0, 0, 0)
    assert await billing.state(account) == (0, 1000, 0)
    async with billing.db.write() as session:  # the job is cancelled
        assert await credits.release(session, hold, time.time()) is not None
    billing.sim.resend(billing.sim.last_event("charge.refunded")["id"])
    await billing.idle()

    async def applied() -> bool:
        return await billing.unhandled() == 0

    await billing.wait_until(applied)
    assert await billing.state(account) == (0, 0, 0)
