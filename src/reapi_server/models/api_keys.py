"""API keys: only a SHA-256 of the key and its last four characters are stored."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["ApiKey"]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last4: Mapped[str] = mapped_column(String(4))
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: None: the server's default limit.
    requests_per_minute: Mapped[int | None] = mapped_column(Integer, default=None)
    max_concurrent_videos: Mapped[int | None] = mapped_column(Integer, default=None)
    #: Unfinished video jobs of this key, kept by triggers on `video_jobs` (migration 0003), so
    #: that the limit above is checked by reading this row rather than counting jobs.
    active_videos: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
