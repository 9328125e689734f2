"""The mail outbox: written in the caller's transaction, delivered by the loop with a lease
safe across processes, retried with backoff, its body dropped once sent; the file backend."""

import asyncio
import email
import email.policy
import os
import stat

import pytest
from sqlalchemy import select

from reapi_server.email import Message, SendFailed
from reapi_server.email.files import FileSender
from reapi_server.email.outbox import (
    OutboxPolicy,
    deliver_due,
    enqueue,
    purge_finished,
    run_outbox,
)
from reapi_server.models import OutboxMessage

MESSAGE = Message(
    to="ada@example.com",
    subject="Hello",
    text="Your link: https://reapi.example/verify?token=secret-token-value",
    html="<p>Your <a href='https://reapi.example/verify?token=secret-token-value'>link</a></p>",
    template="verify_email",
)


class Flaky:
    """A backend that fails its first `failures` sends."""

    name = "flaky"

    def __init__(self, failures: int, *, retryable: bool = True) -> None:
        self.failures = failures
        self.retryable = retryable
        self.sent: list[tuple[str, Message]] = []

    async def send(self, message: Message, *, message_id: str) -> None:
        if self.failures:
            self.failures -= 1
            raise SendFailed("http_503", retryable=self.retryable)
        self.sent.append((message_id, message))


async def _rows(rt) -> list[OutboxMessage]:
    async with rt.db.read() as session:
        return list((await session.execute(select(OutboxMessage))).scalars())


async def test_a_rolled_back_action_sends_nothing(db_web):
    rt = db_web.rt
    with pytest.raises(RuntimeError):
        async with rt.db.write() as session:
            await enqueue(session, MESSAGE, rt.now())
            raise RuntimeError("the action failed")
    assert await _rows(rt) == []
    async with rt.db.write() as session:
        await enqueue(session, MESSAGE, rt.now())
    assert len(await _rows(rt)) == 1


async def test_sent_once_then_only_metadata_is_kept(db_web):
    rt = db_web.rt
    async with rt.db.write() as session:
        message_id = await enqueue(session, MESSAGE, rt.now())
    backend = Flaky(0)
    assert await deliver_due(rt.db, backend, rt.now, OutboxPolicy()) == 1
    assert await deliver_due(rt.db, backend, rt.now, OutboxPolicy()) == 0
    assert [sent_id for sent_id, _ in backend.sent] == [message_id]
    assert backend.sent[0][1].text == MESSAGE.text
    [row] = await _rows(rt)
    assert row.status == "sent" and row.sent_at == rt.now() and row.attempts == 1
    assert (row.subject, row.text_body, row.html_body, row.headers) == (None, None, None, None)
    assert row.to_address == "ada@example.com" and row.template == "verify_email"


async def test_failures_are_retried_with_backoff_then_given_up(web, clock):
    rt = web.rt
    async with rt.db.write() as session:
        await enqueue(session, MESSAGE, rt.now())
    backend = Flaky(2)
    policy = OutboxPolicy(first_backoff=30, max_attempts=5)
    assert await deliver_due(rt.db, backend, rt.now, policy) == 0
    [row] = await _rows(rt)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "http_503")
    assert row.not_before == clock.now + 30
    clock.advance(29)
    assert await deliver_due(rt.db, backend, rt.now, policy) == 0  # not due yet
    clock.advance(1)
    assert await deliver_due(rt.db, backend, rt.now, policy) == 0
    [row] = await _rows(rt)
    assert row.attempts == 2 and row.not_before == clock.now + 60  # doubled
    clock.advance(60)
    assert await deliver_due(rt.db, backend, rt.now, policy) == 1
    assert (await _rows(rt))[0].status == "sent"

    async with rt.db.write() as session:
        await enqueue(session, MESSAGE, rt.now())
    hopeless = Flaky(100)
    for _ in range(5):
        await deliver_due(rt.db, hopeless, rt.now, policy)
        clock.advance(10_000)
    failed = [r for r in await _rows(rt) if r.status == "failed"]
    assert len(failed) == 1 and failed[0].attempts == 5
    assert await deliver_due(rt.db, hopeless, rt.now, policy) == 0


async def test_a_permanent_refusal_is_not_retried(web):
    rt = web.rt
    async with rt.db.write() as session:
        await enqueue(session, MESSAGE, rt.now())
    await deliver_due(rt.db, Flaky(1, retryable=False), rt.now, OutboxPolicy())
    [row] = await _rows(rt)
    assert row.status == "failed" and row.attempts == 1


@pytest.mark.parametrize("retryable", [False, True])
async def test_a_message_given_up_keeps_only_metadata_too(web, clock, retryable):
    """Its text (a one-time link, the person's details) will never be sent: it goes as a sent
    message's does, not 30 days later with the row."""
    rt = web.rt
    async with rt.db.write() as session:
        await enqueue(session, MESSAGE, rt.now())
    policy = OutboxPolicy(max_attempts=2)
    for _ in range(2):
        await deliver_due(rt.db, Flaky(100, retryable=retryable), rt.now, policy)
        clock.advance(10_000)
    [row] = await _rows(rt)
    assert row.status == "failed" and row.last_error == "http_503"
    assert (row.subject, row.text_body, row.html_body, row.headers) == (None, None, None, None)


@pytest.mark.parametrize("outcome", ["sent", "given up"])
async def test_a_deleted_persons_confirmation_leaves_no_row(web, outcome):
    """The last trace of a deleted person's address: gone once sent (or given up on)."""
    rt = web.rt
    farewell = Message(to="gone@example.com", subject="Bye", text="bye", template="account_deleted")
    async with rt.db.write() as session:
        await enqueue(session, farewell, rt.now())
        await enqueue(session, MESSAGE, rt.now())
    backend = Flaky(0) if outcome == "sent" else Flaky(2, retryable=False)
    await deliver_due(rt.db, backend, rt.now, OutboxPolicy())
    assert [r.to_address for r in await _rows(rt)] == ["ada@example.com"]


async def test_a_claim_is_a_lease_two_processes_never_send_one_message_twice(db_web, clock):
    rt = db_web.rt
    async with rt.db.write() as session:
        for _ in range(20):
            await enqueue(session, MESSAGE, rt.now())

    class Slow(Flaky):
        async def send(self, message: Message, *, message_id: str) -> None:
            await asyncio.sleep(0.001)
            await super().send(message, message_id=message_id)

    one, two = Slow(0), Slow(0)
    policy = OutboxPolicy(batch=7)
    for _ in range(3):
        await asyncio.gather(
            deliver_due(rt.db, one, rt.now, policy), deliver_due(rt.db, two, rt.now, policy)
        )
    sent = [message_id for message_id, _ in one.sent + two.sent]
    assert len(sent) == len(set(sent)) == 20


async def test_a_claim_abandoned_by_a_dead_process_is_taken_again(web, clock):
    rt = web.rt
    async with rt.db.write() as session:
        await enqueue(session, MESSAGE, rt.now())

    class Dies(Flaky):
        async def send(self, message: Message, *, message_id: str) -> None:
            raise asyncio.CancelledError  # the process went away mid-send

    with pytest.raises(asyncio.CancelledError):
        await deliver_due(rt.db, Dies(0), rt.now, OutboxPolicy(lease_seconds=120))
    backend = Flaky(0)
    assert await deliver_due(rt.db, backend, rt.now, OutboxPolicy()) == 0  # leased
    clock.advance(121)
    assert await deliver_due(rt.db, backend, rt.now, OutboxPolicy()) == 1


async def test_finished_rows_are_purged(web, clock):
    rt = web.rt
    async with rt.db.write() as session:
        await enqueue(session, MESSAGE, rt.now())
        await enqueue(session, MESSAGE, rt.now())
    await deliver_due(rt.db, Flaky(0), rt.now, OutboxPolicy(batch=1))
    clock.advance(31 * 86_400)
    async with rt.db.write() as session:
        assert await purge_finished(session, rt.now() - 30 * 86_400) == 1
    assert [r.status for r in await _rows(rt)] == ["pending"]


async def test_the_file_backend_writes_private_rfc_5322_files(tmp_path):
    directory = tmp_path / "mail"
    sender = FileSender(directory, sender="reapi <no-reply@reapi.example>")
    message = Message(
        to="ada@example.com",
        subject="Héllo ✓",
        text=MESSAGE.text,
        html=MESSAGE.html,
        headers={"X-Test": "1"},
    )
    await sender.send(message, message_id="mail_1")
    await sender.send(message, message_id="mail_1")  # a retry overwrites, never duplicates
    [path] = directory.glob("*.eml")
    assert path.name.endswith("-mail_1.eml")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    raw = path.read_bytes()
    assert b"secret-token-value" in raw  # the plain part is readable as it is (8bit)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["From"] == "reapi <no-reply@reapi.example>"
    assert parsed["To"] == "ada@example.com" and parsed["Subject"] == "Héllo ✓"
    assert parsed["X-Test"] == "1" and parsed["Message-ID"] and parsed["Date"]
    assert parsed.get_body(("plain",)).get_content().strip() == MESSAGE.text
    assert "secret-token-value" in parsed.get_body(("html",)).get_content()


async def test_the_file_backend_reports_a_failed_write_by_its_type_only(tmp_path):
    """The OSError (which names the path) is neither the code nor chained to the failure."""
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    sender = FileSender(blocked / "mail", sender="reapi <no-reply@reapi.example>")
    with pytest.raises(SendFailed) as failed:
        await sender.send(MESSAGE, message_id="mail_1")
    assert failed.value.code == "NotADirectoryError" and failed.value.retryable
    assert failed.value.__context__ is None and failed.value.__cause__ is None


async def test_the_file_backends_copies_go_with_the_rows(web, clock, tmp_path):
    """A message's file holds all of it (links, the address): the outbox's purge removes the
    files as old as the rows it purges, at its first pass and every 600th after."""
    rt = web.rt
    sender = FileSender(tmp_path / "mail", sender="reapi <no-reply@reapi.example>")
    await sender.send(MESSAGE, message_id="mail_old")
    (tmp_path / "mail" / "20260101T000000.000000-mail_dead.part").write_bytes(b"half")
    clock.advance(31 * 86_400)
    for path in (tmp_path / "mail").iterdir():  # written 31 days ago
        os.utime(path, (rt.now() - 31 * 86_400, rt.now() - 31 * 86_400))
    await sender.send(MESSAGE, message_id="mail_new")
    [new] = (tmp_path / "mail").glob("*-mail_new.eml")
    os.utime(new, (rt.now(), rt.now()))  # written now, on the test's clock
    loop = asyncio.create_task(run_outbox(rt.db, sender, rt.now, interval=0.01))
    try:
        for _ in range(200):
            if len(list((tmp_path / "mail").iterdir())) == 1:
                break
            await asyncio.sleep(0.01)
    finally:
        loop.cancel()
    [left] = (tmp_path / "mail").iterdir()
    assert left.name.endswith("-mail_new.eml")
    assert await sender.forget_before(rt.now() + 1) == 1
    assert list((tmp_path / "mail").iterdir()) == []


def test_a_message_repr_holds_no_body():
    assert "secret" not in repr(MESSAGE) and "ada@" not in repr(MESSAGE)
