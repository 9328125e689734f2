"""A live gateway (uvicorn on loopback, background loops running) with billing pointed at the
Stripe simulator, which delivers its signed webhooks to the gateway over real sockets.

The test side has its own `Database` and `Billing` on the same database and simulator (the
gateway's live in its server thread's event loop)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, select
from tests.web.helpers import Mail, read_mail
from tests.web.live import LiveWeb, live_web_server

from reapi_server.accounts.service import create_account
from reapi_server.billing.checkout import CheckoutStarted, start_checkout
from reapi_server.billing.service import Billing
from reapi_server.billing.settings import BillingSettings, CreditPack
from reapi_server.config import Settings
from reapi_server.db import Database
from reapi_server.models import Account, LedgerEntry, OutboxMessage, Payment, StripeEvent, TopUp
from reapi_server.testing.stripe_sim import StripeSimulator

SECRET = "whsec_reapi_gateway_test"
PACKS = [
    CreditPack(id="starter", name="1,000 credits", credits=1000, unit_amount=1000, currency="eur"),
    CreditPack(id="large", name="10,000 credits", credits=10000, unit_amount=9000, currency="eur"),
    CreditPack(
        id="starter-usd", name="1,000 credits", credits=1000, unit_amount=1100, currency="usd"
    ),
]


def billing_settings(sim: StripeSimulator, **overrides: Any) -> BillingSettings:
    values: dict[str, Any] = {
        "stripe_secret_key": SecretStr(sim.secret_key),
        "stripe_webhook_secrets": [SecretStr(SECRET)],
        "stripe_api_base": sim.base_url,
        "packs": PACKS,
        "event_retry_interval": 0.2,
        "auto_top_up_interval": 0.5,
        "success_wait_seconds": 2.0,
    }
    values.update(overrides)
    return BillingSettings(**values)


@dataclass
class LiveBilling:
    sim: StripeSimulator
    live: LiveWeb
    db: Database
    #: The test side's own (same settings, database and simulator as the gateway's).
    billing: Billing
    endpoint_id: str

    @property
    def base_url(self) -> str:
        return self.live.base_url

    async def person(self, email: str | None = None, credits: int = 0) -> str:
        """A verified person owning an account: the account id."""
        email = email or f"buyer-{time.monotonic_ns()}@example.com"
        async with self.db.write() as session:
            account = await create_account(session, email, credits_granted=credits, now=time.time())
        return account.id

    async def email_of(self, account_id: str) -> str:
        from reapi_server.accounts import repository as accounts

        async with self.db.read() as session:
            email = await accounts.owner_email(session, account_id)
        assert email is not None
        return email

    async def checkout(
        self, account_id: str, pack: str = "starter", *, save_card: bool = False
    ) -> CheckoutStarted:
        return await start_checkout(
            self.billing,
            account_id=account_id,
            email=await self.email_of(account_id),
            pack_id=pack,
            save_card=save_card,
        )

    async def idle(self, seconds: float = 15.0) -> None:
        """Every delivery answered (or given up), and no event left unhandled that the
        gateway's retry loop could still apply."""
        await asyncio.to_thread(self.sim.wait_idle, seconds)

    async def wait_until(self, check: Any, seconds: float = 15.0) -> Any:
        deadline = time.monotonic() + seconds
        while True:
            value = await check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached in {seconds} s: {check.__name__}")
            await asyncio.sleep(0.05)

    async def state(self, account_id: str) -> tuple[int, int, int]:
        """(balance, reserved, debt), checked against the ledger's sums (one statement: one
        snapshot, while the gateway writes)."""

        def total(column: Any) -> Any:
            return (
                select(func.coalesce(func.sum(column), 0))
                .where(LedgerEntry.account_id == account_id)
                .scalar_subquery()
            )

        async with self.db.read() as session:
            row = (
                await session.execute(
                    select(
                        Account.balance,
                        Account.reserved,
                        Account.debt,
                        total(LedgerEntry.amount),
                        total(LedgerEntry.reserved_delta),
                        total(LedgerEntry.debt_delta),
                    ).where(Account.id == account_id)
                )
            ).one()
        balance, reserved, owed, *sums = (int(v) for v in row)
        assert [balance, reserved, owed] == sums, f"account {row[:3]} != ledger sums {sums}"
        return balance, reserved, owed

    async def ledger_kinds(self, account_id: str) -> list[tuple[str, int]]:
        async with self.db.read() as session:
            rows = await session.execute(
                select(LedgerEntry.kind, LedgerEntry.amount)
                .where(LedgerEntry.account_id == account_id, LedgerEntry.source_id.is_not(None))
                .order_by(LedgerEntry.id)
            )
        return [(str(kind), int(amount)) for kind, amount in rows]

    async def payments(self, account_id: str) -> list[Payment]:
        async with self.db.read() as session:
            rows = await session.execute(
                select(Payment).where(Payment.account_id == account_id).order_by(Payment.created_at)
            )
            return list(rows.scalars())

    async def top_up(self, top_up_id: str) -> TopUp:
        async with self.db.read() as session:
            found = await session.get(TopUp, top_up_id)
        assert found is not None
        return found

    async def unhandled(self) -> int:
        async with self.db.read() as session:
            result = await session.execute(
                select(func.count())
                .select_from(StripeEvent)
                .where(StripeEvent.handled_at.is_(None))
            )
        return int(result.scalar_one())

    async def mail(self, template: str) -> list[OutboxMessage]:
        """The outbox rows of this template (their bodies go once sent: see `mail_files`)."""
        async with self.db.read() as session:
            rows = await session.execute(
                select(OutboxMessage).where(OutboxMessage.template == template)
            )
            return list(rows.scalars())

    async def mail_files(self, to: str, count: int = 1) -> list[Mail]:
        """Until `count` messages to `to` are in <data_dir>/mail/ (the outbox loop sent them)."""

        async def arrived() -> list[Mail]:
            found = [m for m in read_mail(self.live.mail_dir) if m.to == to]
            return found if len(found) >= count else []

        found: list[Mail] = await self.wait_until(arrived)
        return found

    async def paid(self, account_id: str, credits: int) -> None:
        """Until the account's balance is `credits` (the webhook arrived and was applied)."""

        async def reached() -> bool:
            return (await self.state(account_id))[0] == credits

        await self.wait_until(reached)


@asynccontextmanager
async def live_billing(
    data_dir: Path,
    template: Path,
    *,
    database_url: str | None = None,
    retry_delays: tuple[float, ...] = (0.2, 0.4, 0.8, 1.6),
    **billing_overrides: Any,
) -> AsyncIterator[LiveBilling]:
    with StripeSimulator(retry_delays=retry_delays) as sim:
        billing = billing_settings(sim, **billing_overrides)
        extra: dict[str, Any] = {"billing": billing}
        if database_url is not None:
            extra["database_url"] = database_url
        with live_web_server(data_dir, template, **extra) as live:
            endpoint = sim.add_webhook_endpoint(f"{live.base_url}/billing/stripe/webhook", SECRET)
            settings: Settings = live.runtime.settings
            db = Database(settings.resolved_database_url)
            test_side = Billing.from_settings(settings, db, time.time)
            try:
                yield LiveBilling(sim, live, db, test_side, endpoint.id)
            finally:
                await test_side.aclose()
                await db.dispose()
