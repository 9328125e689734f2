"""The releases kept while the database is away (`credits.pending`): one that fails for
another reason does not hold up the rest, the list is bounded, and the try at shutdown stays
within its bound."""

import logging

import anyio
import pytest

from reapi_server.credits import pending as pending_module
from reapi_server.credits.live import LiveHolds
from reapi_server.credits.pending import (
    PendingReleases,
    release_before_exit,
    retry_pending_releases,
)


def _release(log: list[str], name: str, error: BaseException | None = None):
    async def release() -> None:
        if error is not None:
            raise error
        log.append(name)

    return release


async def test_a_release_failing_other_than_unavailable_is_dropped_not_retried_forever():
    """It used to stay first in the list: every round stopped on it, each second, forever, and
    the releases behind it never ran (their credits held until the sweeper's expiry)."""
    done: list[str] = []
    pending = PendingReleases()
    pending.add("h_bug", _release(done, "h_bug", ValueError("a bug")))
    pending.add("h_ok", _release(done, "h_ok"))
    assert await retry_pending_releases(pending) == 1
    assert done == ["h_ok"]
    assert len(pending) == 0


async def test_an_unavailable_database_stops_the_round_and_keeps_the_release():
    done: list[str] = []
    pending = PendingReleases()
    pending.add("h_away", _release(done, "h_away", ConnectionRefusedError()))
    pending.add("h_next", _release(done, "h_next"))
    with pytest.raises(ConnectionRefusedError):
        await retry_pending_releases(pending)
    assert len(pending) == 2 and done == []


@pytest.mark.parametrize("reraise", [False, True])
async def test_release_or_keep_runs_now_and_keeps_what_fails(caplog, reraise):
    """The image request's release (error swallowed) and the video submission's (raised): a
    release that lands is not kept; one that fails is logged on the caller's logger with its
    id and kept for the retries."""
    done: list[str] = []
    pending = PendingReleases()
    caller = logging.getLogger("reapi_server.caller")
    await pending.release_or_keep(
        "h_ok", _release(done, "h_ok"), logger=caller, about={"job_id": "j1"}, reraise=reraise
    )
    assert done == ["h_ok"] and len(pending) == 0 and not caplog.records
    away = _release(done, "h_away", ConnectionRefusedError())
    if reraise:
        with pytest.raises(ConnectionRefusedError):
            await pending.release_or_keep(
                "h_away", away, logger=caller, about={"job_id": "j1"}, reraise=True
            )
    else:
        await pending.release_or_keep(
            "h_away", away, logger=caller, about={"job_id": "j1"}, reraise=False
        )
    assert pending.items() == [("h_away", away)]
    (record,) = caplog.records
    assert (record.name, record.getMessage()) == ("reapi_server.caller", "release failed")
    assert (record.job_id, record.code) == ("j1", "ConnectionRefusedError")


def test_the_list_is_bounded(monkeypatch):
    monkeypatch.setattr(pending_module, "MAX_PENDING", 3)
    pending = PendingReleases()
    for n in range(5):
        pending.add(f"h_{n}", _release([], str(n)))
    assert len(pending) == 3


async def test_the_try_at_shutdown_stays_within_its_bound_on_a_hanging_database():
    """The last try of the failed releases was outside the bound: a database that hangs
    (a partition, no refusal) held the process past its stop grace."""

    async def hangs() -> None:
        await anyio.sleep_forever()

    pending = PendingReleases()
    pending.add("h_1", hangs)
    with anyio.fail_after(5):
        await release_before_exit(LiveHolds(), pending, 0.2)
    assert len(pending) == 1  # left to the sweeper


async def test_shutdown_waits_for_the_cut_requests_idempotency_records_too():
    """A cut request drops its unanswered idempotency record after its hold is released: the
    wait ended with the holds, the pool closed under the drop, and the record stayed
    `in_progress`, so the retry the 503 asks for (same Idempotency-Key) was held up until the
    sweeper took it for dead (`image_hold_seconds`, 15 minutes)."""
    from reapi_server.idempotency.local import LocalClaims

    claims = LocalClaims()
    claims.claimed(7, alive_until=1e12)

    async def abandon_later() -> None:
        await anyio.sleep(0.1)
        claims.ended(7)

    async with anyio.create_task_group() as group:
        group.start_soon(abandon_later)
        with anyio.fail_after(5):
            await release_before_exit(
                LiveHolds(), PendingReleases(), 2.0, also=(claims.until_empty,)
            )
        assert claims.event(7) is None  # returned once the claim had ended
