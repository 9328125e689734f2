"""Accounts are wallets: `balance` is spendable, `reserved` is held for requests in flight.
Keys, credit, usage and outputs hang from an account; people reach it through memberships
(`models.users`)."""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base
from .credits import MAX_CREDITS

__all__ = ["Account"]


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        # The database itself refuses an overdraft, whatever the code above it does.
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint(f"balance + reserved <= {MAX_CREDITS}", name="credits_within_bound"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    #: Set when the account is deleted: from then on nothing is reserved for it (the hold's
    #: conditional UPDATE checks it, in every process at once) and the remaining rows go as
    #: soon as no request of it is in flight; then the row itself goes (`accounts.closing`).
    deleted_at: Mapped[float | None] = mapped_column(Float, default=None, index=True)
    #: Set by an operator: the account's keys are refused (403 `account_disabled`) until it is
    #: cleared again, and every credit hold of the account is refused from then on, in every
    #: process at once (the hold's statement reads it). The money and history stay as they are.
    disabled_at: Mapped[float | None] = mapped_column(Float, default=None)
