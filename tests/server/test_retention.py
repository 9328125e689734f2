"""CHECKS.md §25 with a moved clock: usage rows, video jobs and mirrored outputs (rows and
objects) 31 days old are deleted; 29 days old they remain. Two processes running the job at
once delete each row (and queue each object) once."""

import asyncio

import pytest
from sqlalchemy import func, select
from tests.server.helpers import auth, unnamed
from tests.server.test_videos import create, drive

from reapi_server.jobs.poller import JobPoller
from reapi_server.models import PendingDeletion, StoredOutput, UsageRecord, VideoJob
from reapi_server.retention import purge_once

DAY = 86_400.0


@pytest.fixture(params=["local", "s3"])
def storage_backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def _count(rt, model) -> int:
    async with rt.db.read() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar()


async def _make_outputs(gateway, key: str) -> dict[str, object]:
    """An image request (two images) and a finished video, made at the clock's current time."""
    image = await gateway.client.post(
        "/v1/images/generations",
        json={"prompt": "p", "n": 2, "response_format": "url"},
        headers=auth(key),
    )
    video = (await create(gateway, key)).json()
    await drive(gateway)
    return {
        "request_id": image.headers["x-request-id"],
        "urls": [d["url"] for d in image.json()["data"]],
        "video_id": video["id"],
    }


async def moved_clock_case(gateway, second_rt=None) -> None:
    rt = gateway.rt
    start = rt.now()
    _, key = await gateway.account(credits=100_000)
    rt.clock = lambda: start
    old = await _make_outputs(gateway, key)
    rt.clock = lambda: start + 2 * DAY
    young = await _make_outputs(gateway, key)
    assert len(gateway.stored()) == 8 and await _count(rt, UsageRecord) == 4

    rt.clock = lambda: start + 31 * DAY  # `old` is 31 days old, `young` 29
    if second_rt is not None:
        second_rt.clock = rt.clock
        reports = await asyncio.gather(purge_once(rt, batch=1), purge_once(second_rt, batch=1))
    else:
        reports = [await purge_once(rt)]
    assert sum(r.outputs for r in reports) == 4  # two images, a video, its thumbnail
    assert sum(r.usage_rows for r in reports) == 2
    assert sum(r.video_jobs for r in reports) == 1
    assert sum(r.objects for r in reports) == 4

    assert unnamed(gateway.stored()) == sorted(
        [
            f"outputs/{young['request_id']}/0.png",
            f"outputs/{young['request_id']}/1.png",
            f"outputs/{young['video_id']}/0.mp4",
            f"outputs/{young['video_id']}/1.png",
        ]
    )
    assert await _count(rt, StoredOutput) == 4 and await _count(rt, UsageRecord) == 2
    assert await _count(rt, VideoJob) == 1 and await _count(rt, PendingDeletion) == 0
    for url in old["urls"]:
        assert (await gateway.client.get(url)).status_code == 404
    for url in young["urls"]:
        assert (await gateway.client.get(url)).status_code == 200
    gone = await gateway.client.get(f"/v1/videos/{old['video_id']}", headers=auth(key))
    assert gone.status_code == 404
    kept = await gateway.client.get(f"/v1/videos/{young['video_id']}/content", headers=auth(key))
    assert kept.status_code == 200
    usage = {
        u["id"] for u in (await gateway.client.get("/v1/usage", headers=auth(key))).json()["data"]
    }
    assert young["request_id"] in usage and old["request_id"] not in usage

    rt.clock = lambda: start + 33 * DAY  # now `young` is 31 days old too
    await purge_once(rt)
    assert gateway.stored() == {} and await _count(rt, UsageRecord) == 0


async def test_29_days_kept_31_days_gone(gateway):
    await moved_clock_case(gateway)


async def two_processes_case(gateway) -> None:
    """The moved-clock case with a second server process purging the same database."""
    from tests.server.test_videos import _second_runtime

    second = await _second_runtime(gateway, gateway.rt.settings.resolved_database_url)
    try:
        await moved_clock_case(gateway, second)
    finally:
        await second.aclose()


async def test_two_processes_share_the_work(gateway):
    await two_processes_case(gateway)


async def test_unfinished_jobs_are_never_purged(gateway):
    _, key = await gateway.account(credits=1000)
    start = gateway.rt.now()
    video = (await create(gateway, key)).json()
    await JobPoller(gateway.rt).run_once()  # in progress
    gateway.rt.clock = lambda: start + 40 * DAY
    await purge_once(gateway.rt)
    async with gateway.rt.db.read() as session:
        assert (await session.get(VideoJob, video["id"])) is not None


async def test_the_retention_period_is_configurable(make_gateway):
    gateway = await make_gateway(retention_days=7)
    _, key = await gateway.account()
    start = gateway.rt.now()
    gateway.rt.clock = lambda: start
    await gateway.client.post("/v1/images/generations", json={"prompt": "p"}, headers=auth(key))
    gateway.rt.clock = lambda: start + 6.9 * DAY
    assert (await purge_once(gateway.rt)).outputs == 0
    gateway.rt.clock = lambda: start + 7.1 * DAY
    assert (await purge_once(gateway.rt)).outputs == 1
    assert gateway.stored() == {}


async def test_audit_rows_go_after_audit_retention_days(make_gateway):
    """What operators did is kept `audit_retention_days` (365 unless configured), then the
    retention job deletes it, in batches."""
    from reapi_server.audit import Actor, record
    from reapi_server.models import AuditEntry

    gateway = await make_gateway(audit_retention_days=10)
    rt = gateway.rt
    account, _ = await gateway.account()
    start = rt.now()
    async with rt.db.write() as session:
        for age in (11, 11, 11, 9):
            await record(
                session,
                Actor.cli(),
                "credits.adjust",
                now=start - age * DAY,
                account_id=account,
                detail={"amount": 1, "reason": "goodwill"},
            )
    rt.clock = lambda: start
    assert (await purge_once(rt, batch=2)).audit_rows == 3
    async with rt.db.read() as session:
        (left,) = (await session.execute(select(AuditEntry))).scalars()
    assert left.created_at == start - 9 * DAY
    rt.clock = lambda: start + 1.1 * DAY
    assert (await purge_once(rt)).audit_rows == 1 and await _count(rt, AuditEntry) == 0


def test_audit_rows_are_kept_a_year_by_default():
    from reapi_server.config import Settings

    assert Settings(secret_key="x").audit_retention_days == 365


# -- what dead processes leave behind --------------------------------------------------------


async def test_abandoned_writes_are_swept_after_a_grace_period(gateway):
    from tests.server.test_storage import _abandon_a_write, leftovers

    rt = gateway.rt
    _abandon_a_write(rt.store, "outputs/video_cccccccccccccccc/0.mp4", age=60)
    if gateway.s3 is None:  # (S3: moto does not keep when an upload began)
        assert (await purge_once(rt)).abandoned_writes == 0
        assert len(leftovers(rt.store)) == 1
    start = rt.now()
    rt.clock = lambda: start + rt.settings.abandoned_write_seconds + 1
    assert (await purge_once(rt)).abandoned_writes == 1
    assert leftovers(rt.store) == [] and gateway.stored() == {}


async def test_a_dead_image_requests_outputs_are_deleted(gateway):
    """Its process stored the images, then died before writing their rows: when the sweeper
    releases the hold, the request's objects are queued for deletion with the release."""
    from tests.server.fakes import PNG

    from reapi_server.credits import repository as credit_rows
    from reapi_server.jobs.sweeper import sweep_once
    from reapi_server.mirror.outputs import Output, mirror

    rt = gateway.rt
    account, _ = await gateway.account(credits=100)
    request_id = "req_dddddddddddddddddddddddd"
    async with rt.db.write() as session:
        await credit_rows.reserve(
            session,
            account,
            40,
            purpose="image",
            request_id=request_id,
            expires_at=rt.now() + rt.settings.image_hold_seconds,
            now=rt.now(),
        )
    await mirror(
        rt.store, rt.output_names, request_id, [Output("image", PNG), Output("image", PNG)]
    )
    assert len(gateway.stored()) == 2
    start = rt.now()
    rt.clock = lambda: start + rt.settings.image_hold_seconds + 1
    assert (await sweep_once(rt)).holds_released == 1
    await purge_once(rt)
    assert gateway.stored() == {} and await _count(rt, PendingDeletion) == 0


async def test_a_queued_task_whose_rows_were_written_since_is_kept(gateway):
    """The other side of the above: had the request been alive after all (slower than its
    hold) and written its rows, its objects must stay — no row may point at nothing."""
    from tests.server.fakes import PNG

    from reapi_server.mirror.keys import task_prefix
    from reapi_server.mirror.outputs import Output, mirror
    from reapi_server.mirror.repository import enqueue_deletions, insert_outputs
    from reapi_server.mirror.service import purge_deletions

    rt = gateway.rt
    account, _ = await gateway.account(credits=100)
    request_id = "req_eeeeeeeeeeeeeeeeeeeeeeee"
    files = await mirror(rt.store, rt.output_names, request_id, [Output("image", PNG)])
    async with rt.db.write() as session:
        await enqueue_deletions(session, [task_prefix(request_id)], rt.now())
    async with rt.db.write() as session:
        await insert_outputs(session, files, account, rt.now())
    await purge_deletions(rt)
    assert list(gateway.stored()) == [files[0].storage_key]
    assert await _count(rt, PendingDeletion) == 0


async def test_old_rows_of_every_account_go_in_small_batches(db_gateway):
    """Retention finds old rows account by account (migration 0020), on SQLite and PostgreSQL:
    with batches of one, every account's old rows go and every young one stays."""
    rt = db_gateway.rt
    start = rt.now()
    keys = [(await db_gateway.account(credits=1000))[1] for _ in range(3)]
    requests: dict[str, list[str]] = {"old": [], "young": []}
    for age, at in (("old", start), ("young", start + 2 * DAY)):
        rt.clock = lambda at=at: at
        for key in keys:
            answer = await db_gateway.client.post(
                "/v1/images/generations", json={"prompt": "p"}, headers=auth(key)
            )
            assert answer.status_code == 200
            requests[age].append(answer.headers["x-request-id"])
    rt.clock = lambda: start + 31 * DAY
    report = await purge_once(rt, batch=1)
    assert (report.usage_rows, report.outputs) == (3, 3)
    async with rt.db.read() as session:
        kept = set((await session.execute(select(UsageRecord.id))).scalars())
        tasks = set((await session.execute(select(StoredOutput.task_id))).scalars())
    assert kept == set(requests["young"]) and tasks == set(requests["young"])
