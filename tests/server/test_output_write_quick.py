"""A small output is written on the event loop itself when that is sure to be quick: the writer's
thread has nothing to do and the disk answered fast lately (`FileWriter.run_quick`). The trip
to the thread and back was most of a lone output's cost. A slow write (a busy disk) sends the
ones after it to the thread again, so the loop is held at most once; a write already in hand on
the thread keeps the ones after it there, in order. Which thread wrote is recorded by wrapping
the store's real write; the disk itself is real."""

import asyncio
import threading
import time
from pathlib import Path

import pytest
from tests.server.fakes import PNG

from reapi_server.mirror import LocalDiskStore, local, read_object
from reapi_server.mirror import file_writer as file_writer_module
from reapi_server.mirror.file_writer import FAST_STREAK, FileWriter


class WhereWritten:
    """Each write's thread name, in order; `slow` makes the next write take that long."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.threads: list[str] = []
        self.slow = 0.0
        real = local._write_all

        def recorded(descriptor: int, data: bytes) -> None:
            self.threads.append(threading.current_thread().name)
            if self.slow:
                time.sleep(self.slow)
                self.slow = 0.0
            real(descriptor, data)

        monkeypatch.setattr(local, "_write_all", recorded)

    def last(self, count: int) -> list[str]:
        return self.threads[-count:]


def _store(tmp_path: Path) -> LocalDiskStore:
    store = LocalDiskStore(tmp_path / "outputs", writer=FileWriter())
    store.prepare()
    return store


async def _put(store: LocalDiskStore, n: int) -> None:
    assert await store.put(f"outputs/req_{n:016x}/0.png", PNG, "image/png") == len(PNG)


async def test_after_a_streak_of_fast_writes_a_lone_write_is_made_on_the_loop(
    tmp_path, monkeypatch
):
    where = WhereWritten(monkeypatch)
    store = _store(tmp_path)
    for n in range(FAST_STREAK):  # the first ones learn the disk, on the thread
        await _put(store, n)
    assert set(where.threads) == {"reapi-file-writer"}
    loop_thread = threading.current_thread().name
    for n in range(FAST_STREAK, FAST_STREAK + 5):
        await _put(store, n)
    assert where.last(5) == [loop_thread] * 5
    data = await read_object(store, f"outputs/req_{FAST_STREAK + 4:016x}/0.png")
    assert data is not None and data.data == PNG


async def test_a_slow_write_sends_the_next_ones_to_the_thread(tmp_path, monkeypatch):
    """A busy disk holds the loop at most once: for the write that finds it busy."""
    monkeypatch.setattr(file_writer_module, "QUIET_SECONDS", 60.0)
    where = WhereWritten(monkeypatch)
    store = _store(tmp_path)
    for n in range(FAST_STREAK + 1):
        await _put(store, n)
    loop_thread = threading.current_thread().name
    assert where.last(1) == [loop_thread]
    where.slow = file_writer_module.SLOW_SECONDS * 3
    await _put(store, 100)
    assert where.last(1) == [loop_thread]  # the one that found the disk busy
    for n in range(101, 101 + FAST_STREAK + 3):  # fast again, but not quiet for long enough
        await _put(store, n)
    assert set(where.last(FAST_STREAK + 3)) == {"reapi-file-writer"}


async def test_a_slow_write_on_the_thread_keeps_the_loop_out_of_it(tmp_path, monkeypatch):
    where = WhereWritten(monkeypatch)
    store = _store(tmp_path)
    where.slow = file_writer_module.SLOW_SECONDS * 3
    for n in range(FAST_STREAK * 2):
        await _put(store, n)
    assert set(where.threads) == {"reapi-file-writer"}


async def test_the_loop_writes_again_once_the_disk_was_quiet_for_a_while(tmp_path, monkeypatch):
    monkeypatch.setattr(file_writer_module, "QUIET_SECONDS", 0.2)
    where = WhereWritten(monkeypatch)
    store = _store(tmp_path)
    where.slow = file_writer_module.SLOW_SECONDS * 3
    for n in range(FAST_STREAK + 1):
        await _put(store, n)
    assert set(where.threads) == {"reapi-file-writer"}  # quiet for less than 0.2 s
    await asyncio.sleep(0.25)
    await _put(store, 1000)
    assert where.last(1) == [threading.current_thread().name]


async def test_a_write_behind_one_in_hand_on_the_thread_waits_there_in_turn(tmp_path, monkeypatch):
    """Calls are made in the order they come: none on the loop while the thread has one."""
    where = WhereWritten(monkeypatch)
    store = _store(tmp_path)
    for n in range(FAST_STREAK):
        await _put(store, n)
    busy, release = threading.Event(), threading.Event()
    order: list[str] = []

    def occupy() -> None:
        busy.set()
        release.wait(5)
        order.append("held call")

    holder = asyncio.create_task(store.writer.run(occupy))
    assert await asyncio.to_thread(busy.wait, 10)
    put = asyncio.create_task(_put(store, 500))
    await asyncio.sleep(0.05)
    assert not put.done()  # queued behind the held call, not made on the loop
    release.set()
    await holder
    await put
    order.append("put")
    assert order == ["held call", "put"]
    assert where.last(1) == ["reapi-file-writer"]


async def test_a_quick_call_that_fails_raises_its_own_error(tmp_path, monkeypatch):
    WhereWritten(monkeypatch)
    store = _store(tmp_path)
    for n in range(FAST_STREAK):
        await _put(store, n)
    (store.root / "uploads").write_bytes(b"not a folder")
    with pytest.raises(NotADirectoryError):
        await store.put("uploads/file_77/0.png", PNG, "image/png")
    await _put(store, 900)  # still fine after it
