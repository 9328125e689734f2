"""Well-formed keys that are not keys: a negative cache of their digests, and a budget per client
address of lookups that found nothing.

A key's checksum is public, so anyone can make well-formed keys, each of which cost a database
lookup. A digest found unknown stays unknown: keys are made only from 32 fresh random bytes
(`keys.new_key`), so a key made later cannot have the digest of one presented before (odds of
2^-256), and a revoked key is never restored. So the cache is never wrong, in any process, and
nothing has to clear it when a key is created or rotated: its time-to-live bounds its memory
only. It answers a client repeating one bad key; a flood of different ones is what the budget is
for: an address whose lookups found nothing `per_minute` times is answered 429 (Retry-After)
until its bucket refills, for keys this process has not seen valid (`Authenticator`: a key it
has cached is still looked up, so clients with working keys behind the same address go on).
Per process, like the key rate limits without Redis.
"""

from __future__ import annotations

import math

__all__ = ["UnknownKeys"]

_ADDRESSES_LIMIT = 50_000


class UnknownKeys:
    def __init__(self, *, ttl: float = 300.0, per_minute: int = 60, limit: int = 10_000) -> None:
        self._ttl = ttl
        self._per_minute = float(per_minute)
        self._limit = limit
        #: Key digest → until when it is answered without a lookup.
        self._digests: dict[str, float] = {}
        #: Client address → (lookups left, when last counted).
        self._buckets: dict[str, tuple[float, float]] = {}

    def known(self, key_hash: str, now: float) -> bool:
        """The digest was looked up lately and found to be no key."""
        until = self._digests.get(key_hash)
        return until is not None and until > now

    def _left(self, address: str, now: float) -> float:
        left, last = self._buckets.get(address, (self._per_minute, now))
        return min(self._per_minute, left + (now - last) * self._per_minute / 60.0)

    def wait(self, address: str, now: float) -> float | None:
        """Seconds until `address` may have another lookup, or None: it may now."""
        left = self._left(address, now)
        if left >= 1.0:
            return None
        return max(math.ceil((1.0 - left) * 60.0 / self._per_minute), 1)

    def remember(self, key_hash: str, address: str | None, now: float) -> None:
        """A lookup found no key for `key_hash`: cached, and counted against `address`."""
        if len(self._digests) >= self._limit:
            self._digests.clear()
        self._digests[key_hash] = now + self._ttl
        if address is not None:
            if len(self._buckets) >= _ADDRESSES_LIMIT:
                self._buckets.clear()
            self._buckets[address] = (max(self._left(address, now) - 1.0, 0.0), now)
