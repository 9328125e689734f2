"""Webhook deliveries: an outbox. A row is written in the transaction that makes a video job
final, so no final state goes unannounced and a crash cannot lose one; background senders in
every process deliver it (each claim a lease), retry it, and record how it ended.

The row holds the video object as the webhook sends it (metadata and ids, never a prompt)."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["DELIVERY_STATES", "WebhookDelivery"]

#: pending: to be sent (again); delivered: a 2xx came back; failed: retries ran out;
#: gone: the receiver answered 410 Gone (or another did, for the same key and URL).
DELIVERY_STATES = ("pending", "delivered", "failed", "gone")


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status_next_attempt", "status", "next_attempt_at"),
    )

    #: The `webhook-id` header: the same on every attempt, a receiver's idempotency key.
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    #: The key whose signing secret signs it (None: the job had no key; never sent).
    api_key_id: Mapped[str | None] = mapped_column(String(40), default=None)
    video_id: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(2048))
    #: The JSON sent, as GET /v1/videos/{id} rendered the job when it became final.
    video_object: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Due then; while a sender holds it (`lease_owner`), when its lease runs out.
    next_attempt_at: Mapped[float] = mapped_column(Float)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The last attempt: the receiver's HTTP status, or why nothing came back (a stable code).
    last_status: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    finished_at: Mapped[float | None] = mapped_column(Float, default=None)
