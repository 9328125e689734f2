"""Billing: credit bought through Stripe, and what happened to that money afterwards.

- `TopUp`: one attempt to buy credit, ours before Stripe knows of it. Its id is the Checkout
  Session's `client_reference_id` (and the `top_up_id` in the session's and its
  PaymentIntent's metadata), or, for an automatic top-up, the PaymentIntent's metadata and the
  attempt's idempotency key. It carries the pack's credits and price as they were when the
  person chose it. At most one automatic top-up of an account is `open` at a time: a partial
  unique index, so the database, not a process's memory, keeps a second charge from starting.
- `Payment`: money that reached an outcome at Stripe (paid, pending, failed). Kept for 7 years
  (tax and accounting law), also after the account is deleted: then the row is detached
  (`account_id` NULL, `detached_at` set) and keeps only what the law asks for — the payment
  processor's customer, checkout and invoice references (the invoice's id and number, not the
  links to its hosted pages, which show the buyer's name, email and card), the product, the
  amount and the currency. The retention job deletes rows once they are 7 years old. Refunds
  and disputes are rows of their own pointing at it, and go with it.
- `StripeEvent`: every webhook event received, by Stripe's id (insert-or-ignore). `handled_at`
  is set in the same transaction as the change the event made, so an event is either applied
  with its effect or not at all (then retried: Stripe's redelivery, and each process's loop).
  Only ids and types are kept: Stripe's objects are fetched again from Stripe before anything
  moves.
- `BillingProfile`: an account's Stripe customer, its saved card and its auto top-up settings.
- `DeletedTopUp`: a tombstone of a deleted account's top-up that could still be paid (open,
  or a bank debit processing): ids only, for `billing.after_deletion` to recognise a payment
  that arrives afterwards and refund it. Deleted by the retention job after 30 days.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base
from .partial_index import partial_index

__all__ = [
    "BillingProfile",
    "DeletedTopUp",
    "Dispute",
    "Payment",
    "Refund",
    "StripeEvent",
    "TopUp",
]


class TopUp(Base):
    __tablename__ = "top_ups"
    __table_args__ = (
        # One automatic top-up in flight per account, whatever process or race starts another:
        # `open` (no PaymentIntent known yet) or `pending` (Stripe is processing it).
        partial_index(
            "uq_top_ups_one_auto_in_flight",
            "account_id",
            unique=True,
            where="kind = 'auto' AND status IN ('open', 'pending')",
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    #: checkout | auto
    kind: Mapped[str] = mapped_column(String(16))
    pack_id: Mapped[str] = mapped_column(String(40))
    #: The pack's name when it was bought.
    product: Mapped[str] = mapped_column(String(100))
    credits: Mapped[int] = mapped_column(BigInteger)
    #: In the currency's minor unit (cents).
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    #: open | pending (its PaymentIntent is known and not settled: a bank debit settling) |
    #: paid | failed | expired
    status: Mapped[str] = mapped_column(String(16), default="open")
    #: The buyer asked Checkout to save the card for automatic top-ups.
    save_card: Mapped[bool] = mapped_column(Boolean, default=False)
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(
        String(255), default=None, unique=True
    )
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(
        String(255), default=None, unique=True
    )
    #: Why it failed: Stripe's decline or error code (`authentication_required`, ...).
    failure_code: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[float] = mapped_column(Float)
    closed_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: An automatic top-up's PaymentIntent was last fetched again from Stripe (while pending).
    checked_at: Mapped[float | None] = mapped_column(Float, default=None)


class DeletedTopUp(Base):
    """A top-up that went with its account while it could still be paid. Nothing of the
    person, the account or the money: what a payment event names it by, and when."""

    __tablename__ = "deleted_top_ups"

    #: Our top-up id (the Checkout Session's `client_reference_id`, the metadata's `top_up_id`).
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(String(255), default=None)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), default=None)
    deleted_at: Mapped[float] = mapped_column(Float, index=True)


class Payment(Base):
    __tablename__ = "payments"
    # Indexes, not constraints: SQLite adds them to an existing table without a rebuild.
    __table_args__ = (Index("uq_payments_top_up_id", "top_up_id", unique=True),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: NULL once the account is deleted: the row outlives it, detached. Never a cascade.
    account_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), default=None, index=True
    )
    #: The top-up this paid for (our id; no foreign key: top-ups go with the account).
    top_up_id: Mapped[str | None] = mapped_column(String(40), default=None)
    #: checkout | auto
    source: Mapped[str] = mapped_column(String(16), default="checkout", server_default="checkout")
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), default=None)
    #: One Checkout Session makes at most one payment (a redelivered webhook finds it).
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(
        String(255), default=None, unique=True
    )
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(
        String(255), default=None, unique=True
    )
    #: The charge refunds and disputes name.
    stripe_charge_id: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    invoice_id: Mapped[str | None] = mapped_column(String(255), default=None)
    #: The invoice's number (`ABCD1234-0001`), what accounting refers to.
    invoice_number: Mapped[str | None] = mapped_column(String(255), default=None)
    #: The processor's hosted invoice page, its PDF and the charge's receipt page (automatic
    #: top-ups have no invoice). Each shows the buyer's name, email and card to whoever has the
    #: link: cleared when the row is detached (only the invoice's id and number stay).
    invoice_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    invoice_pdf_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    receipt_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    #: The credit pack bought, by name.
    product: Mapped[str] = mapped_column(String(100))
    credits: Mapped[int] = mapped_column(BigInteger)
    #: What was charged (tax included), in the currency's minor unit (cents): the base of
    #: refunds and disputes, which Stripe counts in the same money.
    amount: Mapped[int] = mapped_column(BigInteger)
    #: The price before tax (the pack's); NULL on rows made before it was kept (no tax).
    amount_subtotal: Mapped[int | None] = mapped_column(BigInteger, default=None)
    #: ISO 4217, lower case as Stripe writes it.
    currency: Mapped[str] = mapped_column(String(3))
    #: pending | paid | failed | review (paid, but not what the top-up asked: not credited,
    #: an operator looks at it)
    status: Mapped[str] = mapped_column(String(16))
    #: Money refunded so far (the sum of its refunds), in the minor unit.
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: The 7 years run from here.
    created_at: Mapped[float] = mapped_column(Float, index=True)
    paid_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: When the account it belonged to was deleted.
    detached_at: Mapped[float | None] = mapped_column(Float, default=None)


class Refund(Base):
    """One Stripe refund of a payment, applied once (its id is Stripe's `re_...`)."""

    __tablename__ = "refunds"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    payment_id: Mapped[str] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE"), index=True
    )
    #: Money, in the minor unit.
    amount: Mapped[int] = mapped_column(BigInteger)
    #: The credits this much money bought (proportional, rounded so that refunds add up to
    #: the pack), and how they were settled: taken from the balance, added to the account's
    #: debt (the operator asked to take back spent credit too), or waived (spent already).
    credits: Mapped[int] = mapped_column(BigInteger)
    credits_taken: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_debt: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_waived: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Who asked: operator (admin or CLI) | gateway (paid after its account was deleted) |
    #: stripe (the Stripe dashboard, or Stripe itself)
    requested_by: Mapped[str] = mapped_column(String(16), default="stripe")
    created_at: Mapped[float] = mapped_column(Float)


class Dispute(Base):
    """A chargeback. While it is open the account is on hold; won: its credits come back; lost:
    they stay taken (and what was spent stays owed)."""

    __tablename__ = "disputes"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    payment_id: Mapped[str] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE"), index=True
    )
    #: The account on hold for it (NULL once the account is deleted).
    account_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), default=None, index=True
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The disputed credits: `taken` from the balance plus `debt` beyond it.
    credits: Mapped[int] = mapped_column(BigInteger)
    credits_taken: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_debt: Mapped[int] = mapped_column(BigInteger, default=0)
    #: open | won | lost
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[float] = mapped_column(Float)
    closed_at: Mapped[float | None] = mapped_column(Float, default=None)


class StripeEvent(Base):
    __tablename__ = "stripe_events"
    __table_args__ = (Index("ix_stripe_events_due", "handled_at", "next_attempt_at"),)

    #: Stripe's `evt_...`: the unique key that makes a redelivery a no-op.
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    #: `data.object.id`: what the handler fetches again from Stripe.
    object_id: Mapped[str | None] = mapped_column(String(255), default=None)
    #: Stripe's `created`.
    stripe_created: Mapped[float] = mapped_column(Float)
    received_at: Mapped[float] = mapped_column(Float, index=True)
    #: Set in the transaction that applied it (or found nothing to do).
    handled_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: What came of it: the change made (`credited`, `refunded`, `disputed`, `won`, `lost`,
    #: `pending`, `failed`, ...), `nothing` (no change was due) or `ignored` (a type not handled)
    outcome: Mapped[str | None] = mapped_column(String(16), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: When the retry loop tries an unhandled event next.
    next_attempt_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: Why the last attempt did not apply it: `waiting` (what it depends on is not there yet)
    #: or the error's type name. Never a message.
    last_error: Mapped[str | None] = mapped_column(String(64), default=None)
    #: What a waiting event waits for: the PaymentIntent, charge or top-up whose purchase is
    #: not credited yet. Crediting it makes the events waiting for it due at once (and no
    #: other). None: no such thing (it waits for time, e.g. credits held by requests).
    waiting_for: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    #: When the retry loop stopped trying it (unapplied for `billing.event_give_up_after`):
    #: the admin shows it; an operator may still apply it, and so does its dependency arriving.
    given_up_at: Mapped[float | None] = mapped_column(Float, default=None)


class BillingProfile(Base):
    __tablename__ = "billing_profiles"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), default=None, unique=True)
    #: The card saved at Checkout for automatic top-ups (`pm_...`), and how to name it.
    payment_method_id: Mapped[str | None] = mapped_column(String(255), default=None)
    card_label: Mapped[str | None] = mapped_column(String(64), default=None)
    #: Auto top-up: when the balance falls below `auto_threshold`, buy pack `auto_pack_id`,
    #: at most `auto_monthly_cap` (minor units of the pack's currency) per calendar month.
    auto_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_threshold: Mapped[int] = mapped_column(BigInteger, default=0)
    auto_pack_id: Mapped[str | None] = mapped_column(String(40), default=None)
    auto_monthly_cap: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Why auto top-up turned itself off (`authentication_required`, `card_declined`, ...):
    #: only the person turns it on again.
    auto_paused_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    auto_paused_at: Mapped[float | None] = mapped_column(Float, default=None)
    updated_at: Mapped[float] = mapped_column(Float)
