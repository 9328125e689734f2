"""At shutdown the gateway cancels its background tasks and waits for them, within a bound: one
that does not stop (a dependency that never answers its close) must not keep the process from
ending; it is named in the log."""

import asyncio
import logging

from reapi_server import app as app_module


async def test_a_task_that_does_not_stop_is_left_after_the_bound(monkeypatch, caplog):
    monkeypatch.setattr(app_module, "_STOP_SECONDS", 0.2)
    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await release.wait()  # its close never answers

    async def obedient() -> None:
        await asyncio.sleep(30)

    tasks = [asyncio.create_task(stubborn()), asyncio.create_task(obedient())]
    await asyncio.sleep(0)
    for task in tasks:
        task.cancel()
    with caplog.at_level(logging.WARNING, logger="reapi_server"):
        await asyncio.wait_for(app_module._stopped(tasks), timeout=5)
    assert tasks[1].cancelled()
    assert not tasks[0].done()
    (record,) = [r for r in caplog.records if r.getMessage() == "background tasks did not stop"]
    assert "stubborn" in record.code  # type: ignore[attr-defined]
    release.set()
    await tasks[0]


async def test_tasks_that_stop_are_waited_for_and_their_errors_kept_quiet(caplog):
    async def failing() -> None:
        raise RuntimeError("ended badly")

    task = asyncio.create_task(failing())
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="reapi_server"):
        await app_module._stopped([task])
    assert task.done() and isinstance(task.exception(), RuntimeError)
    assert not [r for r in caplog.records if r.getMessage() == "background tasks did not stop"]


async def test_no_tasks_no_wait():
    await asyncio.wait_for(app_module._stopped([]), timeout=1)
