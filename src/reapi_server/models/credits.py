"""Credit movements. Each ledger row says how it changed `balance` (`amount`) and `reserved`
(`reserved_delta`) and `debt` (`debt_delta`), so each of those columns of an account always
equals the sum of its rows.

A hold (`CreditHold`) is one reservation: `held` until it is settled (charged) or released, each
exactly once — the conditional `UPDATE ... WHERE status = 'held'` is what makes it once.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base
from .partial_index import partial_index

__all__ = ["MAX_CREDITS", "CreditHold", "LedgerEntry"]

#: The most credit units an account may hold (balance and reserved together), and so the most
#: any one grant, hold or ledger row may move. Far below 2**63: no sum the gateway computes can
#: overflow a 64-bit integer (SQLite would store it as a float, which charges stop reducing).
#: Migration 0004_money writes the same number into the schema's constraints.
MAX_CREDITS = 10**15


class LedgerEntry(Base):
    __tablename__ = "credit_ledger"
    __table_args__ = (
        CheckConstraint(
            f"amount BETWEEN -{MAX_CREDITS} AND {MAX_CREDITS}"
            f" AND reserved_delta BETWEEN -{MAX_CREDITS} AND {MAX_CREDITS}",
            name="amounts_within_bound",
        ),
        CheckConstraint(
            f"debt_delta BETWEEN -{MAX_CREDITS} AND {MAX_CREDITS}", name="debt_within_bound"
        ),
        # An index, not a constraint: SQLite adds one to an existing table without a rebuild.
        # Partial: most rows (every request's) have no source, and need no entry.
        partial_index(
            "uq_credit_ledger_source_id", "source_id", unique=True, where="source_id IS NOT NULL"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    #: grant | adjustment (an operator's, either way) | reserve | settle | release; billing:
    #: purchase | refund | dispute | dispute_won; promo (a promotion code); carried (the sums
    #: of reserve/settle/release rows past `retention_days`: `retention.credit_history`)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    reserved_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    #: How the row changed the account's `debt` (billing: a dispute adds, a purchase pays).
    debt_delta: Mapped[int] = mapped_column(BigInteger, server_default="0")
    hold_id: Mapped[str | None] = mapped_column(String(40), default=None)
    #: What caused a billing movement (`pi_...:purchase`, `re_...`, `dp_...:taken`, ...):
    #: unique, so the same money can never move twice, whichever path tries.
    source_id: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[float] = mapped_column(Float)


class CreditHold(Base):
    __tablename__ = "credit_holds"
    __table_args__ = (
        # What the sweeper looks for: only holds still held have an entry, so a closed hold
        # leaves the index instead of moving within it, and the index stays as small as the
        # number of requests in flight.
        partial_index("ix_credit_holds_held_expires", "expires_at", where="status = 'held'"),
        CheckConstraint(
            f"amount BETWEEN 0 AND {MAX_CREDITS} AND charged BETWEEN 0 AND amount",
            name="amounts_within_bound",
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    #: What was finally charged (≤ amount; the rest went back to the balance at settlement).
    charged: Mapped[int] = mapped_column(BigInteger, default=0)
    #: held | settled | released
    status: Mapped[str] = mapped_column(String(16), default="held")
    #: image | video
    purpose: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str] = mapped_column(String(40))
    #: When a hold nobody settled may be released by the sweeper (None: a video job owns it).
    expires_at: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[float] = mapped_column(Float)
    closed_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: The key whose spend counter the hold was added to, and that counter's period then: the
    #: settlement gives the unspent rest back to that period only, never to a later one.
    api_key_id: Mapped[str | None] = mapped_column(String(40), default=None)
    period_start: Mapped[float | None] = mapped_column(Float, default=None)
