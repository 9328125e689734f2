"""Video jobs: the row is the job. A background poller in any server process may drive it, under
a lease (`lease_owner` until `lease_expires_at`) so that two processes never handle it at once."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["ACTIVE_JOB_STATES", "VideoJob"]

#: submitting: the upstream call is in flight; queued/in_progress: polled; then completed/failed.
ACTIVE_JOB_STATES = ("submitting", "queued", "in_progress")


class VideoJob(Base):
    __tablename__ = "video_jobs"
    __table_args__ = (
        Index("ix_video_jobs_status_next_poll", "status", "next_poll_at"),
        Index("ix_video_jobs_account_created", "account_id", "created_at"),
        Index("ix_video_jobs_created_at", "created_at"),  # retention deletes by age
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    api_key_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    request_id: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(100))
    provider: Mapped[str | None] = mapped_column(String(64), default=None)
    upstream_model: Mapped[str | None] = mapped_column(String(100), default=None)
    upstream_task_id: Mapped[str | None] = mapped_column(String(200), default=None)
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    size: Mapped[str | None] = mapped_column(String(32), default=None)
    cost: Mapped[int] = mapped_column(BigInteger, default=0)
    hold_id: Mapped[str | None] = mapped_column(String(40), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    video_file_id: Mapped[str | None] = mapped_column(String(64), default=None)
    thumbnail_file_id: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_expires_at: Mapped[float | None] = mapped_column(Float, default=None)
    next_poll_at: Mapped[float] = mapped_column(Float, default=0.0)
    poll_failures: Mapped[int] = mapped_column(Integer, default=0)
    upstream_expires_at: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[float] = mapped_column(Float)
    completed_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: Where the job's end is announced (the request's `webhook_url`, else its key's default).
    webhook_url: Mapped[str | None] = mapped_column(String(2048), default=None)
