"""Bearer-token authentication for /v1: never a cookie, never a query parameter.

A lookup is cached for at most `ttl` seconds, so a revoked key (or a key of an account an
operator disabled) stops working within that time in every process, and at once in the process
that revoked it (which clears its cache). A refused key is never cached.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..db import Database
from ..errors import AccountDisabled, InvalidApiKey
from . import repository
from .keys import hash_key, is_well_formed

__all__ = ["Authenticator", "Principal"]

_CACHE_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: metadata only (the key itself is never kept)."""

    account_id: str
    key_id: str
    requests_per_minute: int | None
    max_concurrent_videos: int | None
    #: The key's default webhook URL (None: none, or disabled by a 410 Gone).
    webhook_url: str | None = field(default=None, repr=False)


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise InvalidApiKey(
            "no API key: send it as `Authorization: Bearer rk_live_...`", code="missing_api_key"
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidApiKey("the Authorization header must be `Bearer <API key>`")
    return token.strip()


class Authenticator:
    def __init__(
        self, db: Database, *, ttl: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._db = db
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[Principal, float]] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        token = bearer_token(authorization)
        if not is_well_formed(token):
            # Refused on its shape and checksum alone: no database work for garbage.
            raise InvalidApiKey("the API key is not valid")
        key_hash = hash_key(token)
        now = self._clock()
        cached = self._cache.get(key_hash)
        if cached is not None and cached[1] > now:
            return cached[0]
        async with self._db.read() as session:
            found = await repository.find_active(session, key_hash)
        if found is None:
            self._cache.pop(key_hash, None)
            raise InvalidApiKey("the API key is not valid or has been revoked")
        row, disabled = found
        if disabled:
            self._cache.pop(key_hash, None)
            raise AccountDisabled(
                "this key's account is disabled; contact the operator of this service"
            )
        principal = Principal(
            row.account_id,
            row.id,
            row.requests_per_minute,
            row.max_concurrent_videos,
            row.webhook_url if row.webhook_disabled_at is None else None,
        )
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key_hash] = (principal, now + self._ttl)
        return principal

    def forget_all(self) -> None:
        """Called after a revocation in this process, so it takes effect at once here."""
        self._cache.clear()
