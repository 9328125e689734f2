"""Writing a delivery: in the transaction that makes a job final, so that the final state and
its announcement commit together (or not at all)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from ..ids import new_id
from ..models import VideoJob, WebhookDelivery
from . import repository

__all__ = ["drop_for_account", "drop_for_video", "enqueue"]


async def enqueue(session: AsyncSession, job: VideoJob, video: dict[str, Any], now: float) -> bool:
    """Queue `video` (the job as GET /v1/videos/{id} renders it) for the job's webhook URL, if
    it has one; due at once. Whether a delivery was queued."""
    if not job.webhook_url:
        return False
    delivery = WebhookDelivery(
        id=new_id("msg"),
        account_id=job.account_id,
        api_key_id=job.api_key_id,
        video_id=job.id,
        url=job.webhook_url,
        video_object=orjson.dumps(video).decode(),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    await repository.insert(session, delivery)
    return True


async def drop_for_video(session: AsyncSession, video_id: str) -> None:
    """The video is deleted: its deliveries go with it (sent or still being retried), in the
    same transaction; a sender holding one then finds nothing to record."""
    await repository.delete_for_video(session, video_id)


async def drop_for_account(session: AsyncSession, account_id: str) -> None:
    """The account's person is deleted: its deliveries and its keys' default URLs go."""
    await repository.delete_for_account(session, account_id)
    await repository.clear_defaults(session, account_id)
