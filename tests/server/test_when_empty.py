"""`WhenEmpty` wakes every waiter once the last one running is removed."""

import asyncio

from reapi_server.when_empty import WhenEmpty


async def test_two_waiters_are_both_woken():
    """A second waiter took the place of the first, which then waited for ever (a shutdown
    wait beside another: one of them hung)."""
    emptied = WhenEmpty()
    waits = [asyncio.create_task(emptied.wait(2)) for _ in range(2)]
    await asyncio.sleep(0)
    emptied.removed(1)
    await asyncio.sleep(0)
    assert not any(w.done() for w in waits)  # one still running
    emptied.removed(0)
    await asyncio.wait_for(asyncio.gather(*waits), timeout=1)


async def test_a_wait_after_the_last_wake_waits_for_the_next_empty():
    emptied = WhenEmpty()
    first = asyncio.create_task(emptied.wait(1))
    await asyncio.sleep(0)
    emptied.removed(0)
    await asyncio.wait_for(first, timeout=1)
    second = asyncio.create_task(emptied.wait(1))  # more came meanwhile
    await asyncio.sleep(0.01)
    assert not second.done()
    emptied.removed(0)
    await asyncio.wait_for(second, timeout=1)
    await asyncio.wait_for(emptied.wait(0), timeout=1)  # none running: at once
