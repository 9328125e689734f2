"""The engine's attempt observer: each attempt of a failover or hedged run is heard of once when it
starts and once when it ends, numbered and flagged, with an outcome class and metadata only."""

import asyncio
import threading
import time

import anyio
import pytest

from reapi import InternalServerError, RouterConfig
from reapi._engine import AsyncEngine, SyncEngine
from reapi._observe import Attempt, AttemptEnd
from reapi.router import Router


class Heard:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []
        self.thread_ids: set[int] = set()

    def on_attempt_start(self, attempt: Attempt) -> None:
        self.thread_ids.add(threading.get_ident())
        flags = ("failover" if attempt.failover else "", "hedge" if attempt.hedge else "")
        self.events.append(("start", attempt.route.provider, str(attempt.number), *flags))

    def on_attempt_end(self, attempt: Attempt, end: AttemptEnd) -> None:
        self.thread_ids.add(threading.get_ident())
        assert end.elapsed_ms >= 0
        self.events.append(("end", attempt.route.provider, end.outcome, end.code, str(end.status)))


@pytest.fixture
def routes(catalog):
    return catalog.models["gpt-image-2"].routes  # primary, then backup


def failing_primary(route):
    if route.provider == "primary":
        raise InternalServerError("primary failed", provider="primary", status=500)
    return "image"


async def test_failover_is_heard_as_two_attempts(routes):
    heard = Heard()
    engine = AsyncEngine(Router(), observer=heard)

    async def attempt(route):
        return failing_primary(route)

    outcome = await engine.run(routes, attempt, hedge_for="gpt-image-2")  # an image request
    assert outcome.route.provider == "backup"
    assert heard.events == [
        ("start", "primary", "1", "", ""),
        ("end", "primary", "error", "upstream_server_error", "500"),
        ("start", "backup", "2", "failover", ""),
        ("end", "backup", "ok", "ok", "None"),
    ]


def test_the_sync_engine_is_heard_the_same(routes):
    heard = Heard()
    engine = SyncEngine(Router(), observer=heard)
    try:
        engine.run(routes, failing_primary, host_of=lambda route: f"{route.provider}.test:443")
    finally:
        engine.close()
    assert [e[:3] for e in heard.events] == [
        ("start", "primary", "1"),
        ("end", "primary", "error"),
        ("start", "backup", "2"),
        ("end", "backup", "ok"),
    ]


async def test_the_host_is_the_runs_host_of(routes):
    hosts = []

    class Hosts(Heard):
        def on_attempt_start(self, attempt: Attempt) -> None:
            hosts.append(attempt.host)

    engine = AsyncEngine(Router(), observer=Hosts())

    async def attempt(route):
        return failing_primary(route)

    await engine.run(routes, attempt, host_of=lambda route: f"{route.provider}.test:443")
    assert hosts == ["primary.test:443", "backup.test:443"]


async def test_a_hedge_that_lost_ends_cancelled(routes):
    heard = Heard()
    engine = AsyncEngine(Router(RouterConfig(hedge_after=0.05)), observer=heard)

    async def attempt(route):
        if route.provider == "primary":
            await anyio.sleep(5)
        return "image"

    outcome = await engine.run(routes, attempt, hedge_for="gpt-image-2")  # an image request
    assert outcome.route.provider == "backup"
    assert heard.events == [
        ("start", "primary", "1", "", ""),
        ("start", "backup", "2", "", "hedge"),
        ("end", "backup", "ok", "ok", "None"),
        ("end", "primary", "cancelled", "cancelled", "None"),
    ]


def test_a_sync_hedge_left_running_ends_cancelled_from_the_callers_thread(routes):
    heard = Heard()
    engine = SyncEngine(Router(RouterConfig(hedge_after=0.05)), observer=heard)

    def attempt(route):
        if route.provider == "primary":
            time.sleep(0.5)
        return "image"

    try:
        assert engine.run(routes, attempt, hedge_for="gpt-image-2").route.provider == "backup"
    finally:
        engine.close()
    assert [e[:3] for e in heard.events] == [
        ("start", "primary", "1"),
        ("start", "backup", "2"),
        ("end", "backup", "ok"),
        ("end", "primary", "cancelled"),
    ]
    assert heard.thread_ids == {threading.get_ident()}


async def test_a_crash_and_a_cancellation_end_their_attempts(routes):
    heard = Heard()
    engine = AsyncEngine(Router(), observer=heard)

    async def crash(route):
        raise ValueError("not metadata")

    with pytest.raises(ValueError):
        await engine.run(routes, crash)
    assert heard.events[-1] == ("end", "primary", "crashed", "ValueError", "None")

    async def hang(route):
        await anyio.sleep(5)

    task = asyncio.create_task(engine.run(routes, hang))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert heard.events[-1] == ("end", "primary", "cancelled", "cancelled", "None")


async def test_without_an_observer_nothing_is_watched(routes):
    engine = AsyncEngine(Router())
    assert engine.observer is None and engine._watch(None) is None

    async def attempt(route):
        return failing_primary(route)

    assert (await engine.run(routes, attempt)).route.provider == "backup"
