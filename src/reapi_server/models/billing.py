"""Payments: what a person paid for credit. Kept for 7 years (tax and accounting law), also
after the account is deleted: then the row is detached (`account_id` NULL, `detached_at` set)
and keeps only what the law asks for — the payment processor's customer, checkout and invoice
references, the product, the amount and the currency. The retention job deletes rows once they
are 7 years old (`payment_retention_days`).

Written by the billing domain (Stripe checkout and webhooks); refunds and disputes, when they
come, are rows of their own pointing at `payments.id`."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["Payment"]


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: NULL once the account is deleted: the row outlives it, detached. Never a cascade.
    account_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), default=None, index=True
    )
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), default=None)
    #: One Checkout Session makes at most one payment (a redelivered webhook finds it).
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(
        String(255), default=None, unique=True
    )
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(
        String(255), default=None, unique=True
    )
    invoice_id: Mapped[str | None] = mapped_column(String(255), default=None)
    #: The processor's hosted invoice page.
    invoice_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    #: The credit pack bought, by name.
    product: Mapped[str] = mapped_column(String(100))
    credits: Mapped[int] = mapped_column(BigInteger)
    #: In the currency's minor unit (cents).
    amount: Mapped[int] = mapped_column(BigInteger)
    #: ISO 4217, lower case as Stripe writes it.
    currency: Mapped[str] = mapped_column(String(3))
    #: pending | paid | failed (billing adds refunded, disputed)
    status: Mapped[str] = mapped_column(String(16))
    #: The 7 years run from here.
    created_at: Mapped[float] = mapped_column(Float, index=True)
    #: When the account it belonged to was deleted.
    detached_at: Mapped[float | None] = mapped_column(Float, default=None)
