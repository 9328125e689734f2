"""What the billing pages show, read in one place: the balance (less any debt), the packs, the
saved card and auto top-up settings, and the account's whole billing history (every payment,
refund and dispute since it was opened, newest first)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import Account, BillingProfile, Dispute, Payment, Refund, TopUp
from . import repository
from .refunds import covered_by_dispute
from .settings import decimal_amount, format_money

__all__ = [
    "ACTIVITY_COLUMNS",
    "Activity",
    "BillingState",
    "activity_of",
    "billing_state",
    "top_up_of",
]

_PAYMENT_STATUS = {
    "paid": "Paid",
    "pending": "Processing",
    "failed": "Failed",
    "review": "Under review",
}
_DISPUTE_STATUS = {"open": "Open", "won": "Won", "lost": "Lost"}


def _day(timestamp: float) -> str:
    return time.strftime("%d %b %Y", time.gmtime(timestamp))


@dataclass(frozen=True, slots=True)
class BillingState:
    balance: int
    debt: int
    on_hold: str | None
    profile: BillingProfile | None

    @property
    def shown_balance(self) -> int:
        """What the account has: its balance, less what it owes."""
        return self.balance - self.debt


@dataclass(frozen=True, slots=True)
class Activity:
    """One line of the billing history: a payment, a refund or a dispute."""

    kind: str
    id: str
    at: float
    product: str
    #: Credits added (+) or taken (-).
    credits: int
    #: Money paid (+) or given back (-), minor units.
    amount: int
    currency: str
    status: str
    invoice_url: str | None = None
    invoice_pdf_url: str | None = None
    receipt_url: str | None = None
    note: str = ""
    #: Of `amount`, the tax Stripe Tax added on top of the price (a payment's; else 0).
    tax: int = 0

    @property
    def date(self) -> str:
        return _day(self.at)

    @property
    def money(self) -> str:
        return format_money(self.amount, self.currency)

    def row(self) -> dict[str, Any]:
        """For the CSV download."""
        return {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at)),
            "type": self.kind,
            "id": self.id,
            "product": self.product,
            "credits": self.credits,
            # A number (so a refund's minus sign is not taken for a formula and quoted).
            "amount": Decimal(decimal_amount(self.amount, self.currency)),
            "currency": self.currency.upper(),
            "status": self.status,
            "invoice_url": self.invoice_url or "",
            "invoice_pdf_url": self.invoice_pdf_url or "",
            "receipt_url": self.receipt_url or "",
            "tax": Decimal(decimal_amount(self.tax, self.currency)),
        }


ACTIVITY_COLUMNS = (
    "date",
    "type",
    "id",
    "product",
    "credits",
    "amount",
    "currency",
    "status",
    "invoice_url",
    "invoice_pdf_url",
    "receipt_url",
    "tax",
)


async def billing_state(session: AsyncSession, account_id: str) -> BillingState:
    row = (
        await session.execute(
            select(Account.balance, Account.debt, Account.on_hold).where(Account.id == account_id)
        )
    ).one_or_none()
    profile = await repository.profile(session, account_id)
    if row is None:
        return BillingState(0, 0, None, profile)
    return BillingState(int(row[0]), int(row[1]), row[2], profile)


def _payment(payment: Payment) -> Activity:
    status = _PAYMENT_STATUS.get(payment.status, payment.status.title())
    if payment.status == "paid" and payment.amount_refunded >= payment.amount:
        status = "Refunded"
    elif payment.status == "paid" and payment.amount_refunded:
        status = "Partly refunded"
    subtotal = payment.amount_subtotal
    tax = payment.amount - subtotal if subtotal is not None and payment.amount > subtotal else 0
    note = ""
    if tax:
        note = f"{format_money(subtotal or 0, payment.currency)} plus "
        note += f"{format_money(tax, payment.currency)} tax"
    if payment.status == "review":
        note = "not credited: the operator is looking at this payment"
    return Activity(
        kind="payment",
        id=payment.id,
        at=payment.paid_at or payment.created_at,
        product=payment.product + (" (automatic top-up)" if payment.source == "auto" else ""),
        credits=payment.credits if payment.status == "paid" else 0,
        amount=payment.amount,
        currency=payment.currency,
        status=status,
        invoice_url=payment.invoice_url,
        invoice_pdf_url=payment.invoice_pdf_url,
        receipt_url=payment.receipt_url,
        note=note,
        tax=tax,
    )


def _refund(refund: Refund, payment: Payment) -> Activity:
    note = ""
    if covered_by_dispute(refund):
        note = f"{covered_by_dispute(refund):,} credits were taken back by the dispute already"
    elif refund.credits_waived:
        note = f"{refund.credits_waived:,} credits were spent already and not taken back"
    elif refund.credits_debt:
        note = f"{refund.credits_debt:,} credits owed"
    return Activity(
        kind="refund",
        id=refund.id,
        at=refund.created_at,
        product=payment.product,
        credits=-refund.credits,
        amount=-refund.amount,
        currency=payment.currency,
        status="Refunded",
        note=note,
    )


def _dispute(dispute: Dispute, payment: Payment) -> Activity:
    return Activity(
        kind="dispute",
        id=dispute.id,
        at=dispute.closed_at or dispute.created_at,
        product=payment.product,
        credits=0 if dispute.status == "won" else -dispute.credits,
        amount=-dispute.amount if dispute.status != "won" else 0,
        currency=payment.currency,
        status=f"Dispute {_DISPUTE_STATUS.get(dispute.status, dispute.status).lower()}",
    )


async def activity_of(session: AsyncSession, account_id: str) -> list[Activity]:
    """Every payment, refund and dispute of the account, newest first."""
    payments = await repository.list_for_account(session, account_id)
    by_id = {payment.id: payment for payment in payments}
    found = [_payment(payment) for payment in payments]
    found += [
        _refund(refund, by_id[refund.payment_id])
        for refund in await repository.refunds_for_account(session, account_id)
    ]
    found += [
        _dispute(dispute, by_id[dispute.payment_id])
        for dispute in await repository.disputes_for_account(session, account_id)
    ]
    return sorted(found, key=lambda item: (item.at, item.id), reverse=True)


async def top_up_of(session: AsyncSession, account_id: str, top_up_id: str) -> TopUp | None:
    """The account's own top-up (anyone else's is None)."""
    top_up = await repository.get_top_up(session, top_up_id)
    return top_up if top_up is not None and top_up.account_id == account_id else None
