"""Promotion codes: credit an operator hands out as a code a person types on the billing page.

A code grants `credits` to each account that redeems it, at most `max_uses` times in all, until
`expires_at`, and never twice to one account. Both limits are the database's to keep, not the
code's: `redeemed` only grows through an UPDATE conditional on the code still having a use left
(`redeemed < max_uses`), and the redemption row's UNIQUE (code, account) refuses a second one,
in the same transaction as the credit (ledger kind `promo`). Twenty people racing for the last
five uses: five rows, five credits."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base
from .credits import MAX_CREDITS

__all__ = ["PromoCode", "PromoRedemption"]


class PromoCode(Base):
    __tablename__ = "promo_codes"
    __table_args__ = (
        CheckConstraint(f"credits BETWEEN 1 AND {MAX_CREDITS}", name="credits_within_bound"),
        CheckConstraint(
            "redeemed >= 0 AND (max_uses IS NULL OR redeemed <= max_uses)",
            name="uses_within_bound",
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: What people type, upper case (codes are matched without regard to case).
    code: Mapped[str] = mapped_column(String(40), unique=True)
    credits: Mapped[int] = mapped_column(BigInteger)
    #: How many accounts may redeem it in all (None: no limit but once per account).
    max_uses: Mapped[int | None] = mapped_column(Integer, default=None)
    redeemed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Refused from this time on (None: never expires).
    expires_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: An operator withdrew it: refused from then on (redemptions made before stay).
    disabled_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: The operator's own words about it (a campaign name); never shown to customers.
    note: Mapped[str] = mapped_column(String(200), default="", server_default="")
    created_at: Mapped[float] = mapped_column(Float)
    #: The admin who created it (None: the command line).
    created_by: Mapped[str | None] = mapped_column(String(40), default=None)


class PromoRedemption(Base):
    __tablename__ = "promo_redemptions"
    __table_args__ = (
        UniqueConstraint("code_id", "account_id", name="uq_promo_redemptions_code_account"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code_id: Mapped[str] = mapped_column(ForeignKey("promo_codes.id"), index=True)
    # The ledger row it wrote goes with the account (as every ledger row does).
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    #: Who typed it (None once that person is deleted: the account keeps its credit).
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    credits: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Float)
