"""Zero-downtime deploys: on SIGTERM the gateway stops accepting, finishes the requests it has
(up to `drain_seconds`), and hands its video jobs' leases back, so that another instance polls
them at once rather than after the lease runs out (and, with Redis, is woken to do so)."""

import asyncio
import os
import secrets
import signal
import sqlite3
import subprocess
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from tests.conftest import two_host_catalog
from tests.server.conftest import settings_for
from tests.server.fault_proxy import FaultProxy
from tests.server.live import free_port
from tests.server.postgres import postgres_server  # noqa: F401  (fixture)
from tests.server.redis import (  # noqa: F401  (fixtures)
    redis_server,
    redis_settings,
    until_subscribed,
)
from tests.server.served import make_key
from tests.server.test_cli import _bin, _wait_for, cli
from tests.server.test_videos import create

from reapi.testing import SIMULATOR_KEY, OpenAISimulator, SimulatorSpec, run_simulators
from reapi_server.app import create_app
from reapi_server.jobs import repository
from reapi_server.models import VideoJob

T = TypeVar("T")


async def _job(gateway, job_id: str) -> VideoJob:
    async with gateway.rt.db.read() as session:
        return await session.get(VideoJob, job_id)


@pytest.mark.redis
async def test_leases_are_handed_back_and_the_others_woken(
    make_gateway,
    upstream,
    redis_settings,  # noqa: F811
):
    keeper = await make_gateway(**redis_settings, poll_interval=30.0, job_lease_seconds=600)
    _, key = await keeper.account()
    video = (await create(keeper, key)).json()
    # A second instance on the same database; its own app, stopped by hand (SIGTERM's path).
    settings = settings_for(
        keeper.data_dir.parent / "leaving",
        **redis_settings,
        database_url=keeper.rt.settings.resolved_database_url,
        job_lease_seconds=600,
    )
    settings.data_dir.mkdir()
    leaving = create_app(
        settings,
        catalog=two_host_catalog(),
        http_client=httpx.AsyncClient(transport=upstream.transport()),
        migrate=False,
    )
    lifespan = leaving.router.lifespan_context(leaving)
    await lifespan.__aenter__()
    rt = leaving.state.runtime
    now = rt.now() + 60  # the job is due: its first poll comes after poll_interval
    async with rt.db.write() as session:
        taken = await repository.claim_due(session, rt.instance_id, now, now + 600, 16)
    assert [job.id for job in taken] == [video["id"]]
    await until_subscribed(keeper.rt, listeners=2)  # both instances listen on the bus
    woken = asyncio.create_task(keeper.rt.wakeups.wait("jobs-due", 10.0))
    await asyncio.sleep(0)
    await lifespan.__aexit__(None, None, None)  # what SIGTERM ends in
    job = await _job(keeper, video["id"])
    assert job.lease_owner is None and job.lease_expires_at is None
    assert job.next_poll_at <= keeper.rt.now()  # due now, not after the lease
    assert await woken is True


@dataclass
class _Served:
    process: subprocess.Popen
    base: str
    key: str
    slow: FaultProxy
    output: str = ""


@contextmanager
def _served_behind_a_slow_provider(tmp_path, *, drain: float, first_byte: float):
    """`reapi-server serve` with `drain_seconds` = `drain`, its OpenAI provider behind a proxy
    whose delay the test sets (`slow.delay`); killed if still running at the end, its output
    kept in `output`."""
    simulators = run_simulators({"openai": SimulatorSpec(OpenAISimulator(SIMULATOR_KEY), "/v1")})
    slow = FaultProxy(int(simulators.provider_urls["openai"].split(":")[2].split("/")[0]))
    key = make_key(tmp_path)
    port = free_port()
    env = {
        **os.environ,
        "OPENAI_API_KEY": simulators.api_key,
        "REAPI_PROVIDER_BASE_URLS__OPENAI": f"http://127.0.0.1:{slow.port}/v1",
        "REAPI_FIRST_BYTE_TIMEOUT": str(first_byte),
        "REAPI_METRICS_LISTEN": "off",
        "REAPI_DRAIN_SECONDS": str(drain),
    }
    process = subprocess.Popen(
        [_bin("reapi-server"), "serve", "--port", str(port), "--data-dir", str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    served = _Served(process, f"http://127.0.0.1:{port}", key, slow)
    try:
        _wait_for(f"{served.base}/healthz", process)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
        served.output = process.communicate()[0]
        slow.close()
        simulators.stop()


def test_sigterm_finishes_what_it_has_and_refuses_the_rest(tmp_path):
    with _served_behind_a_slow_provider(tmp_path, drain=15, first_byte=20) as served:
        base, key, process = served.base, served.key, served.process
        served.slow.delay(1.5)  # each way: the request takes some 3 s upstream

        async def in_flight() -> httpx.Response:
            async with httpx.AsyncClient(timeout=30) as client:
                return await client.post(
                    f"{base}/v1/images/generations",
                    json={"model": "gpt-image-2", "prompt": "p"},
                    headers={"authorization": f"Bearer {key}"},
                )

        async def scenario() -> tuple[httpx.Response, float]:
            running = asyncio.create_task(in_flight())
            await asyncio.sleep(0.8)
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            with pytest.raises(httpx.ConnectError):  # no longer accepting
                async with httpx.AsyncClient() as client:
                    await client.get(f"{base}/healthz")
            return await running, time.monotonic()

        answer, answered = asyncio.run(scenario())
        assert answer.status_code == 200, answer.text
        # uvicorn re-raises the signal once drained: "terminated by SIGTERM", as service
        # managers expect of a clean stop
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)
        assert time.monotonic() - answered < 10
    assert key not in served.output


@pytest.mark.postgres
def test_a_request_cut_at_the_end_of_the_drain_gives_its_credits_back(
    tmp_path,
    postgres_server,  # noqa: F811
    monkeypatch,
):
    """A request longer than `drain_seconds` is cut when the drain ends. Its hold's release
    (shielded) raced the shutdown, which closed the PostgreSQL pool under it: the credits
    stayed reserved until another instance's sweeper found the hold expired, 15 minutes later
    (SQLite's release, on the loop, happened to win the race)."""
    name = f"drain_{secrets.token_hex(4)}"
    postgres_server.execute(f"CREATE DATABASE {name} TEMPLATE reapi_template")
    monkeypatch.setenv("REAPI_DATABASE_URL", postgres_server.url(name))

    answers, output, key = _cut_at_the_drain_end(tmp_path, 3, idempotency_keys=True)
    for answer in answers:  # cut: no answer, or the 503 of a request cut by the shutdown
        assert isinstance(answer, httpx.HTTPError) or answer.status_code == 503
    shown = cli("accounts", "show", "--email", "p@example.com", "--data-dir", str(tmp_path))
    assert "reserved=0" in shown, (shown, output[-2000:])
    assert key not in output
    # Their idempotency records dropped too: a retry with the same key runs at once (an
    # `in_progress` one left behind held the retry up until the sweeper's expiry).
    assert asyncio.run(_in_progress_records(postgres_server.url(name))) == 0, output[-2000:]


async def _in_progress_records(url: str) -> int:
    from sqlalchemy import text

    from reapi_server.db import Database

    db = Database(url)
    try:
        async with db.read() as session:
            found = await session.execute(
                text("SELECT count(*) FROM idempotency_records WHERE state = 'in_progress'")
            )
            return int(found.scalar_one())
    finally:
        await db.dispose()


def test_a_request_cut_at_the_end_of_the_drain_is_answered_in_the_api_s_error_shape(tmp_path):
    """uvicorn cancels what still runs when `drain_seconds` is up; its own answer was a
    plain-text 500. The access layer answers 503 `server_shutting_down` with Retry-After, so an
    OpenAI client retries it (on another instance) rather than failing on an unreadable body."""
    answers, output, key = _cut_at_the_drain_end(tmp_path, 2)
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "1"
        assert answer.headers["x-request-id"].startswith("req_")
        error = answer.json()["error"]
        assert error["code"] == "server_shutting_down" and error["type"] == "server_error"
    shown = cli("accounts", "show", "--email", "p@example.com", "--data-dir", str(tmp_path))
    assert "reserved=0" in shown, (shown, output[-2000:])  # the holds were given back
    assert key not in output


def _cut_at_the_drain_end(
    tmp_path, requests: int, *, idempotency_keys: bool = False
) -> tuple[list, str, str]:
    """`serve` (a 1 s drain) in front of a provider that takes 10 s, with `requests` image
    requests at the provider when SIGTERM comes: their answers (or the client's errors), the
    server's output and the key."""
    with _served_behind_a_slow_provider(tmp_path, drain=1, first_byte=30) as served:
        base, key, process = served.base, served.key, served.process
        served.slow.delay(10)  # far longer than the drain

        async def scenario() -> list:
            async with httpx.AsyncClient(timeout=30) as client:
                running = [
                    asyncio.create_task(
                        client.post(
                            f"{base}/v1/images/generations",
                            json={"model": "gpt-image-2", "prompt": "p"},
                            headers={
                                "authorization": f"Bearer {key}",
                                **({"idempotency-key": f"k{n}"} if idempotency_keys else {}),
                            },
                        )
                    )
                    for n in range(requests)
                ]
                await asyncio.sleep(1.0)  # at the provider, their holds taken
                process.send_signal(signal.SIGTERM)
                return await asyncio.gather(*running, return_exceptions=True)

        answers = asyncio.run(scenario())
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)
    return answers, served.output, key


async def _held(database: Path, seconds: float = 15.0) -> None:
    """Until a request's credit hold is committed (a loaded machine can take longer than any
    fixed wait to get the request that far, and a lock taken before it cuts the hold instead)."""
    deadline = time.monotonic() + seconds
    while True:
        with closing(sqlite3.connect(database, timeout=10)) as reader:
            held = reader.execute("SELECT 1 FROM credit_holds WHERE status = 'held'").fetchone()
        if held:
            return
        assert time.monotonic() < deadline, "no credit hold was taken"
        await asyncio.sleep(0.02)


async def _cut_while_settling(
    database: Path, process: subprocess.Popen[bytes], running: asyncio.Task[T]
) -> T:
    """`running`'s request cut by the drain's end while its settlement waits to commit: another
    writer holds SQLite's write lock from before the settlement until past the drain (1 s)."""
    await _held(database)  # its hold taken, the provider working
    lock = sqlite3.connect(database, isolation_level=None, timeout=10)
    lock.execute("BEGIN IMMEDIATE")  # the settlement waits for SQLite's lock...
    try:
        await asyncio.sleep(0.7)
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(2.0)  # ...past the drain's end (1 s): cancelled
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    return await running


def test_a_request_cut_while_its_charge_commits_is_answered_with_what_it_paid_for(tmp_path):
    """The drain ends (uvicorn cancels the request) while the settlement waits to commit; it
    commits all the same, and the request, sent without an Idempotency-Key (no record to fetch
    its answer by), must be answered with the image it was charged for, not `503
    server_shutting_down`. The group commit keeps the cancellation until the outcome is in, and
    nothing between the commit and the answer's last byte suspends, so it lands after."""
    with _served_behind_a_slow_provider(tmp_path, drain=1, first_byte=30) as served:
        base, key, process = served.base, served.key, served.process
        served.slow.delay(0.4)  # each way: the provider answers within the drain

        async def scenario() -> httpx.Response:
            async with httpx.AsyncClient(timeout=30) as client:
                running = asyncio.create_task(
                    client.post(
                        f"{base}/v1/images/generations",
                        json={"model": "gpt-image-2", "prompt": "p"},
                        headers={"authorization": f"Bearer {key}"},
                    )
                )
                return await _cut_while_settling(tmp_path / "reapi.db", process, running)

        answer = asyncio.run(scenario())
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)
    shown = cli("accounts", "show", "--email", "p@example.com", "--data-dir", str(tmp_path))
    assert answer.status_code == 200, (answer.text, shown, served.output[-3000:])
    assert answer.json()["data"][0]["b64_json"]
    assert "balance=960 reserved=0" in shown, shown  # charged once, for what it was given


def test_a_stream_cut_while_its_charge_commits_still_sends_its_image(tmp_path):
    """The same cut on a streamed request (`stream: true`): its drafts had gone out when the
    drain ended during the settlement, which committed (charged); the stream then broke off
    without the image. The completed event still goes out, and the stream ends cleanly."""
    with _served_behind_a_slow_provider(tmp_path, drain=1, first_byte=30) as served:
        base, key, process = served.base, served.key, served.process
        served.slow.delay(0.4)
        body = {"model": "gpt-image-2", "prompt": "p", "stream": True, "partial_images": 2}

        async def read() -> tuple[int, str]:
            async with (
                httpx.AsyncClient(timeout=30) as client,
                client.stream(
                    "POST",
                    f"{base}/v1/images/generations",
                    json=body,
                    headers={"authorization": f"Bearer {key}"},
                ) as response,
            ):
                return response.status_code, (await response.aread()).decode()

        async def scenario() -> tuple[int, str]:
            running = asyncio.create_task(read())
            return await _cut_while_settling(tmp_path / "reapi.db", process, running)

        status, text = asyncio.run(scenario())
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)
    shown = cli("accounts", "show", "--email", "p@example.com", "--data-dir", str(tmp_path))
    assert "balance=960 reserved=0" in shown, shown  # charged once...
    names = [line for line in text.split("\n") if line.startswith("event: ")]
    assert status == 200 and names[-1] == "event: image_generation.completed", text[-500:]
    assert names.count("event: image_generation.completed") == 1  # ...for the image it got
