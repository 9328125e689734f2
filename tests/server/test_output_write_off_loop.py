"""The local store writes outputs on its writer thread, not on the event loop (issue 15: on a busy
disk, write and rename blocked the loop, and with it every request, for seconds). A write is
held deterministically by wrapping the store's real write in one that waits on a
`threading.Event`; the disk itself is real."""

import asyncio
import os
import threading
import time
from pathlib import Path

import anyio
import pytest
from tests.server.fakes import PNG
from tests.server.helpers import auth

from reapi_server.mirror import LocalDiskStore, local, read_object
from reapi_server.mirror.file_writer import FileWriter

KEY = "outputs/req_6666666666666666/0.png"


class HeldWrite:
    """The store's write, held until `released` (or ten seconds: a loop it blocks gets back)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, holds: int = 1) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()
        self.events: list[str] = []
        self._holds = holds
        real = local._write_all

        def held(descriptor: int, data: bytes) -> None:
            if self._holds > 0:
                self._holds -= 1
                self.entered.set()
                self.released.wait(10)
                self.events.append("written")
            real(descriptor, data)

        monkeypatch.setattr(local, "_write_all", held)

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 10), "the write never started"


async def _put_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[LocalDiskStore, HeldWrite, asyncio.Task[int]]:
    """A store's `put` whose write has started on the writer thread and is held there."""
    store = LocalDiskStore(tmp_path / "outputs")
    store.prepare()
    held = HeldWrite(monkeypatch)
    put = asyncio.create_task(store.put(KEY, PNG, "image/png"))
    await held.wait_entered()
    return store, held, put


async def test_the_loop_keeps_running_while_an_output_write_is_held(tmp_path, monkeypatch):
    store, held, put = await _put_held(tmp_path, monkeypatch)
    held.events.append("loop ran")  # while the write is held, not after it
    assert not put.done()
    held.released.set()
    assert await put == len(PNG)  # answered only once the file is written
    assert held.events == ["loop ran", "written"]
    assert store.path_of(KEY).read_bytes() == b"image/png\n" + PNG


async def test_other_requests_are_answered_while_a_requests_output_is_written(gateway, monkeypatch):
    """(Other writes queue behind the held one: one thread writes, in order.)"""
    _, key = await gateway.account()
    held = HeldWrite(monkeypatch)
    first = asyncio.create_task(
        gateway.client.post("/v1/images/generations", json={"prompt": "p"}, headers=auth(key))
    )
    await held.wait_entered()
    second = await gateway.client.get("/v1/models", headers=auth(key))
    assert second.status_code == 200 and not first.done()
    held.events.append("second answered")
    held.released.set()
    response = await first
    assert response.status_code == 200
    assert held.events == ["second answered", "written"]
    request_id = response.headers["x-request-id"]
    stored = await read_object(
        gateway.rt.store, gateway.rt.output_names.key(request_id, 0, "image/png")
    )
    assert stored is not None and stored.content_type == "image/png"


async def test_a_cancelled_put_waits_for_its_write(tmp_path, monkeypatch):
    """No write outlives its `put`: the caller's cleanup, after the cancellation, finds it."""
    store, held, put = await _put_held(tmp_path, monkeypatch)
    put.cancel()
    await asyncio.sleep(0.05)
    assert not put.done()
    put.cancel()  # a second time changes nothing either
    await asyncio.sleep(0.05)
    assert not put.done()
    held.released.set()
    with pytest.raises(asyncio.CancelledError):
        await put
    assert store.path_of(KEY).read_bytes() == b"image/png\n" + PNG
    await store.delete_prefix("outputs/req_6666666666666666/")
    assert not store.path_of(KEY).exists()


async def test_a_put_in_a_cancelled_anyio_scope_waits_for_its_write_quietly(tmp_path, monkeypatch):
    """Starlette cancels a request's anyio scope when its client goes away. anyio delivers that
    cancellation on every pass of the loop until the task is shielded from it: a wait that
    took each one would spin on the loop for as long as the disk holds the write."""
    store = LocalDiskStore(tmp_path / "outputs")
    store.prepare()
    held = HeldWrite(monkeypatch)
    scopes: list[anyio.CancelScope] = []

    async def request() -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            await store.put(KEY, PNG, "image/png")
        assert scope.cancelled_caught

    task = asyncio.create_task(request())
    await held.wait_entered()
    scopes[0].cancel()
    spent = time.process_time()
    await asyncio.sleep(0.3)
    spent = time.process_time() - spent
    assert not task.done()
    held.released.set()
    await asyncio.wait_for(task, 5)
    assert spent < 0.15
    assert store.path_of(KEY).read_bytes() == b"image/png\n" + PNG


async def test_writes_queued_together_come_back_together_each_with_its_own_outcome(tmp_path):
    """Writes queued while the thread is busy are made as one batch, handed back to the loop at
    once; the one the disk refuses (its folder is a file) fails alone, as it would have alone."""
    writer = FileWriter()
    store = LocalDiskStore(tmp_path / "outputs", writer=writer)
    store.prepare()
    (store.root / "uploads").write_bytes(b"not a folder")
    busy, release = threading.Event(), threading.Event()

    def occupy() -> None:
        busy.set()
        release.wait(2)

    holder = asyncio.create_task(writer.run(occupy))
    assert await asyncio.to_thread(busy.wait, 10)
    keys = [f"outputs/req_77777777777777{n:02x}/0.png" for n in range(3)]
    puts = [asyncio.create_task(store.put(key, PNG, "image/png")) for key in keys]
    refused = asyncio.create_task(store.put("uploads/file_77/0.png", PNG, "image/png"))
    await asyncio.sleep(0.01)  # every put queued behind the held call
    release.set()
    await holder
    await asyncio.wait([*puts, refused], return_when=asyncio.FIRST_COMPLETED)
    assert all(task.done() for task in [*puts, refused])  # one hand-back for the batch
    assert [task.result() for task in puts] == [len(PNG)] * 3
    with pytest.raises(NotADirectoryError):
        refused.result()
    for key in keys:
        assert (await read_object(store, key)).data == PNG
    assert list((store.root / "outputs").rglob(".put-*")) == []


async def test_a_call_that_fails_raises_its_own_error_in_its_caller():
    writer = FileWriter()

    def refuse() -> None:
        raise PermissionError(13, "Permission denied")

    with pytest.raises(PermissionError):
        await writer.run(refuse)
    assert await writer.run(len, b"abc") == 3  # the thread is still there for the next


def _writer_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "reapi-file-writer"}


async def test_the_thread_leaves_when_idle_and_comes_back_with_the_next_write(tmp_path):
    before = _writer_threads()  # other tests' stores' threads, leaving in their own time
    writer = FileWriter(idle_seconds=0.05)
    store = LocalDiskStore(tmp_path / "outputs", writer=writer)
    await store.put(KEY, PNG, "image/png")
    (ours,) = _writer_threads() - before
    await asyncio.to_thread(ours.join, 10)
    assert not ours.is_alive()
    await store.put(KEY, b"again", "image/png")
    assert (await read_object(store, KEY)).data == b"again"
    await store.delete(KEY)
    assert await store.open(KEY) is None


def _open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not hasattr(os, "eventfd"), reason="the eventfd way back is Linux's")
async def test_the_way_back_wakes_the_loop_without_call_soon_threadsafe(tmp_path, monkeypatch):
    """`call_soon_threadsafe` wakes the loop while the writer still holds the GIL, which costs
    four more context switches per write on one core; the writer wakes it through an eventfd
    instead, written with the GIL let go."""
    loop = asyncio.get_running_loop()
    from_writer: list[str] = []
    real = loop.call_soon_threadsafe

    def counted(*args: object, **kwargs: object) -> object:
        if threading.current_thread().name == "reapi-file-writer":
            from_writer.append("call_soon_threadsafe")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    writer = FileWriter()
    store = LocalDiskStore(tmp_path / "outputs", writer=writer)
    store.prepare()
    for n in range(3):
        assert await store.put(f"outputs/req_88888888888888{n:02x}/0.png", PNG, "image/png") == len(
            PNG
        )
    results = await asyncio.gather(*(writer.run(len, b"x" * n) for n in range(5)))
    assert results == [0, 1, 2, 3, 4]
    assert from_writer == []


async def test_a_loop_that_cannot_watch_a_descriptor_gets_its_outcomes_all_the_same(monkeypatch):
    loop = asyncio.get_running_loop()

    def refuse(*args: object) -> None:
        raise NotImplementedError

    monkeypatch.setattr(loop, "add_reader", refuse)
    writer = FileWriter()
    assert await asyncio.gather(*(writer.run(len, b"x" * n) for n in range(3))) == [0, 1, 2]
    with pytest.raises(PermissionError):
        await writer.run(_refuse_permission)


def _refuse_permission() -> None:
    raise PermissionError(13, "Permission denied")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd")
async def test_the_loops_descriptor_is_closed_when_the_thread_leaves():
    before = _open_descriptors()
    writer = FileWriter(idle_seconds=0.05)
    assert await writer.run(len, b"abc") == 3
    for _ in range(1000):  # the thread leaves, then the loop closes what it watched
        await asyncio.sleep(0.01)
        if _open_descriptors() <= before and not writer._running:
            break
    assert not writer._running
    assert _open_descriptors() <= before
    assert await writer.run(len, b"ab") == 2  # a new thread, a new way back
