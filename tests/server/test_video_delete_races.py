"""DELETE /v1/videos/{id} racing another writer on PostgreSQL, where the job is read before its
account is locked: what it does must follow the job as it is once the lock is held, not as it
was read (SQLite runs one writer at a time, so there the race cannot happen)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update
from tests.server.helpers import auth, ledger_matches

from reapi_server.jobs.poller import JobPoller
from reapi_server.models import VideoJob
from reapi_server.models.webhooks import WebhookDelivery

COST = 40  # sim-video: 4 seconds at 10 credits
on_postgres = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


async def _video_with_webhook(gateway, key) -> str:
    body = {"model": "sim-video", "prompt": "a wave", "size": "1280x720"}
    created = await gateway.client.post("/v1/videos", json=body, headers=auth(key))
    assert created.status_code == 200, created.text
    video_id = created.json()["id"]
    async with gateway.rt.db.write() as session:  # as a checked webhook_url would be kept
        await session.execute(
            update(VideoJob)
            .where(VideoJob.id == video_id)
            .values(webhook_url="https://hooks.example.com/x")
        )
    return video_id


def _before_the_first_lock(gateway, monkeypatch, step) -> None:
    """Run `step` (another writer, committing) between the DELETE's read and its lock."""
    db = gateway.rt.db
    lock = db.lock_accounts
    pending = [step]

    async def lock_after_step(session, *account_ids):
        if pending:
            await pending.pop()()
        await lock(session, *account_ids)

    monkeypatch.setattr(db, "lock_accounts", lock_after_step)


async def _deliveries(gateway) -> list[str]:
    async with gateway.rt.db.read() as session:
        return list(await session.scalars(select(WebhookDelivery.video_object)))


@on_postgres
async def test_a_second_delete_of_the_same_video_finds_nothing(db_gateway, monkeypatch):
    """Two DELETEs at once: one deletes and cancels, the other answers 404 (it answered 200,
    cancelled the upstream task again and queued the job's end a second time)."""
    gateway = db_gateway
    account, key = await gateway.account(credits=1000)
    video_id = await _video_with_webhook(gateway, key)
    path = f"/v1/videos/{video_id}"
    first: list[int] = []

    async def other_delete() -> None:
        first.append((await gateway.client.delete(path, headers=auth(key))).status_code)

    _before_the_first_lock(gateway, monkeypatch, other_delete)
    second = await gateway.client.delete(path, headers=auth(key))
    assert first == [200]
    assert second.status_code == 404, second.text
    assert second.json()["error"]["code"] == "not_found"
    assert gateway.upstream.count("/videos/task_primary_1", method="DELETE") == 1
    assert len(await _deliveries(gateway)) == 1  # its end, announced once
    assert await ledger_matches(gateway.rt, account) == (1000, 0)


@on_postgres
async def test_a_delete_racing_completion_announces_no_cancellation(db_gateway, monkeypatch):
    """The poller completes (and charges) the job between the DELETE's read and its lock: the
    job is deleted as a finished one. It was treated as unfinished: a `cancelled` end was sent
    to its webhook for a job that was charged, and the finished task cancelled upstream."""
    gateway = db_gateway
    account, key = await gateway.account(credits=1000)
    video_id = await _video_with_webhook(gateway, key)
    poller = JobPoller(gateway.rt)
    await poller.run_once()  # in_progress

    _before_the_first_lock(gateway, monkeypatch, poller.run_once)  # → completed, charged
    deleted = await gateway.client.delete(f"/v1/videos/{video_id}", headers=auth(key))
    assert deleted.status_code == 200, deleted.text
    assert await ledger_matches(gateway.rt, account) == (1000 - COST, 0)
    assert await _deliveries(gateway) == []  # a deleted video's deliveries go with it
    assert gateway.upstream.count("/videos/task_primary_1", method="DELETE") == 0
    assert gateway.stored() == {}
    async with gateway.rt.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(VideoJob)) == 0
