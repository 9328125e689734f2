"""The database-sensitive tests again on a real PostgreSQL server (Debian's package).

Each test gets a fresh database cloned from a migrated template."""

import asyncio
import secrets

import pytest
from tests.server.helpers import ledger_matches
from tests.server.test_credits import concurrent_spend
from tests.server.test_videos import two_pollers_share_jobs

from reapi_server.credits import repository as credit_rows
from reapi_server.jobs.sweeper import sweep_once

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_gateway(postgres_server, make_gateway):
    name = f"t_{secrets.token_hex(6)}"
    await asyncio.to_thread(
        postgres_server.execute, f"CREATE DATABASE {name} TEMPLATE reapi_template"
    )
    return await make_gateway(database_url=postgres_server.url(name))


async def test_fifty_concurrent_requests_never_overdraw(pg_gateway):
    await concurrent_spend(pg_gateway)


async def test_stale_holds_released_once_with_concurrent_sweepers(pg_gateway):
    account, _ = await pg_gateway.account(credits=100)
    rt = pg_gateway.rt
    for index in range(5):
        async with rt.db.write() as session:
            await credit_rows.reserve(
                session,
                account,
                10,
                purpose="image",
                request_id=f"dead{index}",
                expires_at=rt.now() - 1,
                now=rt.now(),
            )
    reports = await asyncio.gather(*(sweep_once(rt) for _ in range(4)))
    assert sum(r.holds_released for r in reports) == 5
    assert await ledger_matches(rt, account) == (100, 0)


async def test_pollers_never_handle_a_job_twice(pg_gateway, make_gateway):
    await two_pollers_share_jobs(pg_gateway)


async def test_concurrent_idempotent_requests_make_one_call(pg_gateway):
    from tests.server.test_images import generate

    account, key = await pg_gateway.account(credits=1000)
    responses = await asyncio.gather(
        *(generate(pg_gateway, key, headers={"idempotency-key": "same"}) for _ in range(6))
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1
    assert pg_gateway.upstream.count("/images/generations") == 1
    assert await ledger_matches(pg_gateway.rt, account) == (960, 0)


async def test_video_limit_is_exact_under_concurrency(postgres_server, make_gateway):
    name = f"t_{secrets.token_hex(6)}"
    await asyncio.to_thread(
        postgres_server.execute, f"CREATE DATABASE {name} TEMPLATE reapi_template"
    )
    gateway = await make_gateway(database_url=postgres_server.url(name), max_concurrent_videos=3)
    _, key = await gateway.account(credits=10_000)
    responses = await asyncio.gather(
        *(
            gateway.client.post(
                "/v1/videos",
                json={"model": "sim-video", "prompt": "p"},
                headers={"authorization": f"Bearer {key}"},
            )
            for _ in range(10)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] * 3 + [429] * 7


async def test_retention_with_a_moved_clock(pg_gateway):
    from tests.server.test_retention import moved_clock_case

    await moved_clock_case(pg_gateway)


async def test_retention_by_two_processes_at_once(pg_gateway):
    from tests.server.test_retention import two_processes_case

    await two_processes_case(pg_gateway)


async def test_another_process_finishing_a_video_leaves_no_body(pg_gateway):
    from tests.server.test_zero_retention import other_process_finishes_the_video_case

    await other_process_finishes_the_video_case(pg_gateway)


async def test_another_process_ending_jobs_drops_their_bodies(pg_gateway):
    from tests.server.test_video_memory import other_process_ends_the_jobs_case

    await other_process_ends_the_jobs_case(pg_gateway)


async def test_polls_failing_forever_end_at_the_deadline(pg_gateway):
    from tests.server.test_video_memory import polls_failing_until_the_deadline_case

    await polls_failing_until_the_deadline_case(pg_gateway)


async def test_the_sweeper_releases_only_a_hold_still_expired(pg_gateway, monkeypatch):
    from tests.server.test_hold_renewal import test_the_sweeper_releases_only_a_hold_still_expired

    await test_the_sweeper_releases_only_a_hold_still_expired(pg_gateway, monkeypatch)


async def test_running_requests_keep_their_holds(postgres_server, make_gateway):
    from tests.server.test_hold_renewal import outlasting_the_hold_window_case

    name = f"t_{secrets.token_hex(6)}"
    await asyncio.to_thread(
        postgres_server.execute, f"CREATE DATABASE {name} TEMPLATE reapi_template"
    )
    await outlasting_the_hold_window_case(make_gateway, database_url=postgres_server.url(name))
