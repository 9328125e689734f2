"""Which limits a request counts against, and where they are counted: in Redis for the whole
fleet when there is one and it answers, else in this process."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..api_keys.auth import Principal
from ..coordination.link import RedisLink
from .global_rate import GlobalRateLimiter
from .rate import RateLimiter

__all__ = ["Limiter", "Refusal"]


@dataclass(frozen=True, slots=True)
class Refusal:
    #: "key" or "account": whose limit refused.
    scope: str
    per_minute: int
    retry_after: int


class Limiter:
    def __init__(self, link: RedisLink | None = None) -> None:
        self.local = RateLimiter()
        self.fleet = GlobalRateLimiter(link) if link is not None else None

    async def acquire(
        self, principal: Principal, key_per_minute: int, account_per_minute: int
    ) -> Refusal | None:
        """Count one request of this caller; a refusal says which limit and for how long."""
        limits: list[tuple[str, int]] = []
        scopes: list[str] = []
        if key_per_minute > 0:
            limits.append((f"key:{principal.key_id}", key_per_minute))
            scopes.append("key")
        if account_per_minute > 0:
            limits.append((f"account:{principal.account_id}", account_per_minute))
            scopes.append("account")
        if not limits:
            return None
        answered, refused = False, None
        if self.fleet is not None:
            answered, refused = await self.fleet.acquire(limits)
        if not answered:
            refused = self.local.acquire(limits)
        if refused is None:
            return None
        index, wait = refused
        return Refusal(scopes[index], limits[index][1], max(math.ceil(wait), 1))
