"""Revoked API keys leave with the usage metadata that could name them: the retention job
deletes a key revoked more than `retention_days` ago (its spend alert with it), on SQLite and
PostgreSQL, with a moved clock. Kept: a key revoked more recently, an active key, a revoked key
with an unfinished video (it still settles on the key) or a webhook delivery being sent."""

from __future__ import annotations

from sqlalchemy import func, select
from tests.server.helpers import auth
from tests.server.test_videos import create

from reapi_server.api_keys.service import issue_key, revoke_key
from reapi_server.jobs.poller import JobPoller
from reapi_server.models import ApiKey, KeySpendAlert, UsageRecord, WebhookDelivery
from reapi_server.retention import purge_once

DAY = 86_400.0


async def _key(rt, account: str, name: str) -> tuple[str, str]:
    """(key id, the key) of a new model key."""
    async with rt.db.write() as session:
        row, issued = await issue_key(session, account, name=name, now=rt.now())
    return row.id, issued.plaintext


async def _revoke(rt, key_id: str) -> None:
    async with rt.db.write() as session:
        assert await revoke_key(session, key_id, now=rt.now())


async def _key_ids(rt) -> set[str]:
    async with rt.db.read() as session:
        return set((await session.execute(select(ApiKey.id))).scalars())


async def test_keys_revoked_before_the_retention_period_are_deleted(db_gateway):
    gateway, rt = db_gateway, db_gateway.rt
    start = rt.now()
    rt.clock = lambda: start
    account, first = await gateway.account(credits=100_000)
    used_id, used = await _key(rt, account, "used then revoked")
    image = await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p"}, headers=auth(used)
    )
    assert image.status_code == 200, image.text
    alerted_id, _ = await _key(rt, account, "with an alert")
    later_id, _ = await _key(rt, account, "revoked later")
    video_id, video_key = await _key(rt, account, "unfinished video")
    sending_id, _ = await _key(rt, account, "delivery being sent")
    active_ids = await _key_ids(rt) - {used_id, alerted_id, later_id, video_id, sending_id}

    video = await create(gateway, video_key)
    assert video.status_code == 200, video.text
    await JobPoller(rt).run_once()  # in progress: the key's unfinished video
    async with rt.db.write() as session:
        session.add(
            KeySpendAlert(key_id=alerted_id, account_id=account, percent=80, created_at=start)
        )
    rt.clock = lambda: start + DAY
    for key_id in (used_id, alerted_id, video_id, sending_id):
        await _revoke(rt, key_id)
    rt.clock = lambda: start + 5 * DAY
    await _revoke(rt, later_id)

    rt.clock = lambda: start + 30.5 * DAY  # 29.5 days after the first revocations
    assert (await purge_once(rt)).revoked_keys == 0
    assert await _key_ids(rt) == active_ids | {used_id, alerted_id, later_id, video_id, sending_id}

    rt.clock = lambda: start + 31.5 * DAY  # 30.5 days after them, 26.5 after the later one
    async with rt.db.write() as session:  # a video's end being announced, signed with the key
        session.add(
            WebhookDelivery(
                id="whd_pending",
                account_id=account,
                api_key_id=sending_id,
                video_id=video.json()["id"],
                url="https://example.com/hook",
                video_object="{}",
                next_attempt_at=rt.now(),
                created_at=rt.now(),
            )
        )
    assert (await purge_once(rt)).revoked_keys == 2
    assert await _key_ids(rt) == active_ids | {later_id, video_id, sending_id}
    async with rt.db.read() as session:
        alerts = (await session.execute(select(func.count()).select_from(KeySpendAlert))).scalar()
        naming = await session.execute(
            select(UsageRecord.id).where(UsageRecord.api_key_id.in_([used_id, alerted_id]))
        )
    assert alerts == 0  # went with its key
    assert naming.first() is None  # no usage row names a deleted key
    # A deleted key is refused as a revoked one was; the account's active key still works.
    for key, status in ((used, 401), (first, 200)):
        answer = await gateway.client.post(
            "/v1/images/generations", json={"prompt": "p"}, headers=auth(key)
        )
        assert answer.status_code == status, answer.text

    # The later one is past the period too, and the delivery past `webhook_retention_days`;
    # the video is still unfinished.
    rt.clock = lambda: start + 40 * DAY
    assert (await purge_once(rt)).revoked_keys == 2
    assert await _key_ids(rt) == active_ids | {video_id}
