"""The Resend backend against the simulated Resend on real sockets: the wire (headers, body,
idempotency key), how Resend's answers map to retry or give up, and pacing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from reapi.testing import Fault, SimServer
from reapi_server.email import Message, SendFailed, SendThrottled
from reapi_server.email.resend import ResendSender
from reapi_server.testing.resend_sim import RESEND_API_KEY, ResendSimulator

FROM = "reapi <no-reply@reapi.test>"
MESSAGE = Message(
    to="ada@example.com",
    subject="Confirm your email address",
    text="Open https://reapi.test/verify?token=abc",
    html='<p><a href="https://reapi.test/verify?token=abc">Confirm</a></p>',
    template="verify_email",
)


@pytest.fixture
def resend() -> Iterator[tuple[ResendSimulator, SimServer]]:
    sim = ResendSimulator()
    with SimServer(sim) as server:
        yield sim, server


async def arrival(sim: ResendSimulator) -> None:
    """Until the simulated Resend has taken a message (it answers after its latency)."""
    for _ in range(100):
        if sim.messages:
            return
        await asyncio.sleep(0.05)


def sender_of(server: SimServer, **overrides: object) -> ResendSender:
    values: dict[str, object] = {
        "api_key": RESEND_API_KEY,
        "base_url": server.base_url,
        "sender": FROM,
        "timeout": 2.0,
        "requests_per_second": 0,
    }
    values.update(overrides)
    return ResendSender(**values)  # type: ignore[arg-type]


async def test_the_wire_headers_body_and_idempotency_key(resend):
    sim, server = resend
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request)

    http = httpx.AsyncClient(event_hooks={"request": [record]})
    sender = sender_of(server, http=http)
    newsletter = Message(
        to="Ada@Example.com",
        subject="News",
        text="Hello",
        html="<p>Hello</p>",
        template="newsletter",
        kind="newsletter",
        headers={"List-Unsubscribe": "<https://reapi.test/unsubscribe/t>"},
    )
    await sender.send(MESSAGE, message_id="mail_one")
    await sender.send(newsletter, message_id="mail_two")
    await sender.aclose()
    await http.aclose()

    [request, _] = seen
    assert request.method == "POST" and request.url == f"{server.base_url}/emails"
    assert request.headers["authorization"] == f"Bearer {RESEND_API_KEY}"
    assert request.headers["idempotency-key"] == "mail_one"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("reapi-server/")
    first, second = sim.messages
    assert first.sender == FROM and first.to == ("ada@example.com",)
    assert (first.subject, first.text, first.html) == (MESSAGE.subject, MESSAGE.text, MESSAGE.html)
    assert first.idempotency_key == "mail_one" and first.headers == {}
    assert first.tags == (("template", "verify_email"), ("kind", "transactional"))
    assert second.headers == {"List-Unsubscribe": "<https://reapi.test/unsubscribe/t>"}
    assert second.idempotency_key == "mail_two" and second.to == ("Ada@Example.com",)
    assert second.tags == (("template", "newsletter"), ("kind", "newsletter"))


async def test_a_message_without_html_sends_text_only(resend):
    sim, server = resend
    sender = sender_of(server)
    await sender.send(Message(to="ada@example.com", subject="S", text="T"), message_id="mail_x")
    await sender.aclose()
    [sent] = sim.messages
    assert (sent.text, sent.html) == ("T", None)


async def test_a_retried_send_is_replayed_not_sent_again(resend):
    sim, server = resend
    sender = sender_of(server)
    await sender.send(MESSAGE, message_id="mail_same")
    await sender.send(MESSAGE, message_id="mail_same")
    assert len(sim.messages) == 1
    await sender.send(MESSAGE, message_id="mail_other")
    await sender.aclose()
    assert len(sim.messages) == 2


@pytest.mark.parametrize(
    ("fault", "code", "throttled"),
    [
        (Fault.ERROR_500, "resend_500_internal_server_error", False),
        (Fault.ERROR_503, "resend_503_internal_server_error", False),
        (Fault.RATE_LIMIT, "resend_429_rate_limit_exceeded", True),
        (Fault.QUOTA_EXHAUSTED, "resend_429_daily_quota_exceeded", True),
        (Fault.REFUSE, "ConnectError", False),
        (Fault.HANG, "ReadTimeout", False),
        (Fault.RESET, None, False),
    ],
)
async def test_outages_are_retryable(resend, fault, code, throttled):
    sim, server = resend
    server.faults.set(fault, retry_after=7)
    # Short only where the wait is the fault: on a loaded machine 0.5 s could end a mere
    # connect to the simulator (a ConnectTimeout where a 429 was due).
    sender = sender_of(server, timeout=0.5 if fault is Fault.HANG else 5.0)
    with pytest.raises(SendFailed) as caught:
        await sender.send(MESSAGE, message_id="mail_1")
    await sender.aclose()
    assert caught.value.retryable
    assert isinstance(caught.value, SendThrottled) is throttled
    # Nothing of httpx's error (its request holds the API key) hangs on ours.
    assert caught.value.__context__ is None and caught.value.__cause__ is None
    if code is not None:
        assert caught.value.code == code
    else:  # a reset reads as one of httpx's transport errors
        assert caught.value.code in {"ReadError", "RemoteProtocolError", "ConnectError"}
    if throttled:
        assert caught.value.retry_after == 7
    assert sim.messages == []


async def test_a_configuration_error_is_retried_so_mail_waits_for_the_fix(resend):
    _, server = resend
    sender = sender_of(server, api_key="re_wrong")
    with pytest.raises(SendFailed) as caught:
        await sender.send(MESSAGE, message_id="mail_1")
    await sender.aclose()
    assert caught.value.code == "resend_401_validation_error" and caught.value.retryable


async def test_a_message_resend_refuses_is_given_up(resend):
    _, server = resend
    sender = sender_of(server)
    bad = Message(to="not an address", subject="S", text="T")
    with pytest.raises(SendFailed) as caught:
        await sender.send(bad, message_id="mail_1")
    assert caught.value.code == "resend_422_validation_error"
    assert not caught.value.retryable
    # The same key with another body: a bug of ours, never retried.
    await sender.send(MESSAGE, message_id="mail_2")
    changed = Message(to=MESSAGE.to, subject="Changed", text=MESSAGE.text)
    with pytest.raises(SendFailed) as caught:
        await sender.send(changed, message_id="mail_2")
    await sender.aclose()
    assert caught.value.code == "resend_409_invalid_idempotent_request"
    assert not caught.value.retryable
    assert "payload" not in caught.value.code  # Resend's text is never kept


async def test_a_lost_answer_is_retried_and_delivered_once(resend):
    """Resend took the message but its answer never arrived: the retry carries the same key,
    so Resend answers the first id again and sends nothing more."""
    sim, server = resend
    server.faults.set(Fault.NONE, latency=1.0)
    sender = sender_of(server, timeout=0.3)
    with pytest.raises(SendFailed) as caught:
        await sender.send(MESSAGE, message_id="mail_1")
    assert caught.value.code == "ReadTimeout" and caught.value.retryable
    await arrival(sim)
    assert len(sim.messages) == 1  # Resend has it (and would have sent it)
    server.faults.clear()
    await sender.send(MESSAGE, message_id="mail_1")
    await sender.aclose()
    assert len(sim.messages) == 1


async def test_an_unreadable_success_counts_as_sent(resend):
    sim, server = resend
    server.faults.set(Fault.TRUNCATED_JSON, count=1)
    sender = sender_of(server)
    await sender.send(MESSAGE, message_id="mail_1")
    await sender.aclose()
    assert len(sim.messages) == 1


async def test_sends_are_paced_to_the_rate_limit(resend):
    sim, server = resend
    sender = sender_of(server, requests_per_second=10)
    started = time.monotonic()
    for number in range(5):
        await sender.send(MESSAGE, message_id=f"mail_{number}")
    await sender.aclose()
    assert time.monotonic() - started >= 0.4
    assert len(sim.messages) == 5
