"""Rate limits that hold across every instance of a fleet: GCRA (the generic cell rate
algorithm) in one Lua script, so a key's and its account's limits are checked and taken in one
round trip, atomically, on Redis's clock (instances' clocks never disagree about it).

Each limit allows `per_minute` requests at once (a minute's worth), then one every
60/`per_minute` seconds: the same shape as the in-process token bucket it falls back to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..coordination.link import RedisLink

__all__ = ["GlobalRateLimiter"]

# KEYS: one per limit. ARGV: each limit's requests per minute, in the same order.
# Returns 0 when every limit allows the request (then it is counted against all of them), else
# {the 1-based index of a refusing limit, milliseconds until it would allow one}.
_GCRA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local arrivals = {}
local worst, worst_index = 0, 0
for i, key in ipairs(KEYS) do
  local interval = 60 / tonumber(ARGV[i])
  local stored = redis.call('GET', key)
  local tat = now
  if stored then tat = math.max(tonumber(stored), now) end
  arrivals[i] = tat + interval
  local over = arrivals[i] - now - 60
  if over > worst then worst, worst_index = over, i end
end
if worst_index > 0 then
  return {worst_index, math.ceil(worst * 1000)}
end
for i, key in ipairs(KEYS) do
  -- at least 1 ms: a share of a minute below the clock's resolution adds nothing to `now`
  local ttl = math.max(math.ceil((arrivals[i] - now) * 1000), 1)
  redis.call('SET', key, string.format('%.6f', arrivals[i]), 'PX', ttl)
end
return 0
"""


class GlobalRateLimiter:
    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self._script: Any = link.client.register_script(_GCRA)

    async def acquire(
        self, limits: Sequence[tuple[str, int]]
    ) -> tuple[bool, tuple[int, float] | None]:
        """(answered, as `RateLimiter.acquire` but fleet-wide); not answered while Redis is
        down."""
        keys = [self.link.key("rate", name) for name, _ in limits]
        per_minute = [str(n) for _, n in limits]

        async def run(client: Any) -> Any:
            return await self._script(keys=keys, args=per_minute, client=client)

        answer = await self.link.call("rate_limit", run)
        if answer is None:
            return False, None
        if answer == 0:
            return True, None
        index, wait_ms = answer
        return True, (int(index) - 1, int(wait_ms) / 1000)
