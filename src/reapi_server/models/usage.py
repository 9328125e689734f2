"""One row per API request that creates something. Metadata only: there is no body column."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["ROLLUP_SLOT_SECONDS", "UsageRecord", "UsageRollup"]


class UsageRecord(Base):
    __tablename__ = "usage_records"
    #: One index besides the key: every query is by account, and retention walks each
    #: account's rows by age through it too (an index on `created_at` alone would be one more
    #: b-tree written with every request, read only by the retention job: migration 0020).
    __table_args__ = (Index("ix_usage_records_account_created", "account_id", "created_at"),)

    #: The request id (also sent back as `x-request-id`).
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    api_key_id: Mapped[str | None] = mapped_column(String(40), default=None)
    model: Mapped[str] = mapped_column(String(100))
    endpoint: Mapped[str] = mapped_column(String(64))
    credit_cost: Mapped[int] = mapped_column(BigInteger, default=0)
    #: succeeded | failed | pending (a video still being made)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    provider: Mapped[str | None] = mapped_column(String(64), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)


#: The rollup's time slot: 15 minutes, so that every local midnight (UTC offsets are whole
#: quarter hours) and every daylight-saving change falls on a slot's edge.
ROLLUP_SLOT_SECONDS = 900


class UsageRollup(Base):
    """The finished usage rows counted per account, 15-minute slot (UTC), key, model and
    status: what the dashboard's totals read instead of the rows. Kept by triggers on
    `usage_records` (migrations 0013_usage, 0023_rollup_finished_rows) in the statement that
    inserts, changes or deletes a row, so it always equals a GROUP BY of the rows that are not
    pending, whoever writes them. A group whose count drops to 0 is deleted. Pending rows (a
    request in flight) are left out, so that a request's hold does not write it:
    `usage.report` counts them from the rows."""

    __tablename__ = "usage_rollups"
    __table_args__ = {"sqlite_with_rowid": False}

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    #: whole slots since 1970-01-01T00:00Z: floor(created_at / ROLLUP_SLOT_SECONDS)
    slot: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    #: "" for rows without a key
    api_key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger)
    credits: Mapped[int] = mapped_column(BigInteger)
