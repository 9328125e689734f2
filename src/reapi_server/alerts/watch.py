"""Watching for crossings without a statement of its own on the request path.

Closing a credit hold already returns the account's balance and the key's spend
(`credits.repository.ClosedHold`). Each process keeps every alert's threshold and flag in
memory (`AlertWatch`); `observe` compares the closed hold's figures with them, which costs a
dictionary lookup. A crossing (an armed threshold the balance is now below, a key's spend at
its share) flips the flag in memory and leaves the write to a task of its own: the conditional
UPDATE on the flag, and the mail in the same transaction (`crossings.fire_balance`). Another
process that saw the same crossing loses that UPDATE and mails nothing. Going back to the safe
side arms the alert again the same way.

The memory is refreshed from the database by a periodic pass (`run_alert_watch`), which also
catches what no request saw (`crossings.sweep`); the settings page refreshes the account it
changed at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from ..credits.repository import ClosedHold
from . import crossings, repository
from .crossings import AlertMail
from .rules import key_threshold

__all__ = ["AlertWatch", "run_alert_watch"]

log = logging.getLogger("reapi_server.alerts")


@dataclass(slots=True)
class _Watched:
    """One threshold as this process last knew it: alert id, credits, flag."""

    alert_id: int
    threshold: int
    armed: bool


@dataclass(slots=True)
class _WatchedKey:
    key_id: str
    account_id: str
    #: Spend (credits in the key's period) at which the alert fires.
    threshold: int
    armed: bool


class AlertWatch:
    def __init__(self, mail: AlertMail) -> None:
        self.mail = mail
        self._balances: dict[str, list[_Watched]] = {}
        self._keys: dict[str, _WatchedKey] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return sum(map(len, self._balances.values())) + len(self._keys)

    # -- the request path: memory only ---------------------------------------------------------

    def observe(self, closed: ClosedHold | None) -> None:
        """A hold closed with these figures: start the write of any crossing they show."""
        if closed is None:
            return
        if closed.balance is not None:
            for watched in self._balances.get(closed.account_id, ()):
                below = closed.balance < watched.threshold
                if below and watched.armed:
                    watched.armed = False
                    self._soon(self._fire_balance(watched))
                elif not below and not watched.armed:
                    watched.armed = True
                    self._soon(self._arm_balance(watched))
        if closed.key_id is not None and closed.key_spend is not None:
            key = self._keys.get(closed.key_id)
            if key is None:
                return
            reached = closed.key_spend >= key.threshold
            if reached and key.armed:
                key.armed = False
                self._soon(self._fire_key(key))
            elif not reached and not key.armed:
                key.armed = True
                self._soon(self._arm_key(key))

    def _soon(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for the writes started so far (tests; a process stopping)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- the writes, off the request path ------------------------------------------------------

    async def _guarded(self, what: str, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Exception as exc:  # the periodic pass does it again, from the database
            log.warning("alert write failed", extra={"code": f"{what}:{type(exc).__name__}"})

    async def _fire_balance(self, watched: _Watched) -> None:
        async def work() -> None:
            # `waiting` stays disarmed here: the next requests below must not fire it again
            # (the periodic pass, reading the flag from the database, does).
            watched.armed = await crossings.fire_balance(self.mail, watched.alert_id) == "armed"

        await self._guarded("balance", work)

    async def _arm_balance(self, watched: _Watched) -> None:
        async def work() -> None:
            watched.armed = await crossings.arm_balance(self.mail, watched.alert_id)

        await self._guarded("balance", work)

    async def _fire_key(self, key: _WatchedKey) -> None:
        async def work() -> None:
            key.armed = await crossings.fire_key(self.mail, key.key_id) == "armed"

        await self._guarded("key", work)

    async def _arm_key(self, key: _WatchedKey) -> None:
        async def work() -> None:
            key.armed = await crossings.arm_key(self.mail, key.key_id)

        await self._guarded("key", work)

    # -- what this process knows ---------------------------------------------------------------

    async def refresh(self, account_id: str | None = None) -> None:
        """Read the alerts again (of one account, or every one)."""
        async with self.mail.db.read() as session:
            if account_id is None:
                balances = await repository.balance_alerts(session)
                keys = await repository.key_alerts(session)
            else:
                balances = [
                    (row.id, row.account_id, row.threshold, row.armed)
                    for row in await repository.balance_alerts_of(session, account_id)
                ]
                keys = [
                    row
                    for row in await repository.key_alerts_of(session, account_id)
                    if not row.revoked
                ]
        by_account: dict[str, list[_Watched]] = {}
        for alert_id, owner, threshold, armed in balances:
            by_account.setdefault(owner, []).append(_Watched(alert_id, threshold, armed))
        watched_keys = {
            row.key_id: _WatchedKey(
                row.key_id, row.account_id, key_threshold(row.spend_limit, row.percent), row.armed
            )
            for row in keys
            if row.spend_limit is not None
        }
        if account_id is None:
            self._balances, self._keys = by_account, watched_keys
            return
        self._balances[account_id] = by_account.get(account_id, [])
        kept = {k: v for k, v in self._keys.items() if v.account_id != account_id}
        self._keys = {**kept, **watched_keys}


async def run_alert_watch(watch: AlertWatch, *, interval: float) -> None:
    """The periodic pass of every server process: what no request saw, then a fresh copy."""
    while True:
        try:
            await crossings.sweep(watch.mail)
            await watch.refresh()
        except Exception as exc:  # a database hiccup must not end the loop
            log.warning("alert pass failed", extra={"code": type(exc).__name__})
        await anyio.sleep(interval)
