"""Video jobs: rows driven by the poller, leases, refunds exactly once, restarts, isolation."""

import asyncio

import anyio
import pytest
from sqlalchemy import func, select
from tests.server.fakes import MP4, PNG
from tests.server.helpers import auth, ledger_matches

from reapi.router import RouterConfig
from reapi_server.credits import repository as credit_rows
from reapi_server.jobs.poller import MAX_OUTPUT_FAILURES, JobPoller
from reapi_server.jobs.sweeper import sweep_once
from reapi_server.models import StoredOutput, VideoJob
from reapi_server.usage import repository as usage_rows

COST = 40  # sim-video: 10 credits a second, 4 seconds by default


@pytest.fixture(params=["local", "s3"])
def storage_backend(request: pytest.FixtureRequest) -> str:
    """Every test here runs on local disk and on a real S3 server (moto)."""
    return request.param


async def create(gateway, key, **fields):
    body = {"model": "sim-video", "prompt": "a wave", "size": "1280x720", **fields}
    return await gateway.client.post("/v1/videos", json=body, headers=auth(key))


async def drive(gateway, rounds: int = 5) -> None:
    poller = JobPoller(gateway.rt)
    for _ in range(rounds):
        await poller.run_once()
        await asyncio.sleep(0.02)  # poll_interval is 0.01 in tests


async def test_create_poll_complete_download(gateway):
    account, key = await gateway.account(credits=100)
    created = await create(gateway, key)
    assert created.status_code == 200, created.text
    video = created.json()
    assert video["status"] == "queued" and video["prompt"] is None
    assert await ledger_matches(gateway.rt, account) == (60, 40)
    await JobPoller(gateway.rt).run_once()
    progress = (await gateway.client.get(f"/v1/videos/{video['id']}", headers=auth(key))).json()
    assert progress["status"] == "in_progress" and progress["progress"] == 40
    not_ready = await gateway.client.get(f"/v1/videos/{video['id']}/content", headers=auth(key))
    assert not_ready.status_code == 400 and not_ready.json()["error"]["code"] == "video_not_ready"
    await JobPoller(gateway.rt).run_once()
    done = (await gateway.client.get(f"/v1/videos/{video['id']}", headers=auth(key))).json()
    assert done["status"] == "completed" and done["completed_at"]
    content = await gateway.client.get(f"/v1/videos/{video['id']}/content", headers=auth(key))
    assert content.content == MP4 and content.headers["content-type"] == "video/mp4"
    thumb = await gateway.client.get(
        f"/v1/videos/{video['id']}/content?variant=thumbnail", headers=auth(key)
    )
    assert thumb.content == PNG
    assert await ledger_matches(gateway.rt, account) == (60, 0)
    usage = (await gateway.client.get("/v1/usage", headers=auth(key))).json()["data"][0]
    assert usage["status"] == "succeeded" and usage["credit_cost"] == COST
    assert usage["endpoint"] == "videos.create" and usage["provider"] == "primary"


async def test_multipart_create_with_reference(gateway):
    _, key = await gateway.account(credits=100)
    response = await gateway.client.post(
        "/v1/videos",
        data={"model": "sim-video", "prompt": "p", "seconds": "4", "size": "1280x720"},
        files={"input_reference": ("ref.png", PNG, "image/png")},
        headers=auth(key),
    )
    assert response.status_code == 200, response.text


async def test_failed_task_is_resubmitted_once_then_completes(gateway):
    account, key = await gateway.account(credits=100)
    gateway.upstream.video_outcome = "failed"
    video = (await create(gateway, key)).json()
    gateway.upstream.video_outcome = "completed"  # the backup's task will succeed
    await drive(gateway)
    done = (await gateway.client.get(f"/v1/videos/{video['id']}", headers=auth(key))).json()
    assert done["status"] == "completed" and done["reapi"]["provider"] == "backup"
    assert done["reapi"]["attempts"] == 2
    assert await ledger_matches(gateway.rt, account) == (60, 0)


async def test_failed_everywhere_is_refunded_exactly_once(gateway):
    account, key = await gateway.account(credits=100)
    gateway.upstream.video_outcome = "failed"
    video = (await create(gateway, key)).json()
    await drive(gateway, 8)
    failed = (await gateway.client.get(f"/v1/videos/{video['id']}", headers=auth(key))).json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "generation_failed"
    assert await ledger_matches(gateway.rt, account) == (100, 0)
    await drive(gateway, 3)
    await sweep_once(gateway.rt)
    assert await ledger_matches(gateway.rt, account) == (100, 0)


async def test_content_block_is_not_resubmitted(gateway):
    account, key = await gateway.account(credits=100)
    gateway.upstream.video_outcome = "blocked"
    video = (await create(gateway, key)).json()
    await drive(gateway)
    failed = (await gateway.client.get(f"/v1/videos/{video['id']}", headers=auth(key))).json()
    assert failed["error"]["code"] == "content_policy_violation"
    assert gateway.upstream.count("/videos") == 1
    assert await ledger_matches(gateway.rt, account) == (100, 0)


async def test_poll_timeouts_never_refund_before_the_task_is_final(gateway):
    account, key = await gateway.account(credits=100)
    video = (await create(gateway, key)).json()
    gateway.upstream.poll_faults = {"primary.test": "hang"}
    gateway.upstream.hang_seconds = 1.0
    await drive(gateway, 3)
    assert (await gateway.client.get(f"/v1/videos/{video['id']}", headers=auth(key))).json()[
        "status"
    ] == "queued"
    assert await ledger_matches(gateway.rt, account) == (60, 40)
    gateway.upstream.poll_faults = {}
    async with gateway.rt.db.write() as session:  # skip the backoff
        job = await session.get(VideoJob, video["id"])
        job.next_poll_at = 0
    await drive(gateway)
    assert await ledger_matches(gateway.rt, account) == (60, 0)


async def test_accounts_see_only_their_own_jobs(gateway):
    _, key_a = await gateway.account(credits=100)
    _, key_b = await gateway.account(credits=100)
    video = (await create(gateway, key_a)).json()
    for method, path in [
        ("GET", f"/v1/videos/{video['id']}"),
        ("GET", f"/v1/videos/{video['id']}/content"),
        ("DELETE", f"/v1/videos/{video['id']}"),
    ]:
        response = await gateway.client.request(method, path, headers=auth(key_b))
        assert response.status_code == 404, (method, path)
    listed = (await gateway.client.get("/v1/videos", headers=auth(key_b))).json()
    assert listed["data"] == [] and listed["has_more"] is False
    assert (await gateway.client.get("/v1/usage", headers=auth(key_b))).json()["data"] == []


async def test_list_pages(gateway):
    _, key = await gateway.account(credits=1000)
    ids = [(await create(gateway, key)).json()["id"] for _ in range(3)]
    first = (await gateway.client.get("/v1/videos?limit=2", headers=auth(key))).json()
    assert [v["id"] for v in first["data"]] == ids[::-1][:2] and first["has_more"]
    rest = (
        await gateway.client.get(f"/v1/videos?limit=2&after={first['last_id']}", headers=auth(key))
    ).json()
    assert [v["id"] for v in rest["data"]] == [ids[0]] and not rest["has_more"]
    ascending = (await gateway.client.get("/v1/videos?order=asc", headers=auth(key))).json()
    assert [v["id"] for v in ascending["data"]] == ids


async def test_delete_unfinished_cancels_and_refunds(gateway):
    account, key = await gateway.account(credits=100)
    video = (await create(gateway, key)).json()
    deleted = await gateway.client.delete(f"/v1/videos/{video['id']}", headers=auth(key))
    assert deleted.json() == {"id": video["id"], "object": "video.deleted", "deleted": True}
    assert gateway.upstream.count(f"/videos/{'task_primary_1'}", method="DELETE") == 1
    assert await ledger_matches(gateway.rt, account) == (100, 0)
    assert (
        await gateway.client.get(f"/v1/videos/{video['id']}", headers=auth(key))
    ).status_code == 404
    await drive(gateway)
    assert await ledger_matches(gateway.rt, account) == (100, 0)


async def test_delete_racing_the_pollers_settlement_keeps_its_usage_row(gateway):
    """The job still reads unfinished, but a poller has just settled its hold: the charge stands,
    so the usage row must keep saying so."""
    account, key = await gateway.account(credits=100)
    video = (await create(gateway, key)).json()
    async with gateway.rt.db.write() as session:
        job = await session.get(VideoJob, video["id"])
        await credit_rows.settle(session, job.hold_id, COST, gateway.rt.now())
        await usage_rows.finish(session, job.request_id, status="succeeded", credit_cost=COST)
    await gateway.client.delete(f"/v1/videos/{video['id']}", headers=auth(key))
    usage = (await gateway.client.get("/v1/usage", headers=auth(key))).json()["data"]
    assert (usage[0]["status"], usage[0]["credit_cost"]) == ("succeeded", COST)
    assert await ledger_matches(gateway.rt, account) == (100 - COST, 0)


async def test_delete_finished_removes_outputs(gateway):
    account, key = await gateway.account(credits=100)
    video = (await create(gateway, key)).json()
    await drive(gateway)
    assert len(gateway.stored()) == 2  # the video and its thumbnail
    await gateway.client.delete(f"/v1/videos/{video['id']}", headers=auth(key))
    assert gateway.stored() == {}
    assert await ledger_matches(gateway.rt, account) == (60, 0)


async def test_concurrent_video_limit(make_gateway):
    gateway = await make_gateway(max_concurrent_videos=2)
    _, key = await gateway.account(credits=1000)
    assert (await create(gateway, key)).status_code == 200
    assert (await create(gateway, key)).status_code == 200
    third = await create(gateway, key)
    assert third.status_code == 429 and int(third.headers["retry-after"]) >= 1
    assert third.json()["error"]["code"] == "too_many_concurrent_jobs"
    await drive(gateway)
    assert (await create(gateway, key)).status_code == 200


async def test_stale_submission_released_once(gateway):
    """A process died between reserving and learning the upstream task id."""
    account, key = await gateway.account(credits=100)
    gateway.upstream.faults = {"primary.test": "hang", "backup.test": "hang"}
    gateway.upstream.hang_seconds = 5
    rt = gateway.rt
    task = asyncio.create_task(create(gateway, key))
    await asyncio.sleep(0.1)
    task.cancel()  # the process "dies" mid-submit: simulate by rewinding the shielded cleanup
    try:
        await task
    except asyncio.CancelledError:
        pass
    # Cancellation released it already; now a real crash: a submitting row with an old lease.
    async with rt.db.write() as session:
        hold = await credit_rows.reserve(
            session,
            account,
            40,
            purpose="video",
            request_id="req_dead",
            expires_at=None,
            now=rt.now(),
        )
        session.add(
            VideoJob(
                id="video_dead",
                account_id=account,
                request_id="req_dead",
                model="sim-video",
                status="submitting",
                hold_id=hold,
                cost=40,
                lease_owner="gone",
                lease_expires_at=rt.now() - 1,
                created_at=rt.now(),
                next_poll_at=0,
                progress=0,
                attempts=0,
                poll_failures=0,
            )
        )
    reports = await asyncio.gather(sweep_once(rt), sweep_once(rt))
    assert sum(r.jobs_failed for r in reports) == 1
    assert await ledger_matches(rt, account) == (100, 0)


async def test_jobs_survive_a_restart(gateway, make_gateway):
    account, key = await gateway.account(credits=100)
    video = (await create(gateway, key)).json()
    await gateway.client.aclose()
    restarted = await make_gateway(database_url=gateway.rt.settings.resolved_database_url)
    await drive(restarted)
    done = (await restarted.client.get(f"/v1/videos/{video['id']}", headers=auth(key))).json()
    assert done["status"] == "completed"
    assert await ledger_matches(restarted.rt, account) == (60, 0)


async def test_storage_failure_keeps_the_hold_then_refunds(gateway, monkeypatch):
    account, key = await gateway.account(credits=100)
    video = (await create(gateway, key)).json()

    async def broken_put(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(gateway.rt.store, "put", broken_put)
    for _ in range(MAX_OUTPUT_FAILURES + 2):
        async with gateway.rt.db.write() as session:
            job = await session.get(VideoJob, video["id"])
            job.next_poll_at = 0
        await JobPoller(gateway.rt).run_once()
    failed = (await gateway.client.get(f"/v1/videos/{video['id']}", headers=auth(key))).json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "storage_unavailable"
    assert await ledger_matches(gateway.rt, account) == (100, 0)
    async with gateway.rt.db.read() as session:
        assert (await session.execute(select(func.count()).select_from(StoredOutput))).scalar() == 0


async def test_an_output_the_upstream_never_delivers_is_refunded(gateway):
    account, key = await gateway.account(credits=100)
    video = (await create(gateway, key)).json()
    gateway.upstream.polls_before_done = 0
    gateway.upstream.faults = {"primary.test": "500"}  # the download fails; polls answer
    for _ in range(MAX_OUTPUT_FAILURES + 2):
        async with gateway.rt.db.write() as session:
            job = await session.get(VideoJob, video["id"])
            job.next_poll_at = 0
        await JobPoller(gateway.rt).run_once()
    failed = (await gateway.client.get(f"/v1/videos/{video['id']}", headers=auth(key))).json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "output_unavailable"
    assert "could not be fetched" in failed["error"]["message"]
    assert await ledger_matches(gateway.rt, account) == (100, 0)


async def two_pollers_share_jobs(gateway) -> None:
    """Two processes poll one database: every job is finished once, every hold settled once."""
    account, key = await gateway.account(credits=10_000)
    gateway.upstream.polls_before_done = 0
    ids = [(await create(gateway, key)).json()["id"] for _ in range(8)]
    other = gateway.rt.settings.resolved_database_url
    from tests.server.conftest import GATEWAY  # noqa: F401

    second_rt = await _second_runtime(gateway, other)
    for _ in range(4):
        await asyncio.gather(
            JobPoller(gateway.rt, batch=3).run_once(), JobPoller(second_rt, batch=3).run_once()
        )
    downloads = gateway.upstream.count("/content", method="GET")
    assert downloads == 2 * len(ids)  # one video + one thumbnail per job, never twice
    for video_id in ids:
        body = (await gateway.client.get(f"/v1/videos/{video_id}", headers=auth(key))).json()
        assert body["status"] == "completed"
    assert await ledger_matches(gateway.rt, account) == (10_000 - 8 * COST, 0)
    await second_rt.aclose()


async def _second_runtime(gateway, url):
    import httpx
    from tests.conftest import two_host_catalog

    from reapi.router import RouterConfig
    from reapi_server.runtime import build_runtime

    settings = gateway.rt.settings.model_copy(update={"database_url": url})
    return build_runtime(
        settings,
        catalog=two_host_catalog(),
        http_client=httpx.AsyncClient(transport=gateway.upstream.transport()),
        router_config=RouterConfig(first_byte_timeout=0.3),
        # Another process of the same fleet: it names outputs with the fleet's secret too.
        secret=gateway.rt.secret,
    )


async def test_pollers_never_handle_a_job_twice(gateway):
    await two_pollers_share_jobs(gateway)


async def test_idempotent_video_create_is_one_job(gateway):
    account, key = await gateway.account(credits=100)
    headers = {**auth(key), "idempotency-key": "v1"}
    body = {"model": "sim-video", "prompt": "p"}
    first = await gateway.client.post("/v1/videos", json=body, headers=headers)
    second = await gateway.client.post("/v1/videos", json=body, headers=headers)
    assert first.json()["id"] == second.json()["id"]
    assert gateway.upstream.count("/videos") == 1
    assert await ledger_matches(gateway.rt, account) == (60, 40)
    other = await gateway.client.post("/v1/videos", json={**body, "prompt": "q"}, headers=headers)
    assert other.status_code == 409


async def test_usage_pages_newest_first(gateway):
    _, key = await gateway.account(credits=1000)
    ids = []
    for _ in range(3):
        ids.append((await create(gateway, key)).headers["x-request-id"])
    rows = (await gateway.client.get("/v1/usage?limit=2", headers=auth(key))).json()
    assert [r["id"] for r in rows["data"]] == ids[::-1][:2] and rows["has_more"]
    assert rows["data"][0]["status"] == "pending" and rows["data"][0]["endpoint"] == "videos.create"


async def test_video_limit_is_exact_under_concurrency(make_gateway):
    gateway = await make_gateway(max_concurrent_videos=3)
    _, key = await gateway.account(credits=10_000)
    responses = await asyncio.gather(*(create(gateway, key) for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [200] * 3 + [429] * 7


async def test_a_task_started_after_its_job_was_swept_is_cancelled_upstream(make_gateway):
    """The sweeper failed (and refunded) a `submitting` job whose submission was still under
    way: the task the upstream then started is nobody's, so it is cancelled, not left to run."""
    from reapi_server.jobs.submission import finish_failed

    # The upstream holds the submission until the sweep is done, however long that takes on a
    # busy machine: a first-byte deadline of 30 s (not the tests' 0.3 s) never cuts it short,
    # which would fail over to the backup instead.
    gateway = await make_gateway(router_config=RouterConfig(first_byte_timeout=30.0))
    account, key = await gateway.account(credits=100)
    gateway.upstream.faults = {"primary.test": "hang"}
    gateway.upstream.release, gateway.upstream.held = anyio.Event(), anyio.Event()
    rt = gateway.rt
    task = asyncio.create_task(create(gateway, key))
    with anyio.fail_after(10):  # the submission reached the upstream: its job is `submitting`
        await gateway.upstream.held.wait()
    async with rt.db.read() as session:
        job_id = (await session.execute(select(VideoJob.id))).scalar_one()
    assert await finish_failed(rt, job_id, "interrupted", owner=None, states=("submitting",))
    gateway.upstream.release.set()  # now the upstream answers: a task, started after the sweep
    await task
    assert gateway.upstream.calls[0][:2] == ("primary.test", "POST")
    assert gateway.upstream.count("/videos") == 1  # no failover
    assert gateway.upstream.count("/videos/task_primary_1", method="DELETE") == 1
    assert await ledger_matches(rt, account) == (100, 0)
