"""Buying a credit pack: a top-up of ours, then a Stripe Checkout Session for it.

The price is the server's (`billing.packs`): the browser only names a pack. The session
carries our top-up id as `client_reference_id` and in the metadata of the session and of its
PaymentIntent (refunds and disputes name the PaymentIntent, so they lead back to it), reuses the
account's Stripe customer once there is one, creates an invoice for every purchase, and asks
for Stripe Tax and tax IDs when the operator turned them on. It is created with the top-up's id
as idempotency key: a retried call never makes a second session.

When its account is deleted, a session still open is expired at Stripe
(`expire_open_checkouts`): paid afterwards, it would take money for credits that have no
account to go to, and no record of ours would say so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..errors import GatewayError
from ..ids import new_id
from ..models import TopUp
from . import repository
from .service import Billing
from .settings import CreditPack
from .stripe_api import BillingUnavailable
from .throttles import checkout_counters, take_all

__all__ = [
    "CheckoutStarted",
    "UnknownPack",
    "expire_open_checkouts",
    "open_top_up",
    "start_checkout",
]

log = logging.getLogger("reapi_server.billing")


def open_top_up(
    account_id: str, pack: CreditPack, *, kind: str, now: float, save_card: bool = False
) -> TopUp:
    """A new top-up of `pack` (a Checkout purchase or an automatic charge), not paid yet: its
    price and credits are the server's pack, never the browser's."""
    return TopUp(
        id=new_id("tu"),
        account_id=account_id,
        kind=kind,
        pack_id=pack.id,
        product=pack.name,
        credits=pack.credits,
        amount=pack.unit_amount,
        currency=pack.currency,
        status="open",
        save_card=save_card,
        created_at=now,
    )


SUCCESS_PATH = "/dashboard/billing/success"
CANCEL_PATH = "/dashboard/billing/cancel"


class UnknownPack(GatewayError):
    default_code = "unknown_pack"


@dataclass(frozen=True, slots=True)
class CheckoutStarted:
    top_up_id: str
    session_id: str
    #: Stripe's hosted payment page.
    url: str


def session_params(
    billing: Billing,
    pack: CreditPack,
    top_up_id: str,
    *,
    account_id: str,
    email: str,
    customer_id: str | None,
    save_card: bool,
) -> dict[str, Any]:
    settings = billing.settings
    metadata = {"top_up_id": top_up_id, "account_id": account_id, "pack_id": pack.id}
    intent_data: dict[str, Any] = {"metadata": metadata}
    if save_card:
        intent_data["setup_future_usage"] = "off_session"
    back = billing.links.page
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": pack.currency,
                    "unit_amount": pack.unit_amount,
                    "product_data": {"name": pack.name},
                },
            }
        ],
        "client_reference_id": top_up_id,
        "metadata": metadata,
        "payment_intent_data": intent_data,
        "invoice_creation": {"enabled": True, "invoice_data": {"metadata": metadata}},
        "success_url": back(SUCCESS_PATH, top_up=top_up_id),
        "cancel_url": back(CANCEL_PATH, top_up=top_up_id),
    }
    if customer_id is not None:
        params["customer"] = customer_id
        update = {}
        if settings.automatic_tax:
            update["address"] = "auto"  # Stripe Tax reads the address Checkout collects
        if settings.tax_id_collection:
            update["name"] = "auto"  # a business name goes with its tax ID
        if update:
            params["customer_update"] = update
    else:
        params["customer_email"] = email
        params["customer_creation"] = "always"
    if settings.automatic_tax:
        params["automatic_tax"] = {"enabled": True}
    if settings.tax_id_collection:
        params["tax_id_collection"] = {"enabled": True}
    return params


async def start_checkout(
    billing: Billing,
    *,
    account_id: str,
    email: str,
    pack_id: str,
    save_card: bool = False,
    address: str | None = None,
) -> CheckoutStarted:
    """Record the top-up, create its Checkout Session: where to send the buyer. At most
    `billing.checkout_limit` an hour for the account (and `checkout_limit_per_address` for the
    client `address`, when given), else `RateLimited`."""
    pack = billing.settings.pack(pack_id)
    if pack is None:
        raise UnknownPack("there is no such credit pack", param="pack")
    api = billing.stripe()
    now = billing.clock()
    await take_all(
        billing.db,
        checkout_counters(billing.settings, account_id, address),
        now,
        message="Too many payments were started in the last hour. Try again later.",
        code="too_many_checkouts",
    )
    top_up = open_top_up(account_id, pack, kind="checkout", now=now, save_card=save_card)
    async with billing.db.write() as session:
        profile = await repository.profile(session, account_id)
        customer_id = profile.stripe_customer_id if profile is not None else None
        await repository.insert_top_up(session, top_up)
    params = session_params(
        billing,
        pack,
        top_up.id,
        account_id=account_id,
        email=email,
        customer_id=customer_id,
        save_card=save_card,
    )
    failure: BillingUnavailable | None = None
    try:
        created = await api.create_checkout_session(params, idempotency_key=top_up.id)
    except BillingUnavailable as error:
        failure = error
    async with billing.db.write() as session:
        row = await repository.get_top_up(session, top_up.id)
        assert row is not None
        if failure is not None:
            row.status, row.failure_code, row.closed_at = "failed", failure.code, now
        else:
            row.stripe_checkout_session_id = str(created["id"])
    if failure is not None:
        raise failure
    return CheckoutStarted(top_up.id, str(created["id"]), str(created["url"]))


async def expire_open_checkouts(billing: Billing, account_id: str) -> int:
    """Expire the account's Checkout Sessions still open (it is being deleted); how many.
    Best effort: one Stripe refuses (paid meanwhile, expired already) or cannot be reached for
    is left as it is, and the deletion goes on."""
    if billing.api is None:
        return 0
    async with billing.db.read() as session:
        found = await repository.open_checkout_sessions(session, account_id)
    expired = 0
    for session_id in found:
        try:
            await billing.api.expire_checkout_session(session_id)
        except Exception as error:  # Stripe's refusal or an outage: never the deletion's end
            log.warning("checkout not expired", extra={"code": type(error).__name__})
            continue
        expired += 1
    return expired
