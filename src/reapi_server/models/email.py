"""Mail waiting to be sent (and, briefly, mail sent). A row is written in the same transaction
as the action that causes it, so no mail is lost and none goes out for a rolled-back action;
the background sender delivers it, retrying with backoff. Once sent, its body is dropped.

Notices (a policy change, a newsletter issue) go to many users in batches: `Notice` is the
campaign, `NoticeDelivery` the one row per user queued, whose primary key makes "at most once
per user" a constraint rather than a hope, and lets an interrupted run continue."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["Notice", "NoticeDelivery", "OutboxMessage"]


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
    #: The person it was sent to or about (set when it was queued), so that their export and
    #: deletion find it after they changed address; None when no user is meant (a deleted
    #: person's confirmation). Not a foreign key: the deletion drops the rows itself.
    user_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
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


class Notice(Base):
    """A mail to many users: a policy change notice (every user) or a newsletter issue (users
    who opted in). Its text is not kept: running the same notice again (the same kind, subject,
    file and date, hence the same `digest`) continues it."""

    __tablename__ = "notices"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: policy_change | newsletter
    kind: Mapped[str] = mapped_column(String(16))
    #: SHA-256 of kind, subject, Markdown and effective date: what makes it the same notice.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    subject: Mapped[str] = mapped_column(String(300))
    #: The day a policy change takes effect (YYYY-MM-DD); None for a newsletter.
    effective_on: Mapped[str | None] = mapped_column(String(10), default=None)
    created_at: Mapped[float] = mapped_column(Float)
    #: When a run found nobody left to queue it for.
    completed_at: Mapped[float | None] = mapped_column(Float, default=None)


class NoticeDelivery(Base):
    """One user's copy of a notice, queued in the outbox in the same transaction."""

    __tablename__ = "notice_deliveries"
    __table_args__ = (Index("ix_notice_deliveries_user_id", "user_id"),)

    notice_id: Mapped[str] = mapped_column(
        ForeignKey("notices.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    #: The outbox message (gone once purged; not a foreign key).
    outbox_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[float] = mapped_column(Float)
