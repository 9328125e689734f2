"""A top-up's money reaching an outcome: paid (credit the account), pending (a bank debit
settling), failed or expired.

Applied from what Stripe says now, fetched again (`Checkout` for a Checkout Session, `Charged`
for a PaymentIntent), never from an event's body: the four `checkout.session.*` events and the
two `payment_intent.*` ones all come down to "bring the top-up to the state Stripe is in", which
is the same whichever event, how often, in what order. Credit moves once: the top-up turns
`paid` once, and the ledger row's source (`<payment intent>:purchase`) is unique.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ..credits import movements
from ..models import Payment, TopUp
from . import repository
from .applying import Applying, lock_account
from .pausing import pause_auto_top_up
from .settings import format_money
from .stripe_api import StripeObject, object_id

__all__ = [
    "Charged",
    "Checkout",
    "Invoice",
    "apply_checkout",
    "apply_intent",
    "charged_from",
    "checkout_from",
    "refuse_auto_top_up",
]


@dataclass(frozen=True, slots=True)
class Invoice:
    id: str
    number: str | None
    hosted_url: str | None
    pdf_url: str | None


@dataclass(frozen=True, slots=True)
class Charged:
    """What billing reads of a PaymentIntent and its latest charge."""

    intent_id: str
    #: Stripe's: succeeded | processing | requires_payment_method | requires_action | ...
    status: str
    amount: int
    currency: str
    customer_id: str | None
    payment_method_id: str | None
    charge_id: str | None
    receipt_url: str | None
    #: "Visa •••• 4242"
    card_label: str | None
    #: Why the last attempt failed (`authentication_required`, `card_declined`, ...).
    failure_code: str | None
    metadata: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Checkout:
    """What billing reads of a Checkout Session."""

    session_id: str
    top_up_id: str | None
    #: open | complete | expired
    status: str
    #: paid | unpaid | no_payment_required
    payment_status: str
    #: Before tax: what our price table said.
    amount_subtotal: int | None
    currency: str | None
    customer_id: str | None
    intent: Charged | None
    invoice: Invoice | None


def _text(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def _card_label(charge: Mapping[str, Any]) -> str | None:
    details = charge.get("payment_method_details")
    card = details.get("card") if isinstance(details, Mapping) else None
    if not isinstance(card, Mapping):
        return None
    brand, last4 = _text(card, "brand"), _text(card, "last4")
    if not brand or not last4:
        return None
    return f"{brand.title()} •••• {last4}"[:64]


def charged_from(intent: StripeObject) -> Charged:
    charge = intent.get("latest_charge")
    charge = charge if isinstance(charge, Mapping) else {}
    error = intent.get("last_payment_error")
    failure = None
    if isinstance(error, Mapping):
        failure = _text(error, "decline_code") or _text(error, "code") or "card_declined"
        if _text(error, "code") == "authentication_required":
            failure = "authentication_required"
    metadata = intent.get("metadata")
    return Charged(
        intent_id=str(intent["id"]),
        status=str(intent.get("status") or ""),
        amount=int(intent.get("amount") or 0),
        currency=str(intent.get("currency") or ""),
        customer_id=object_id(intent.get("customer")),
        payment_method_id=object_id(intent.get("payment_method")),
        charge_id=object_id(intent.get("latest_charge")),
        receipt_url=_text(charge, "receipt_url"),
        card_label=_card_label(charge),
        failure_code=failure,
        metadata={k: str(v) for k, v in metadata.items()} if isinstance(metadata, Mapping) else {},
    )


def checkout_from(session: StripeObject, invoice: StripeObject | None) -> Checkout:
    intent = session.get("payment_intent")
    subtotal = session.get("amount_subtotal")
    return Checkout(
        session_id=str(session["id"]),
        top_up_id=_text(session, "client_reference_id"),
        status=str(session.get("status") or ""),
        payment_status=str(session.get("payment_status") or ""),
        amount_subtotal=int(subtotal) if isinstance(subtotal, int) else None,
        currency=_text(session, "currency"),
        customer_id=object_id(session.get("customer")),
        intent=charged_from(intent) if isinstance(intent, dict) else None,
        invoice=None
        if invoice is None
        else Invoice(
            id=str(invoice["id"]),
            number=_text(invoice, "number"),
            hosted_url=_text(invoice, "hosted_invoice_url"),
            pdf_url=_text(invoice, "invoice_pdf"),
        ),
    )


async def apply_checkout(session: AsyncSession, checkout: Checkout, ctx: Applying) -> str:
    """Bring the top-up to the state of its Checkout Session: the outcome."""
    top_up = None
    if checkout.top_up_id is not None:
        top_up = await repository.get_top_up(session, checkout.top_up_id)
    if top_up is None or top_up.stripe_checkout_session_id not in (None, checkout.session_id):
        return "not_ours"  # another integration on the same Stripe account, or a deleted one
    await lock_account(session, top_up.account_id)
    await session.refresh(top_up)
    top_up.stripe_checkout_session_id = checkout.session_id
    if checkout.amount_subtotal != top_up.amount or checkout.currency != top_up.currency:
        return "amount_mismatch"  # never credit what our price table did not say
    intent = checkout.intent
    if checkout.payment_status == "paid" and intent is not None and intent.status == "succeeded":
        return await _paid(session, top_up, intent, checkout.invoice, ctx)
    if checkout.status == "expired":
        return _close(top_up, "expired", ctx.now, None)
    if checkout.status == "complete" and intent is not None:
        if intent.status == "processing":
            await _record_payment(session, top_up, intent, checkout.invoice, "pending", ctx)
            if top_up.status == "open":
                top_up.status = "pending"
            return "pending"
        if intent.status in ("requires_payment_method", "canceled"):
            await _record_payment(session, top_up, intent, checkout.invoice, "failed", ctx)
            return _close(top_up, "failed", ctx.now, intent.failure_code)
    return "nothing"


async def apply_intent(session: AsyncSession, intent: Charged, ctx: Applying) -> str:
    """An automatic top-up's PaymentIntent: paid, or refused (the caller pauses auto top-up).
    A Checkout top-up's PaymentIntent is left to its session's events."""
    top_up_id = intent.metadata.get("top_up_id")
    top_up = await repository.get_top_up(session, top_up_id) if top_up_id else None
    if top_up is None:
        return "not_ours"
    if top_up.kind != "auto":
        return "by_checkout"  # its session's events apply it
    await lock_account(session, top_up.account_id)
    await session.refresh(top_up)
    if intent.amount != top_up.amount or intent.currency != top_up.currency:
        return "amount_mismatch"
    top_up.stripe_payment_intent_id = intent.intent_id
    if intent.status == "succeeded":
        return await _paid(session, top_up, intent, None, ctx)
    if intent.status in ("requires_payment_method", "requires_action", "canceled"):
        if top_up.status in ("paid", "failed"):
            return "nothing"
        await _record_payment(session, top_up, intent, None, "failed", ctx)
        code = intent.failure_code or (
            "authentication_required" if intent.status == "requires_action" else "card_declined"
        )
        return await refuse_auto_top_up(session, top_up, code, ctx)
    return "nothing"


async def refuse_auto_top_up(session: AsyncSession, top_up: TopUp, code: str, ctx: Applying) -> str:
    """The bank refused an automatic top-up: it fails, auto top-up turns itself off (only
    the owner turns it on again) and the owner is told why. Once per top-up."""
    if _close(top_up, "failed", ctx.now, code) == "nothing":
        return "nothing"
    await pause_auto_top_up(session, top_up.account_id, code, ctx)
    amount = format_money(top_up.amount, top_up.currency)
    await ctx.notify_owner(
        session,
        top_up.account_id,
        lambda mail, to: mail.auto_top_up_paused(
            to, when=ctx.now, product=top_up.product, amount=amount, code=code
        ),
    )
    return "failed"


def _close(top_up: TopUp, status: str, now: float, code: str | None) -> str:
    if top_up.status in ("open", "pending"):
        top_up.status, top_up.closed_at, top_up.failure_code = status, now, code
        return status
    return "nothing"


async def _record_payment(
    session: AsyncSession,
    top_up: TopUp,
    intent: Charged,
    invoice: Invoice | None,
    status: str,
    ctx: Applying,
) -> Payment:
    """The top-up's payment row, made or brought up to date (never back from paid)."""
    payment = await repository.find_payment(session, top_up_id=top_up.id)
    if payment is None:
        payment = await repository.insert(
            session,
            account_id=top_up.account_id,
            top_up_id=top_up.id,
            source=top_up.kind,
            product=top_up.product,
            credits=top_up.credits,
            amount=top_up.amount,
            currency=top_up.currency,
            status=status,
            now=ctx.now,
            stripe_checkout_session_id=top_up.stripe_checkout_session_id,
        )
    if payment.status != "paid":
        payment.status = status
    payment.stripe_payment_intent_id = intent.intent_id
    payment.stripe_charge_id = intent.charge_id or payment.stripe_charge_id
    payment.stripe_customer_id = intent.customer_id or payment.stripe_customer_id
    payment.receipt_url = intent.receipt_url or payment.receipt_url
    if invoice is not None:
        payment.invoice_id = invoice.id
        payment.invoice_number = invoice.number or payment.invoice_number
        payment.invoice_url = invoice.hosted_url
        payment.invoice_pdf_url = invoice.pdf_url
    return payment


async def _paid(
    session: AsyncSession,
    top_up: TopUp,
    intent: Charged,
    invoice: Invoice | None,
    ctx: Applying,
) -> str:
    payment = await _record_payment(session, top_up, intent, invoice, "paid", ctx)
    payment.paid_at = payment.paid_at or ctx.now
    top_up.status, top_up.closed_at, top_up.failure_code = "paid", ctx.now, None
    await _remember_customer(session, top_up, intent, ctx.now)
    moved = await movements.add(
        session,
        top_up.account_id,
        top_up.credits,
        kind="purchase",
        source_id=f"{intent.intent_id}:purchase",
        now=ctx.now,
    )
    await session.flush()
    if moved is None:
        return "nothing"  # credited before, by another event or path
    amount = format_money(payment.amount, payment.currency)
    await ctx.notify_owner(
        session,
        top_up.account_id,
        lambda mail, to: mail.payment_receipt(
            to,
            when=ctx.now,
            product=payment.product,
            credits=payment.credits,
            amount=amount,
            automatic=top_up.kind == "auto",
            invoice_url=payment.invoice_url,
            invoice_pdf=payment.invoice_pdf_url,
            receipt_url=payment.receipt_url,
        ),
    )
    return "credited"


async def _remember_customer(
    session: AsyncSession, top_up: TopUp, intent: Charged, now: float
) -> None:
    """The account's Stripe customer (reused by its next checkouts), and the card it asked to
    save for automatic top-ups."""
    if intent.customer_id is None:
        return
    profile = await repository.profile_or_new(session, top_up.account_id, now)
    if profile.stripe_customer_id is None:
        profile.stripe_customer_id = intent.customer_id
    saved = top_up.save_card and intent.payment_method_id is not None
    if saved and profile.stripe_customer_id == intent.customer_id:
        profile.payment_method_id = intent.payment_method_id
        profile.card_label = intent.card_label
    profile.updated_at = now
