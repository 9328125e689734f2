"""Limits on what a signed-in person can make the gateway do in a loop: start Checkout Sessions
(each a Stripe API call) and hold a success page open while it waits for the webhook.

They use the sign-in limits' mechanism (`identity.throttle`: one row per counter in the
database, so every process counts together; one statement checks and counts): per account and
per client address (IPv6 per /64), in windows of an hour, with limits from `billing.*`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..db import Database
from ..errors import RateLimited
from ..identity.throttle import MINUTE, Counter, Rule, Throttle, client_network
from .settings import BillingSettings

__all__ = ["account_keys", "checkout_counters", "success_wait_counters", "take_all"]

WINDOW = 60 * MINUTE
#: The limits counted per account (`<name>_acct:<account id>`).
_NAMES = ("checkout", "paywait")


def _counters(
    name: str, account_id: str, address: str | None, limits: tuple[int, int]
) -> list[Counter]:
    per_account = Rule(f"{name}_acct", limit=limits[0], window=WINDOW)
    found = [Counter(per_account, f"{per_account.name}:{account_id}")]
    if address is not None:
        per_address = Rule(f"{name}_addr", limit=limits[1], window=WINDOW)
        found.append(Counter(per_address, f"{per_address.name}:{client_network(address)}"))
    return found


def account_keys(account_id: str) -> list[str]:
    """The keys of the account's own counts: exported with its owner's data, deleted with it."""
    return [f"{name}_acct:{account_id}" for name in _NAMES]


def checkout_counters(
    settings: BillingSettings, account_id: str, address: str | None
) -> list[Counter]:
    limits = (settings.checkout_limit, settings.checkout_limit_per_address)
    return _counters("checkout", account_id, address, limits)


def success_wait_counters(
    settings: BillingSettings, account_id: str, address: str | None
) -> list[Counter]:
    limits = (settings.success_wait_limit, settings.success_wait_limit_per_address)
    return _counters("paywait", account_id, address, limits)


async def take_all(
    db: Database, counters: Sequence[Counter], now: float, *, message: str, code: str
) -> None:
    """Count one attempt on every counter, or on none and raise `RateLimited` (with the wait)
    when one of them is at its limit."""
    async with db.write() as session:
        taken: list[Counter] = []
        for counter in counters:
            if not await Throttle.take(session, counter, now):
                break
            taken.append(counter)
        if len(taken) == len(counters):
            return
        for counter in taken:
            await Throttle.give_back(session, counter)
        wait = await Throttle.retry_after(session, counters, now)
    raise RateLimited(message, code=code, retry_after=wait or WINDOW)
