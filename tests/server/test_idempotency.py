"""`Idempotency-Key`: waiting for the first request, crashes between charge and record, and
replays after the outputs were deleted.

Requests that wait for another one with the same key used to poll the database with a write
transaction every 50 ms: 100 waiters took most of a core and slowed every other request several
times over. Now a waiter in the process that runs the first request waits on an in-process
event, and one in another process reads (no write transaction) with exponential backoff."""

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from tests.server.helpers import auth, ledger_matches

from reapi_server.jobs.sweeper import sweep_once
from reapi_server.models import VideoJob

BODY = {"model": "gpt-image-2", "prompt": "a lighthouse"}
WAITERS = 100
WINDOW = 2.0
WRITES = ("INSERT", "UPDATE", "DELETE", "BEGIN IMMEDIATE")


def _hold_first_store(rt) -> tuple[asyncio.Event, asyncio.Event]:
    """The first output write waits for `release`: the first request stays in flight."""
    entered, release = asyncio.Event(), asyncio.Event()
    real_put = rt.store.put
    calls = []

    async def put(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            entered.set()
            await release.wait()
        return await real_put(*args, **kwargs)

    rt.store.put = put
    return entered, release


async def _post(gateway, key: str, headers: dict[str, str] | None = None, **fields):
    return await gateway.client.post(
        "/v1/images/generations", json={**BODY, **fields}, headers={**auth(key), **(headers or {})}
    )


async def _latencies(gateway, key: str, count: int) -> list[float]:
    """Wall time of unrelated requests (another account's generations), one after another."""
    times = []
    for index in range(count):
        started = time.perf_counter()
        response = await _post(gateway, key, prompt=f"unrelated {index}")
        assert response.status_code == 200
        times.append(time.perf_counter() - started)
    return times


async def test_a_hundred_waiters_cost_little_and_get_the_same_answer(db_gateway):
    gateway = db_gateway
    rt = gateway.rt
    account, key = await gateway.account(credits=1000)
    _, other = await gateway.account(credits=100_000)
    before = statistics.median(await _latencies(gateway, other, 20))
    entered, release = _hold_first_store(rt)
    headers = {"idempotency-key": "one-key"}
    first = asyncio.create_task(_post(gateway, key, headers))
    await asyncio.wait_for(entered.wait(), 10)
    waiters = [asyncio.create_task(_post(gateway, key, headers)) for _ in range(WAITERS)]
    await asyncio.sleep(0.3)  # every waiter has found the key in flight

    cpu, wall = time.process_time(), time.perf_counter()
    during: list[float] = []
    while time.perf_counter() - wall < WINDOW:
        during += await _latencies(gateway, other, 1)
        await asyncio.sleep(0.05)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    release.set()
    responses = [await first, *await asyncio.gather(*waiters)]

    # The old loop kept a core busy (every waiter: a write transaction every 50 ms, 2,000 a
    # second); the unrelated requests themselves use a few percent of it. The latency bound
    # leaves room for a machine busy with other work (the CPU bound is the strict one).
    assert statistics.median(during) < 3 * before + 0.02, (before, statistics.median(during))
    assert cpu < 0.35 * wall, (cpu, wall)
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == WAITERS
    assert gateway.upstream.count("/images/generations") == 1 + len(during) + 20
    assert (await ledger_matches(rt, account))[0] == 1000 - 40


async def test_a_waiter_in_another_process_reads_with_backoff(db_gateway, make_gateway):
    """Two gateway processes on one database: the second one's waiter learns the first one's
    answer by reading, a few times, never by writing."""
    first_gateway = db_gateway
    url = first_gateway.rt.settings.resolved_database_url
    second_gateway = await make_gateway(database_url=url)
    account, key = await first_gateway.account(credits=1000)
    entered, release = _hold_first_store(first_gateway.rt)
    headers = {"idempotency-key": "shared-key"}
    # URLs: the processes share the database, not their local storage directories.
    first = asyncio.create_task(_post(first_gateway, key, headers, response_format="url"))
    await asyncio.wait_for(entered.wait(), 10)

    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    engines = {second_gateway.rt.db._reader, second_gateway.rt.db._writer}
    for engine in engines:
        event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        waiter = asyncio.create_task(_post(second_gateway, key, headers, response_format="url"))
        await asyncio.sleep(WINDOW)
        waited = [s for s in statements if "idempotency_records" in s]
        release.set()
        answers = [await first, await waiter]
    finally:
        for engine in engines:
            event.remove(engine.sync_engine, "before_cursor_execute", count)

    # Backoff from 50 ms: a handful of reads in two seconds (the old loop: forty writes).
    assert 2 <= len(waited) <= 9, waited
    assert not [s for s in waited if s.lstrip().upper().startswith(WRITES)]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json() == answers[1].json()
    assert answers[1].headers["idempotent-replayed"] == "true"
    assert first_gateway.upstream.count("/images/generations") == 1
    assert (await ledger_matches(first_gateway.rt, account))[0] == 1000 - 40


# -- a crash between the charge and the record ---------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("path", "body", "cost"),
    [
        ("/v1/images/generations", {**BODY, "response_format": "url"}, 40),
        ("/v1/images/generations", BODY, 40),
        ("/v1/videos", {"model": "sim-video", "prompt": "a wave", "size": "1280x720"}, 40),
    ],
    ids=["image-url", "image-b64", "video"],
)
async def test_a_crash_after_the_charge_never_charges_a_retry_again(db_gateway, path, body, cost):
    """A gateway process is SIGKILLed right after the transaction that makes its request's
    charge final (an image's settlement, a video's submitted job). The answer used to be
    recorded by a later transaction: the record stayed in progress, the sweeper dropped it as
    abandoned, and a retry with the same key ran (and was charged) a second time."""
    gateway = db_gateway
    rt = gateway.rt
    account, key = await gateway.account(credits=1000)
    child = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "tests.server.crash_child",
            str(gateway.data_dir),
            rt.settings.resolved_database_url,
            key,
            path,
            json.dumps(body),
            "2",  # the hold, then the transaction that makes the charge final
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    later = rt.now() + rt.settings.image_hold_seconds + 60
    rt.clock = lambda: later
    await sweep_once(rt)  # drops records whose request died (in progress, long ago)

    retry = await gateway.client.post(
        path, json=body, headers={**auth(key), "idempotency-key": "crash"}
    )
    assert retry.status_code == 200, retry.text
    assert retry.headers.get("idempotent-replayed") == "true"
    assert gateway.upstream.calls == []  # this process never called the upstream
    balance, reserved = await ledger_matches(rt, account)
    assert balance + reserved == 1000 - (cost if path.endswith("generations") else 0)
    assert balance == 1000 - cost
    if path == "/v1/videos":
        async with rt.db.read() as session:
            jobs = (await session.execute(select(func.count()).select_from(VideoJob))).scalar()
        assert jobs == 1
        assert retry.json()["status"] == "queued"


# -- replays after the outputs were deleted ----------------------------------------------------

PNG_UPLOAD = ("a.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 32, "image/png")


async def _image_call(gateway, key: str, endpoint: str, response_format: str):
    headers = {**auth(key), "idempotency-key": f"{endpoint}-{response_format}"}
    if endpoint == "generations":
        return await gateway.client.post(
            "/v1/images/generations",
            json={**BODY, "response_format": response_format},
            headers=headers,
        )
    return await gateway.client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": "p", "response_format": response_format},
        files=[("image", PNG_UPLOAD)],
        headers=headers,
    )


def _assert_outputs_deleted(response) -> None:
    assert response.status_code == 410, response.text
    error = response.json()["error"]
    assert error["code"] == "outputs_deleted" and error["type"] == "invalid_request_error"
    assert "deleted" in error["message"] and set(error) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("endpoint", ["generations", "edits"])
@pytest.mark.parametrize("response_format", ["b64_json", "url"])
@pytest.mark.parametrize("deletion", ["file", "task"])
async def test_a_replay_after_its_images_were_deleted_says_so(
    gateway, endpoint, response_format, deletion
):
    """It used to answer 200 with `data: []` (b64) or URLs that answer 404."""
    account, key = await gateway.account(credits=1000)
    first = await _image_call(gateway, key, endpoint, response_format)
    assert first.status_code == 200
    again = await _image_call(gateway, key, endpoint, response_format)
    assert again.status_code == 200 and again.json() == first.json()  # still there: replayed
    if deletion == "task":
        task = first.headers["x-request-id"]
        deleted = await gateway.client.delete(f"/v1/outputs/{task}", headers=auth(key))
    else:
        async with gateway.rt.db.read() as session:
            from reapi_server.models import StoredOutput

            file_id = (
                await session.execute(
                    select(StoredOutput.id).where(
                        StoredOutput.task_id == first.headers["x-request-id"]
                    )
                )
            ).scalar_one()
        deleted = await gateway.client.delete(f"/v1/files/{file_id}", headers=auth(key))
    assert deleted.status_code == 200, deleted.text
    replayed = await _image_call(gateway, key, endpoint, response_format)
    _assert_outputs_deleted(replayed)
    assert gateway.upstream.count(f"/images/{endpoint}") == 1  # never generated again
    assert await ledger_matches(gateway.rt, account) == (960, 0)


@pytest.mark.parametrize("deletion", ["video", "outputs"])
async def test_a_replay_after_its_video_was_deleted_says_so(gateway, deletion):
    from tests.server.test_videos import drive

    account, key = await gateway.account(credits=1000)
    headers = {**auth(key), "idempotency-key": "v"}
    body = {"model": "sim-video", "prompt": "a wave", "size": "1280x720"}
    first = await gateway.client.post("/v1/videos", json=body, headers=headers)
    assert first.status_code == 200
    video_id = first.json()["id"]
    await drive(gateway)
    done = await gateway.client.post("/v1/videos", json=body, headers=headers)
    assert done.status_code == 200 and done.json()["status"] == "completed"
    if deletion == "video":
        deleted = await gateway.client.delete(f"/v1/videos/{video_id}", headers=auth(key))
    else:
        deleted = await gateway.client.delete(f"/v1/outputs/{video_id}", headers=auth(key))
    assert deleted.status_code == 200, deleted.text
    _assert_outputs_deleted(await gateway.client.post("/v1/videos", json=body, headers=headers))
    assert gateway.upstream.count("/videos") == 1
    assert await ledger_matches(gateway.rt, account) == (960, 0)


async def test_a_record_from_before_partial_images_is_replayed_after_the_upgrade(
    gateway, monkeypatch
):
    """`ImageParams` gained `partial_images` (streamed requests): its None went into every
    fingerprint, so a request whose record the previous version wrote, retried with its key on
    an upgraded instance (a rolling deploy), was refused 409 `idempotency_key_reused` instead
    of replayed. The previous version's fingerprint had no such field."""
    from reapi_server.openai_api import idempotent

    _, key = await gateway.account(credits=1000)
    current = idempotent._fields

    def previous(params):  # the fields as the version before hashed them
        fields = dict(current(params))
        fields.pop("partial_images", None)
        return fields

    body = {"model": "gpt-image-2", "prompt": "p"}
    headers = auth(key) | {"idempotency-key": "k-deploy"}
    monkeypatch.setattr(idempotent, "_fields", previous)
    first = await gateway.client.post("/v1/images/generations", json=body, headers=headers)
    monkeypatch.setattr(idempotent, "_fields", current)
    retry = await gateway.client.post("/v1/images/generations", json=body, headers=headers)
    assert first.status_code == 200 and retry.status_code == 200, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
