"""A Resend outage delays mail and loses none: a gateway configured for Resend (the simulated
one, on loopback) queues mail while Resend refuses, fails, rate-limits or hangs, and delivers
each message exactly once when it recovers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from tests.web.helpers import new_email
from tests.web.test_resend_backend import arrival

from reapi.testing import Fault, SimServer
from reapi_server.config import Settings
from reapi_server.email import Message, SendFailed
from reapi_server.email.factory import build_sender
from reapi_server.email.outbox import OutboxPolicy, deliver_due, enqueue
from reapi_server.email.resend import ResendSender
from reapi_server.models import OutboxMessage
from reapi_server.testing.resend_sim import RESEND_API_KEY, ResendSimulator

BASE = "http://gateway.test"
FROM = "reapi <no-reply@reapi.test>"


@pytest.fixture
def resend() -> Iterator[tuple[ResendSimulator, SimServer]]:
    sim = ResendSimulator()
    with SimServer(sim) as server:
        yield sim, server


@pytest.fixture
async def resend_web(database_url, make_gateway, clock, resend):
    """A gateway (SQLite, then PostgreSQL) whose mail goes to the simulated Resend."""
    _, server = resend
    gateway = await make_gateway(
        database_url=database_url,
        public_base_url=BASE,
        email_backend="resend",
        email_from=FROM,
        resend_api_key=RESEND_API_KEY,
        resend_base_url=server.base_url,
        resend_timeout=0.5,
        resend_requests_per_second=0,
    )
    gateway.rt.clock = clock
    return gateway


async def _rows(rt) -> list[OutboxMessage]:
    async with rt.db.read() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.created_at)
        return list((await session.execute(query)).scalars())


def test_resend_needs_a_key_and_a_public_address(tmp_path):
    with pytest.raises(ValidationError, match="resend_api_key"):
        Settings(data_dir=tmp_path, email_backend="resend", public_base_url="https://x.test")
    with pytest.raises(ValidationError, match="public_base_url"):
        Settings(data_dir=tmp_path, email_backend="resend", resend_api_key="re_1")
    with pytest.raises(ValidationError, match="email_from"):  # the default: no real domain
        Settings(
            data_dir=tmp_path,
            email_backend="resend",
            resend_api_key="re_1",
            public_base_url="https://x.test",
        )
    settings = Settings(
        data_dir=tmp_path,
        email_backend="resend",
        email_from=FROM,
        resend_api_key="re_secret_value",
        public_base_url="https://x.test",
    )
    assert settings.resend_base_url == "https://api.resend.com"
    assert "re_secret_value" not in repr(settings)
    sender = build_sender(settings)
    assert isinstance(sender, ResendSender) and "re_secret_value" not in repr(sender)


async def test_an_outage_delays_mail_and_loses_none(resend_web, resend, clock, browsers):
    sim, server = resend
    rt = resend_web.rt
    email = new_email()
    await browsers(resend_web).sign_up(email)  # queues the verification mail
    sender = build_sender(rt.settings)
    policy = OutboxPolicy(first_backoff=30)

    async def attempt() -> int:
        return await deliver_due(rt.db, sender, rt.now, policy)

    outage = [
        (Fault.REFUSE, "ConnectError"),
        (Fault.ERROR_500, "resend_500_internal_server_error"),
        (Fault.HANG, "ReadTimeout"),
        (Fault.ERROR_503, "resend_503_internal_server_error"),
    ]
    for attempts, (fault, code) in enumerate(outage, start=1):
        server.faults.set(fault)
        assert await attempt() == 0
        [row] = await _rows(rt)
        assert (row.status, row.attempts, row.last_error) == ("pending", attempts, code)
        assert row.text_body is not None  # kept until sent
        clock.advance(policy.backoff(attempts))
    server.faults.set(Fault.RATE_LIMIT, retry_after=5)
    assert await attempt() == 0
    [row] = await _rows(rt)
    # A rate limit is no fault of the message: no attempt counted, Retry-After honoured.
    assert (row.attempts, row.last_error) == (4, "resend_429_rate_limit_exceeded")
    assert row.not_before == clock.now + 5
    assert sim.messages == []

    server.faults.clear()
    clock.advance(5)
    assert await attempt() == 1
    assert await attempt() == 0
    [row] = await _rows(rt)
    assert row.status == "sent" and row.text_body is None
    [sent] = sim.messages_to(email)
    assert sent.idempotency_key == row.id and "/verify?token=" in sent.text
    await sender.aclose()


async def test_a_lost_answer_is_delivered_exactly_once(resend_web, resend, clock):
    """Resend took the message but the answer was lost (a timeout): the outbox retries with
    the same idempotency key and Resend replays its first answer."""
    sim, server = resend
    rt = resend_web.rt
    async with rt.db.write() as session:
        await enqueue(session, Message(to="ada@example.com", subject="S", text="T"), rt.now())
    sender = build_sender(rt.settings)
    server.faults.set(Fault.NONE, latency=1.5)
    policy = OutboxPolicy()
    assert await deliver_due(rt.db, sender, rt.now, policy) == 0
    await arrival(sim)
    assert len(sim.messages) == 1  # Resend took it; the outbox does not know
    server.faults.clear()
    clock.advance(policy.backoff(1))
    assert await deliver_due(rt.db, sender, rt.now, policy) == 1
    [row] = await _rows(rt)
    assert row.status == "sent" and row.attempts == 2
    assert [m.idempotency_key for m in sim.messages_to("ada@example.com")] == [row.id]
    await sender.aclose()


async def test_a_rate_limit_puts_the_whole_pass_back(resend_web, resend, clock):
    sim, server = resend
    rt = resend_web.rt
    async with rt.db.write() as session:
        for number in range(5):
            message = Message(to=f"p{number}@example.com", subject="S", text="T")
            await enqueue(session, message, rt.now())
    sender = build_sender(rt.settings)
    server.faults.set(Fault.RATE_LIMIT, retry_after=3, count=1)
    assert await deliver_due(rt.db, sender, rt.now, OutboxPolicy()) == 0
    rows = await _rows(rt)
    assert {(r.status, r.attempts, r.not_before) for r in rows} == {("pending", 0, clock.now + 3)}
    assert server.faults.state.fault is Fault.NONE  # one request only met the limit
    assert await deliver_due(rt.db, sender, rt.now, OutboxPolicy()) == 0  # not before 3 s
    clock.advance(3)
    assert await deliver_due(rt.db, sender, rt.now, OutboxPolicy()) == 5
    assert len(sim.messages) == 5
    await sender.aclose()


async def test_retry_after_of_a_failure_outlasts_the_backoff(web, clock):
    rt = web.rt
    async with rt.db.write() as session:
        await enqueue(session, Message(to="ada@example.com", subject="S", text="T"), rt.now())

    class Unavailable:
        name = "unavailable"

        async def send(self, message: Message, *, message_id: str) -> None:
            raise SendFailed("resend_503", retry_after=600)

        async def aclose(self) -> None:
            return None

    await deliver_due(rt.db, Unavailable(), rt.now, OutboxPolicy(first_backoff=30))
    [row] = await _rows(rt)
    assert row.not_before == clock.now + 600 and row.attempts == 1
