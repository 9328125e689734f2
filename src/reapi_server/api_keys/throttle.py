"""A bound on how many keys an account makes in an hour, through the keys page and the
management API (the operator's `reapi-server keys create` is not counted): a script that makes
and revokes keys in a loop would otherwise grow the key table, and the keys page, without end.

It uses the sign-in limits' mechanism (`identity.throttle`: one row per counter in the
database, so every server process counts together). The count is taken in the transaction that
inserts the key, so a key that is refused (too many active, bad limits) is not counted.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ..errors import RateLimited
from ..identity.throttle import MINUTE, Counter, Rule, Throttle

__all__ = ["KEYS_PER_HOUR", "account_keys", "take"]

#: Keys (model and management together) an account may make in an hour.
KEYS_PER_HOUR = 30
_RULE = Rule("keys_acct", limit=KEYS_PER_HOUR, window=60 * MINUTE)


def _counter(account_id: str) -> Counter:
    return Counter(_RULE, f"{_RULE.name}:{account_id}")


def account_keys(account_id: str) -> list[str]:
    """The keys of the account's own count: exported with its owner's data, deleted with it."""
    return [_counter(account_id).key]


async def take(session: AsyncSession, account_id: str, now: float) -> None:
    """Count one key made, or raise `RateLimited` (with the wait) when the hour's are made."""
    counter = _counter(account_id)
    if await Throttle.take(session, counter, now):
        return
    wait = await Throttle.retry_after(session, [counter], now)
    raise RateLimited(
        f"an account may make at most {KEYS_PER_HOUR} keys an hour; try again later",
        code="rate_limit_exceeded",
        retry_after=wait or _RULE.window,
    )
