"""A video's request body stays in the gateway's memory only while a resubmission to another
route is still possible, bounded in bytes and age; every process drops the bodies of jobs that
ended or went away, whoever ended them; and every job has a deadline, after which it fails, is
cancelled upstream and refunded once.

The cases that need two gateway processes on one database are written once and run on SQLite
here and on PostgreSQL in test_postgres."""

import asyncio
import secrets

import pytest
from tests.conftest import two_host_catalog
from tests.server.fakes import PNG
from tests.server.helpers import auth, ledger_matches
from tests.server.other_process import OtherProcess

from reapi_server.jobs.memory import PayloadMemory
from reapi_server.jobs.poller import JobPoller
from reapi_server.jobs.sweeper import sweep_once
from reapi_server.models import VideoJob

COST = 40
MIB = 1024 * 1024


def markers() -> tuple[str, bytes]:
    token = secrets.token_hex(8)
    return f"MARKER-prompt-{token}", f"MARKER-image-{token}".encode()


async def create(gateway, key: str, prompt: str = "a wave", image: bytes = b"") -> dict:
    response = await gateway.client.post(
        "/v1/videos",
        data={"model": "sim-video", "prompt": prompt, "size": "1280x720"},
        files={"input_reference": ("ref.png", PNG + image, "image/png")},
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    return response.json()


async def drive(rt, rounds: int = 5) -> None:
    poller = JobPoller(rt)
    for _ in range(rounds):
        await poller.run_once()
        await asyncio.sleep(0.02)


async def status_of(gateway, key: str, video_id: str) -> dict:
    return (await gateway.client.get(f"/v1/videos/{video_id}", headers=auth(key))).json()


async def skip_backoff(rt, video_id: str) -> None:
    async with rt.db.write() as session:
        job = await session.get(VideoJob, video_id)
        job.next_poll_at = 0


# -- what is kept, and until when ---------------------------------------------------------------


async def test_a_body_is_kept_while_a_resubmission_is_possible_and_no_longer(gateway):
    _, key = await gateway.account(credits=1000)
    gateway.upstream.video_outcome = "failed"
    video = await create(gateway, key)
    assert gateway.rt.memory.get(video["id"]) is not None  # the backup route is still open
    gateway.upstream.video_outcome = "completed"
    await JobPoller(gateway.rt).run_once()  # in progress
    await JobPoller(gateway.rt).run_once()  # failed upstream: resubmitted to the backup
    job = await status_of(gateway, key, video["id"])
    assert job["status"] == "queued" and job["reapi"]["provider"] == "backup"
    assert gateway.rt.memory.get(video["id"]) is None  # no second resubmission: the body goes


async def test_no_body_is_kept_without_another_route(make_gateway):
    catalog = two_host_catalog()
    spec = catalog.models["sim-video"]
    catalog.models["sim-video"] = spec.model_copy(update={"routes": spec.routes[:1]})
    gateway = await make_gateway(catalog=catalog)
    _, key = await gateway.account(credits=1000)
    video = await create(gateway, key)
    assert gateway.rt.memory.get(video["id"]) is None


async def test_a_completed_task_drops_the_body_before_its_output_is_stored(gateway, monkeypatch):
    """The lease is lost while settling (another worker took the job over): the body must not
    stay behind in the process that lost it."""
    _, key = await gateway.account(credits=1000)
    video = await create(gateway, key)
    rt = gateway.rt
    put = rt.store.put

    async def put_then_lose_the_lease(*args, **kwargs):
        size = await put(*args, **kwargs)
        async with rt.db.write() as session:  # meanwhile another worker took the job over
            job = await session.get(VideoJob, video["id"])
            job.lease_owner = "another-worker"
        return size

    monkeypatch.setattr(rt.store, "put", put_then_lose_the_lease)
    await drive(rt, 2)
    async with rt.db.read() as session:
        assert (await session.get(VideoJob, video["id"])).status != "completed"  # lease lost
    assert rt.memory.get(video["id"]) is None


async def other_process_ends_the_jobs_case(gateway) -> None:
    """Another process fails one job (its poller sees the task fail, and has no body to
    resubmit) and deletes another: this process's periodic sweep drops both bodies."""
    account, key = await gateway.account(credits=1000)
    gateway.upstream.video_outcome = "failed"
    failing = await create(gateway, key)
    gateway.upstream.video_outcome = "completed"
    deleted = await create(gateway, key)
    rt = gateway.rt
    assert rt.memory.get(failing["id"]) and rt.memory.get(deleted["id"])
    async with OtherProcess(gateway) as other:
        gone = await other.request("DELETE", f"/v1/videos/{deleted['id']}", headers=auth(key))
        assert gone.status_code == 200
        await other.call(drive, other.rt, 3)
        assert (await status_of(gateway, key, failing["id"]))["status"] == "failed"
    report = await sweep_once(rt)
    assert report.bodies_dropped == 2
    assert rt.memory.get(failing["id"]) is None and rt.memory.get(deleted["id"]) is None
    assert await ledger_matches(rt, account) == (1000, 0)


async def test_another_process_ends_the_jobs(gateway):
    await other_process_ends_the_jobs_case(gateway)


async def test_a_sweep_keeps_the_bodies_of_running_jobs(gateway):
    _, key = await gateway.account(credits=1000)
    video = await create(gateway, key)
    await JobPoller(gateway.rt).run_once()  # in progress
    assert (await sweep_once(gateway.rt)).bodies_dropped == 0
    assert gateway.rt.memory.get(video["id"]) is not None


# -- bounds ---------------------------------------------------------------------------------------


async def test_bodies_are_bounded_in_bytes_oldest_first(make_gateway):
    gateway = await make_gateway(video_memory_bytes=int(2.5 * MIB))
    account, key = await gateway.account(credits=1000)
    big = b"\0" * MIB
    gateway.upstream.video_outcome = "failed"
    first = await create(gateway, key, image=big)
    gateway.upstream.video_outcome = "completed"
    second = await create(gateway, key, image=big)
    third = await create(gateway, key, image=big)
    memory = gateway.rt.memory
    assert memory.get(first["id"]) is None  # evicted: oldest first
    assert memory.get(second["id"]) is not None and memory.get(third["id"]) is not None
    assert 2 * MIB < memory.bytes <= 2.5 * MIB
    await drive(gateway.rt)
    # Without its body the first job cannot be resubmitted: it fails and is refunded.
    assert (await status_of(gateway, key, first["id"]))["status"] == "failed"
    assert await ledger_matches(gateway.rt, account) == (1000 - 2 * COST, 0)


async def test_bodies_are_bounded_in_age(gateway):
    _, key = await gateway.account(credits=1000)
    rt = gateway.rt
    start = rt.now()
    rt.clock = lambda: start
    old = await create(gateway, key)
    rt.clock = lambda: start + rt.settings.video_job_deadline_seconds + 1
    young = await create(gateway, key)
    assert rt.memory.get(old["id"]) is None and rt.memory.get(young["id"]) is not None


def test_the_memory_alone_evicts_oldest_by_bytes_count_and_age():
    from tests.sdk.test_job_memory import _job

    now = [0.0]
    memory = PayloadMemory(max_bytes=3_000, max_age=10.0, max_jobs=3, clock=lambda: now[0])
    for name in ("a", "b", "c"):
        memory.remember(name, _job(1_000))
    assert [n for n in "abc" if memory.get(n)] == ["b", "c"]
    memory.remember("huge", _job(5_000))  # larger than the bound: never kept
    assert memory.get("huge") is None and memory.bytes <= 3_000
    for name in ("d", "e", "f", "g"):
        memory.remember(name, _job(1))
    assert len(memory) == 3
    now[0] = 11.0
    memory.remember("h", _job(1))
    assert [n for n in "efgh" if memory.get(n)] == ["h"]


# -- the deadline ----------------------------------------------------------------------------------


async def polls_failing_until_the_deadline_case(gateway) -> None:
    account, key = await gateway.account(credits=100)
    rt = gateway.rt
    start = rt.now()
    rt.clock = lambda: start
    video = await create(gateway, key)
    gateway.upstream.poll_faults = {"primary.test": "500"}
    for _ in range(3):
        await drive(rt, 1)
        await skip_backoff(rt, video["id"])
    assert (await status_of(gateway, key, video["id"]))["status"] == "queued"
    assert await ledger_matches(rt, account) == (100 - COST, COST)

    rt.clock = lambda: start + rt.settings.video_job_deadline_seconds + 1
    await skip_backoff(rt, video["id"])
    await drive(rt, 2)
    failed = await status_of(gateway, key, video["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "deadline_exceeded"
    assert "nothing was charged" in failed["error"]["message"]
    assert gateway.upstream.count("/videos/task_primary_1", method="DELETE") == 1
    assert rt.memory.get(video["id"]) is None
    assert await ledger_matches(rt, account) == (100, 0)
    await drive(rt, 3)
    await sweep_once(rt)
    assert await ledger_matches(rt, account) == (100, 0)  # refunded once
    usage = (await gateway.client.get("/v1/usage", headers=auth(key))).json()["data"][0]
    assert (usage["status"], usage["error_code"]) == ("failed", "deadline_exceeded")


async def test_polls_failing_forever_end_at_the_deadline(gateway):
    await polls_failing_until_the_deadline_case(gateway)


async def test_the_deadline_is_a_setting(make_gateway):
    gateway = await make_gateway(video_job_deadline_seconds=60)
    account, key = await gateway.account(credits=100)
    rt = gateway.rt
    start = rt.now()
    rt.clock = lambda: start
    video = await create(gateway, key)
    gateway.upstream.polls_before_done = 1000  # never finishes
    await drive(rt, 2)
    rt.clock = lambda: start + 61
    await skip_backoff(rt, video["id"])
    await drive(rt, 1)
    assert (await status_of(gateway, key, video["id"]))["error"]["code"] == "deadline_exceeded"
    assert await ledger_matches(rt, account) == (100, 0)


@pytest.mark.parametrize("deadline", [0, -1])
def test_the_deadline_must_be_positive(tmp_path, deadline):
    from pydantic import ValidationError
    from tests.server.conftest import settings_for

    with pytest.raises(ValidationError):
        settings_for(tmp_path, video_job_deadline_seconds=deadline)
