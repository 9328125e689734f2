"""Low-balance alerts: a mail when an account's balance falls below a threshold its owner set,
or when a key has spent a share of its spend limit in the current period.

Each alert is `armed` while the watched value is on the safe side of its threshold. A crossing
disarms it with an UPDATE conditional on `armed` being true, in the transaction that queues the
mail, so however many server processes see the crossing, one of them mails; going back to the
safe side arms it again (`alerts.watch`)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base
from .credits import MAX_CREDITS

__all__ = ["BalanceAlert", "KeySpendAlert"]


class BalanceAlert(Base):
    __tablename__ = "balance_alerts"
    __table_args__ = (
        UniqueConstraint("account_id", "threshold", name="uq_balance_alerts_account_threshold"),
        CheckConstraint(f"threshold BETWEEN 1 AND {MAX_CREDITS}", name="threshold_within_bound"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    #: Mail when the balance falls below this many credits.
    threshold: Mapped[int] = mapped_column(BigInteger)
    #: True while the balance is at or above the threshold (a fall below is a crossing).
    armed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[float] = mapped_column(Float)
    #: The last crossing's mail.
    fired_at: Mapped[float | None] = mapped_column(Float, default=None)


class KeySpendAlert(Base):
    __tablename__ = "key_spend_alerts"
    __table_args__ = (CheckConstraint("percent BETWEEN 1 AND 100", name="percent_within_bound"),)

    key_id: Mapped[str] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    #: Mail when the key's spend in its period reaches this share of its spend limit.
    percent: Mapped[int] = mapped_column(Integer)
    armed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[float] = mapped_column(Float)
    fired_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: The start of the key's period when it fired: a later period arms it again.
    fired_period: Mapped[float | None] = mapped_column(Float, default=None)
