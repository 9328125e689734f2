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
    #: Where this key's video jobs announce their end when a request names no `webhook_url`.
    webhook_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    #: Set when a receiver answered 410 Gone at `webhook_url`: not used again until it is set.
    webhook_disabled_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: The signing secret is derived from the server's secret, the key id and this random salt
    #: (`webhooks.secrets`): nothing secret is stored, and a new salt is a new secret. The
    #: previous salt signs too for a while after a rotation (`webhook_rotated_at`).
    webhook_salt: Mapped[str | None] = mapped_column(String(64), default=None)
    webhook_previous_salt: Mapped[str | None] = mapped_column(String(64), default=None)
    webhook_rotated_at: Mapped[float | None] = mapped_column(Float, default=None)
