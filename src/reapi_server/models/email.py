"""Mail waiting to be sent (and, briefly, mail sent). A row is written in the same transaction
as the action that causes it, so no mail is lost and none goes out for a rolled-back action;
the background sender delivers it, retrying with backoff. Once sent, its body is dropped."""

from __future__ import annotations

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["OutboxMessage"]


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_status_not_before", "status", "not_before"),)

    #: Also the provider's idempotency key: a retried send is delivered once.
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: transactional | newsletter (an opt-out suppresses newsletters only)
    kind: Mapped[str] = mapped_column(String(16))
    #: Which template made it (verify_email, reset_password, ...): for logs and metrics.
    template: Mapped[str] = mapped_column(String(40))
    to_address: Mapped[str] = mapped_column(String(320), index=True)
    subject: Mapped[str | None] = mapped_column(String(300), default=None)
    text_body: Mapped[str | None] = mapped_column(Text, default=None)
    html_body: Mapped[str | None] = mapped_column(Text, default=None)
    #: Extra headers as JSON (e.g. List-Unsubscribe), or None.
    headers: Mapped[str | None] = mapped_column(Text, default=None)
    #: pending | sent | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Not tried before this time: a claim by one process (a lease), or a backoff.
    not_before: Mapped[float] = mapped_column(Float)
    #: The last failure's code (an exception type or a provider status), never its text.
    last_error: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[float] = mapped_column(Float)
    sent_at: Mapped[float | None] = mapped_column(Float, default=None)
