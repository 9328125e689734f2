"""Webhook delivery: every final state of a job with a webhook URL is POSTed once, signed per
Standard Webhooks with its key's secret; retried with backoff until a 2xx (or 410, or the end of
the window); only ever to public addresses, checked again at every attempt; never lost to a
crash, never sent twice by two processes. On SQLite and on PostgreSQL.

The receiver is `tests.media_host` (a loopback server that test names resolve to through a
public-looking address), so the default, secure address policy applies unchanged."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time

import httpx
import pytest
from sqlalchemy import select
from tests.conftest import two_host_catalog
from tests.media_host import PUBLIC, Answer, MediaHost
from tests.server.conftest import settings_for
from tests.server.helpers import auth, scrape_metrics
from tests.server.killable import killable_gateway
from tests.server.live import _make_account
from tests.server.other_process import OtherProcess
from tests.web.helpers import deletion_services

from reapi import webhooks
from reapi_server.fleet_secret import resolve_for
from reapi_server.jobs.poller import JobPoller
from reapi_server.models import ApiKey, VideoJob, WebhookDelivery
from reapi_server.runtime import build_runtime
from reapi_server.webhooks import service
from reapi_server.webhooks.sender import WebhookSender

MARKER = "MARKER-prompt-7d1e"
#: Compressed: the schedule's steps are tenths of seconds, the window two seconds.
FAST = {"webhook_retry_delays": [0.1, 0.2, 0.4], "webhook_retry_window": 2.0}


def receiver(gateway, media_host: MediaHost, **fetcher_kw) -> None:
    gateway.rt.webhook_fetcher = media_host.async_fetcher(
        gateway.rt.settings.webhook_url_policy, **fetcher_kw
    )


@pytest.fixture
async def hooked(database_url, make_gateway, media_host: MediaHost):
    """A gateway (SQLite, then PostgreSQL) whose webhooks reach the media host."""
    gateway = await make_gateway(database_url=database_url, **FAST)
    receiver(gateway, media_host)
    media_host.serve("/hook", b"ok")
    return gateway


async def create(gateway, key, url, **fields):
    body = {"model": "sim-video", "prompt": f"a wave {MARKER}", "size": "1280x720", **fields}
    if url is not None:
        body["webhook_url"] = url
    response = await gateway.client.post("/v1/videos", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()


async def finish(gateway, rounds: int = 4) -> None:
    for _ in range(rounds):
        await JobPoller(gateway.rt).run_once()


async def send(gateway, rounds: int = 1) -> int:
    sent = 0
    for _ in range(rounds):
        sent += await WebhookSender(gateway.rt).run_once()
    return sent


async def secret_of(gateway, account_id: str) -> str:
    async with gateway.rt.db.write() as session:
        key_id = (
            await session.execute(select(ApiKey.id).where(ApiKey.account_id == account_id))
        ).scalar_one()
        secret = await service.signing_secret(
            session, gateway.rt.fingerprint_secret, key_id, now=gateway.rt.now()
        )
    assert secret is not None
    return secret


async def deliveries(gateway) -> list[WebhookDelivery]:
    async with gateway.rt.db.read() as session:
        return list((await session.execute(select(WebhookDelivery))).scalars())


def posts_to(media_host: MediaHost, path: str = "/hook") -> list[tuple[dict[str, str], bytes]]:
    return [(headers, body) for p, headers, body in media_host.posts if p.split("?")[0] == path]


async def wait_for(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


# -- what is sent ----------------------------------------------------------------------------------
async def test_a_completed_job_is_posted_once_signed_as_get_renders_it(hooked, media_host, caplog):
    caplog.set_level(logging.DEBUG)
    account, key = await hooked.account(credits=100)
    video = await create(hooked, key, media_host.url("/hook?token=TOKEN-3f9a"))
    await finish(hooked)
    assert await send(hooked) == 1
    [(headers, body)] = posts_to(media_host)
    got = (await hooked.client.get(f"/v1/videos/{video['id']}", headers=auth(key))).json()
    assert got["status"] == "completed"
    assert json.loads(body) == got  # the same video object as GET /v1/videos/{id}
    assert headers["Content-Type"] == "application/json"
    assert headers["webhook-id"].startswith("msg_") and "." not in headers["webhook-id"]
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    secret = await secret_of(hooked, account)
    assert webhooks.verify(body, headers, secret) == got
    assert MARKER not in body.decode() and MARKER not in json.dumps(headers)
    assert MARKER not in repr([d.video_object for d in await deliveries(hooked)])
    [row] = await deliveries(hooked)
    assert (row.status, row.attempts, row.last_status) == ("delivered", 1, 200)
    assert await send(hooked, 3) == 0 and len(media_host.posts) == 1
    # Logs are metadata: neither the prompt nor the receiver's URL (its token) is in one.
    logged = repr([(r.getMessage(), r.__dict__) for r in caplog.records])
    assert "webhook delivered" in logged
    assert MARKER not in logged and "TOKEN-3f9a" not in logged


async def test_a_failed_job_is_posted_with_its_error(hooked, media_host):
    account, key = await hooked.account(credits=100)
    hooked.upstream.video_outcome = "blocked"
    video = await create(hooked, key, media_host.url("/hook"))
    await finish(hooked)
    await send(hooked)
    [(headers, body)] = posts_to(media_host)
    event = webhooks.verify(body, headers, await secret_of(hooked, account))
    assert event["id"] == video["id"] and event["status"] == "failed"
    assert event["error"]["code"] == "content_policy_violation"


async def test_a_job_past_its_deadline_is_posted_failed(make_gateway, media_host):
    gateway = await make_gateway(video_job_deadline_seconds=0.05, **FAST)
    receiver(gateway, media_host)
    media_host.serve("/hook", b"ok")
    _, key = await gateway.account(credits=100)
    await create(gateway, key, media_host.url("/hook"))
    await asyncio.sleep(0.1)
    await finish(gateway, 1)
    await send(gateway)
    [(_, body)] = posts_to(media_host)
    assert json.loads(body)["error"]["code"] == "deadline_exceeded"


async def test_an_unfinished_job_deleted_by_its_owner_is_posted_cancelled(hooked, media_host):
    _, key = await hooked.account(credits=100)
    video = await create(hooked, key, media_host.url("/hook"))
    await hooked.client.delete(f"/v1/videos/{video['id']}", headers=auth(key))
    await send(hooked)
    [(_, body)] = posts_to(media_host)
    event = json.loads(body)
    assert event["id"] == video["id"] and event["status"] == "failed"
    assert event["error"]["code"] == "cancelled"


async def test_a_finished_job_deleted_later_is_not_announced_again(hooked, media_host):
    _, key = await hooked.account(credits=100)
    video = await create(hooked, key, media_host.url("/hook"))
    await finish(hooked)
    await send(hooked)
    await hooked.client.delete(f"/v1/videos/{video['id']}", headers=auth(key))
    await send(hooked, 2)
    assert len(posts_to(media_host)) == 1
    assert await deliveries(hooked) == []  # its delivery went with it


async def test_deleting_a_video_stops_its_pending_delivery(hooked, media_host):
    """The owner deletes a finished video while its webhook is still being retried: the
    delivery (the video object and the receiver's URL) goes with the job, and is not sent."""
    _, key = await hooked.account(credits=100)
    media_host.routes["/hook"] = Answer(500)
    video = await create(hooked, key, media_host.url("/hook"))
    await finish(hooked)
    assert await send(hooked) == 1
    [row] = await deliveries(hooked)
    assert row.status == "pending"
    await hooked.client.delete(f"/v1/videos/{video['id']}", headers=auth(key))
    assert await deliveries(hooked) == []
    await asyncio.sleep(0.15)
    assert await send(hooked) == 0 and len(posts_to(media_host)) == 1


async def test_deleting_a_person_drops_their_deliveries_and_default_url(hooked, media_host):
    from reapi_server.accounts.deletion import delete_user
    from reapi_server.identity import repository as users

    email = "hooked-person@example.com"
    account, key = await hooked.account(credits=100, email=email)
    media_host.routes["/hook"] = Answer(500)
    checked = await service.check_url(hooked.rt.webhook_fetcher, media_host.url("/hook?t=1"))
    async with hooked.rt.db.write() as session:
        key_id = (
            await session.execute(select(ApiKey.id).where(ApiKey.account_id == account))
        ).scalar_one()
        await service.set_default_url(session, key_id, checked)
    hooked.rt.auth.forget_all()
    await create(hooked, key, None)
    await finish(hooked)
    assert await send(hooked) == 1
    assert [d.status for d in await deliveries(hooked)] == ["pending"]
    async with hooked.rt.db.write() as session:
        user = await users.find_user_by_email(session, email)
        services = deletion_services(hooked)
        assert await delete_user(session, user.id, now=hooked.rt.now(), **services) is not None
    assert await deliveries(hooked) == []
    async with hooked.rt.db.read() as session:
        assert (await session.get(ApiKey, key_id)).webhook_url is None
    await asyncio.sleep(0.15)
    assert await send(hooked) == 0 and len(posts_to(media_host)) == 1


async def test_without_a_webhook_url_nothing_is_queued(hooked):
    _, key = await hooked.account(credits=100)
    await create(hooked, key, None)
    await finish(hooked)
    assert await deliveries(hooked) == [] and await send(hooked) == 0


async def test_a_rotated_secret_signs_beside_the_previous_one(hooked, media_host):
    account, key = await hooked.account(credits=100)
    old = await secret_of(hooked, account)
    async with hooked.rt.db.write() as session:
        key_id = (await session.execute(select(ApiKey.id))).scalars().first()
        new = await service.signing_secret(
            session, hooked.rt.fingerprint_secret, key_id, now=hooked.rt.now(), rotate=True
        )
    await create(hooked, key, media_host.url("/hook"))
    await finish(hooked)
    await send(hooked)
    [(headers, body)] = posts_to(media_host)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert webhooks.verify(body, headers, old) and webhooks.verify(body, headers, new)


# -- retries ---------------------------------------------------------------------------------------
async def test_a_failing_receiver_is_retried_with_backoff_until_a_2xx(hooked, media_host):
    _, key = await hooked.account(credits=100)
    media_host.routes["/hook"] = Answer(500, body=b"down")
    await create(hooked, key, media_host.url("/hook"))
    await finish(hooked)

    async def attempt() -> tuple[float, float]:
        """One sending pass that makes an attempt: the times it began and ended (the next
        attempt is due its delay after a moment between the two, however slow the machine)."""
        began = hooked.rt.now()
        assert await send(hooked) == 1
        return began, hooked.rt.now()

    began, ended = await attempt()
    [row] = await deliveries(hooked)
    # The first delay, with its ±20% jitter.
    assert began + 0.1 * 0.8 <= row.next_attempt_at <= ended + 0.1 * 1.2
    assert (row.status, row.attempts, row.last_status) == ("pending", 1, 500)
    # Not before its time: a pass at a moment just short of it sends nothing (the clock is held
    # there, since a loaded machine can take longer than the 80 ms delay between two passes).
    clock, hooked.rt.clock = hooked.rt.clock, lambda: row.next_attempt_at - 0.001
    try:
        assert await send(hooked) == 0
    finally:
        hooked.rt.clock = clock
    await asyncio.sleep(0.15)
    began, ended = await attempt()  # the second attempt, still failing
    [row] = await deliveries(hooked)
    assert began + 0.2 * 0.8 <= row.next_attempt_at <= ended + 0.2 * 1.2
    media_host.routes["/hook"] = Answer(200, body=b"ok")
    await asyncio.sleep(0.3)
    assert await send(hooked) == 1
    [row] = await deliveries(hooked)
    assert (row.status, row.attempts) == ("delivered", 3)
    ids = {headers["webhook-id"] for headers, _ in posts_to(media_host)}
    assert len(posts_to(media_host)) == 3 and len(ids) == 1  # one message, three attempts


async def test_a_receiver_down_for_a_while_gets_the_message_once(make_gateway, media_host):
    """The senders run as in production (background loops); the receiver is unreachable,
    then answers 503 with Retry-After, then comes back: one delivery, then nothing more."""
    gateway = await make_gateway(
        run_background_tasks=True, poll_interval=0.01, webhook_poll_interval=0.05, **FAST
    )
    answers = iter([[PUBLIC], ["10.9.8.7"]])  # first an address nobody may reach

    def resolve(host, port):
        return next(answers, [PUBLIC])

    receiver(gateway, media_host, resolver=resolve)
    media_host.routes["/hook"] = Answer(503, headers={"Retry-After": "0"})
    _, key = await gateway.account(credits=100)
    video = await create(gateway, key, media_host.url("/hook"))
    await wait_for(lambda: len(posts_to(media_host)) >= 1)
    media_host.routes["/hook"] = Answer(200, body=b"ok")

    async def delivered() -> bool:
        return any(d.status == "delivered" for d in await deliveries(gateway))

    deadline = time.monotonic() + 5
    while not await delivered():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    statuses = [json.loads(body)["id"] for _, body in posts_to(media_host)]
    assert set(statuses) == {video["id"]}
    [row] = await deliveries(gateway)
    assert row.attempts == len(posts_to(media_host)) + 1  # one attempt never left (refused)


async def test_retries_end_with_the_window(hooked, media_host):
    _, key = await hooked.account(credits=100)
    media_host.routes["/hook"] = Answer(500)
    await create(hooked, key, media_host.url("/hook"))
    await finish(hooked)
    deadline = time.monotonic() + 6
    while (await deliveries(hooked))[0].status == "pending":
        assert time.monotonic() < deadline
        await send(hooked)
        await asyncio.sleep(0.05)
    [row] = await deliveries(hooked)
    assert row.status == "failed" and row.last_status == 500
    # 0.1, 0.2, 0.4, 0.4, ... seconds apart, the last at the window's end (2 s)
    assert 5 <= row.attempts <= 9
    assert row.finished_at - row.created_at >= FAST["webhook_retry_window"] - 0.01
    metrics = await scrape_metrics(hooked)
    assert 'reapi_webhook_deliveries_total{outcome="failed"} 1.0' in metrics


async def test_410_gone_stops_this_receiver(hooked, media_host):
    """410 ends the delivery, and the key's other pending deliveries to that URL, and disables
    the key's default URL when it was that one."""
    account, key = await hooked.account(credits=1000)
    url = media_host.url("/gone")
    checked = await service.check_url(hooked.rt.webhook_fetcher, url)
    async with hooked.rt.db.write() as session:
        key_id = (
            await session.execute(select(ApiKey.id).where(ApiKey.account_id == account))
        ).scalar_one()
        await service.set_default_url(session, key_id, checked)
    hooked.rt.auth.forget_all()
    media_host.routes["/gone"] = Answer(410)
    await create(hooked, key, None)
    await create(hooked, key, None)
    await finish(hooked)
    await send(hooked)
    rows = await deliveries(hooked)
    assert [r.status for r in rows] == ["gone", "gone"]
    assert len(posts_to(media_host, "/gone")) in (1, 2)  # the batch may have sent both at once
    async with hooked.rt.db.read() as session:
        assert (await session.get(ApiKey, key_id)).webhook_disabled_at is not None
    third = await create(hooked, key, None)
    async with hooked.rt.db.read() as session:
        assert (await session.get(VideoJob, third["id"])).webhook_url is None


# -- where it may go ---------------------------------------------------------------------------
async def test_dns_that_turned_private_is_refused_at_delivery(hooked, media_host):
    """The URL passed at request time; by delivery its name resolves to a private address:
    nothing is sent there, and the delivery waits for its next attempt."""
    answers = iter([[PUBLIC], ["169.254.169.254"], [PUBLIC]])
    receiver(hooked, media_host, resolver=lambda host, port: next(answers))
    _, key = await hooked.account(credits=100)
    await create(hooked, key, media_host.url("/hook"))
    await finish(hooked)
    assert await send(hooked) == 1
    [row] = await deliveries(hooked)
    assert (row.status, row.last_error) == ("pending", "url_not_allowed")
    assert media_host.posts == [] and media_host.dials == []
    await asyncio.sleep(0.15)
    assert await send(hooked) == 1
    assert len(posts_to(media_host)) == 1
    assert media_host.dials == [(PUBLIC, media_host.port)]


async def test_a_redirect_is_a_failed_attempt_never_followed(hooked, media_host):
    media_host.redirect("/hook", "http://127.0.0.1:9/steal", status=307)
    _, key = await hooked.account(credits=100)
    await create(hooked, key, media_host.url("/hook"))
    await finish(hooked)
    await send(hooked)
    [row] = await deliveries(hooked)
    assert (row.status, row.last_status, row.last_error) == ("pending", 307, "http_307")
    assert [p for p, _, _ in media_host.posts] == ["/hook"]
    assert media_host.dials == [(PUBLIC, media_host.port)]


async def test_an_operator_allowed_network_receives_webhooks(make_gateway, media_host):
    gateway = await make_gateway(webhook_allow_networks=["127.0.0.1/32"], **FAST)
    media_host.serve("/hook", b"ok")
    _, key = await gateway.account(credits=100)
    await create(gateway, key, f"{media_host.loopback_url}/hook")
    await finish(gateway)
    await send(gateway)
    assert len(posts_to(media_host)) == 1


# -- processes and crashes ---------------------------------------------------------------------
async def test_a_job_finished_by_another_process_is_delivered_exactly_once(hooked, media_host):
    """Another process polls the job to its end; both processes' senders then run, several
    rounds at once: one POST."""
    _, key = await hooked.account(credits=100)
    await create(hooked, key, media_host.url("/hook"))
    async with OtherProcess(hooked) as other:
        other.rt.webhook_fetcher = media_host.async_fetcher(other.rt.settings.webhook_url_policy)
        for _ in range(4):
            await other.call(JobPoller(other.rt).run_once)
        for _ in range(3):
            await asyncio.gather(send(hooked), other.call(WebhookSender(other.rt).run_once))
    assert len(posts_to(media_host)) == 1
    [row] = await deliveries(hooked)
    assert row.status == "delivered" and row.attempts == 1


async def test_a_crash_between_the_end_and_the_delivery_loses_nothing(
    hooked, make_gateway, media_host
):
    """The job became final (and its delivery was written with it), then the process stopped
    before sending: the next process to start sends it."""
    _, key = await hooked.account(credits=100)
    video = await create(hooked, key, media_host.url("/hook"))
    await finish(hooked)
    assert media_host.posts == []
    url = hooked.rt.settings.resolved_database_url
    restarted = await make_gateway(database_url=url, run_background_tasks=True, **FAST)
    receiver(restarted, media_host)
    await wait_for(lambda: len(posts_to(media_host)) == 1)
    assert json.loads(posts_to(media_host)[0][1])["id"] == video["id"]


async def test_a_sender_that_died_mid_attempt_leaves_it_to_the_next(hooked, media_host):
    """A claimed delivery whose sender vanished is taken again once its lease is over."""
    _, key = await hooked.account(credits=100)
    await create(hooked, key, media_host.url("/hook"))
    await finish(hooked)
    async with hooked.rt.db.write() as session:
        row = (await session.execute(select(WebhookDelivery))).scalar_one()
        row.lease_owner, row.next_attempt_at, row.attempts = "dead", hooked.rt.now() + 0.2, 1
    assert await send(hooked) == 0  # still leased
    await asyncio.sleep(0.25)
    assert await send(hooked) == 1
    [row] = await deliveries(hooked)
    assert (row.status, row.attempts) == ("delivered", 2)


def test_a_sender_killed_mid_attempt_is_relieved_by_the_next_process(
    tmp_path, migrated_template, media_host
):
    """SIGKILL while the receiver is still answering: the claim lapses, and another process
    sends the message again, with the same webhook-id (receivers deduplicate by it)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(migrated_template, data_dir / "reapi.db")
    database = settings_for(data_dir).resolved_database_url
    _, key = asyncio.run(_make_account(database, 10**6))
    media_host.routes["/hook"] = Answer(200, body=b"x" * 400, drip=0.05)  # a slow answer
    hook = f"{media_host.loopback_url}/hook"
    loopback = {"webhook_allow_networks": ["127.0.0.1/32"], "webhook_timeout": 1.0, **FAST}
    settings = {"run_background_tasks": True, "poll_interval": 0.01, **loopback}
    upstream = {"polls_before_done": 0}
    with killable_gateway(tmp_path, data_dir, settings=settings, upstream=upstream) as child:
        body = {"model": "sim-video", "prompt": "p", "webhook_url": hook}
        created = httpx.post(f"{child.base_url}/v1/videos", json=body, headers=auth(key))
        assert created.status_code == 200, created.text
        deadline = time.monotonic() + 20
        while not media_host.posts:
            assert time.monotonic() < deadline, child.log.read_text()[-2000:]
            time.sleep(0.01)
        child.kill()
    media_host.routes["/hook"] = Answer(200, body=b"ok")

    async def next_process() -> WebhookDelivery:
        settings = settings_for(data_dir, **loopback)
        secret = await resolve_for(settings)  # the fleet's: the one the child signed with
        rt = build_runtime(settings, catalog=two_host_catalog(), secret=secret)
        try:
            deadline = time.monotonic() + 10
            while True:
                await WebhookSender(rt).run_once()
                async with rt.db.read() as session:
                    row = (await session.execute(select(WebhookDelivery))).scalar_one()
                if row.status != "pending" or time.monotonic() > deadline:
                    return row
                await asyncio.sleep(0.1)
        finally:
            await rt.aclose()

    row = asyncio.run(next_process())
    assert (row.status, row.attempts) == ("delivered", 2)
    assert len(media_host.posts) == 2
    assert len({headers["webhook-id"] for _, headers, _ in media_host.posts}) == 1


# -- metrics and retention -----------------------------------------------------------------------
async def test_metrics_count_outcomes(hooked, media_host):
    _, key = await hooked.account(credits=100)
    await create(hooked, key, media_host.url("/hook"))
    await finish(hooked)
    await send(hooked)
    metrics = await scrape_metrics(hooked)
    assert 'reapi_webhook_attempts_total{outcome="delivered"} 1.0' in metrics
    assert 'reapi_webhook_deliveries_total{outcome="delivered"} 1.0' in metrics


async def test_deliveries_are_purged_after_their_retention(make_gateway, media_host):
    from reapi_server.retention import purge_once

    clock = [time.time()]
    gateway = await make_gateway(**FAST)
    gateway.rt.clock = lambda: clock[0]
    receiver(gateway, media_host)
    media_host.serve("/hook", b"ok")
    _, key = await gateway.account(credits=100)
    await create(gateway, key, media_host.url("/hook"))
    await finish(gateway)
    await send(gateway)
    clock[0] += 6.9 * 86400
    assert (await purge_once(gateway.rt)).webhook_deliveries == 0
    clock[0] += 0.2 * 86400
    assert (await purge_once(gateway.rt)).webhook_deliveries == 1
    assert await deliveries(gateway) == []


async def test_deliveries_never_outlive_the_general_retention(make_gateway, media_host):
    """With `retention_days` shorter than `webhook_retention_days`, a delivery (the video
    object it holds) goes when the job it announced does."""
    from reapi_server.retention import purge_once

    clock = [time.time()]
    gateway = await make_gateway(retention_days=2, webhook_retention_days=7, **FAST)
    gateway.rt.clock = lambda: clock[0]
    receiver(gateway, media_host)
    media_host.serve("/hook", b"ok")
    _, key = await gateway.account(credits=100)
    await create(gateway, key, media_host.url("/hook"))
    await finish(gateway)
    await send(gateway)
    clock[0] += 2.1 * 86400
    report = await purge_once(gateway.rt)
    assert (report.video_jobs, report.webhook_deliveries) == (1, 1)
    assert await deliveries(gateway) == []


async def test_a_stopping_process_hands_its_deliveries_back(hooked, media_host):
    """Graceful stop in the middle of an attempt: the delivery is due again at once for the
    other instances, not when the claim would have run out."""
    from reapi_server.webhooks.sender import hand_back_deliveries

    media_host.routes["/hook"] = Answer(200, body=b"x" * 400, drip=0.05)  # slow
    _, key = await hooked.account(credits=100)
    await create(hooked, key, media_host.url("/hook"))
    await finish(hooked)
    attempt = asyncio.create_task(send(hooked))
    await wait_for(lambda: len(media_host.posts) == 1)
    attempt.cancel()  # what the lifespan's end does to the sender
    await asyncio.gather(attempt, return_exceptions=True)
    [row] = await deliveries(hooked)
    assert row.lease_owner == hooked.rt.instance_id and row.next_attempt_at > hooked.rt.now()
    await hand_back_deliveries(hooked.rt)
    [row] = await deliveries(hooked)
    assert row.lease_owner is None and row.next_attempt_at <= hooked.rt.now()
    assert row.status == "pending"
