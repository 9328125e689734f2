"""Bearer-token authentication for /v1 and the management API: never a cookie, never a query
parameter.

A lookup is cached for at most `ttl` seconds, so a revoked key, a changed allowlist or expiry
takes effect within that time in every process, and at once in the process that changed it
(which clears its cache). With Redis, the process that changed a key or an account says so on
the fleet's bus (`changed`) and every process drops that key's or account's principals when it
hears it, so the change takes effect at once everywhere; the bus is a hint (a message lost while
Redis is down), and the `ttl` stays the bound. The request's own path does no more work for it.
One lookup per key runs at a time: when the cached entry expires under load, the requests that
come meanwhile wait for it instead of each taking a database connection (on PostgreSQL the pool
opened and closed a connection for each, every cache period). A key whose account is disabled is
refused and never cached, so enabling the account again works at once. Whatever starts a charged
request is checked again, at once everywhere, by the statement that holds its credit
(`credits.repository`): a revoked or expired key, a disabled account, the key's spend limit; and
whatever a management key does, by `confirm` before it (a key on an account just deleted on
another process is refused at once). A well-formed key that is no key is remembered as such, and
an address's lookups that found nothing are budgeted (`misses`).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from ..coordination.bus import Bus
from ..credits.repository import KeySpend
from ..db import Database
from ..errors import AccountDisabled, InvalidApiKey, KeyExpired, ModelNotAllowed, RateLimited
from ..models import ApiKey
from . import repository
from .keys import MANAGEMENT_PREFIX, hash_key, is_well_formed
from .last_used import KeyUsage
from .limits import parse_allowlist
from .misses import UnknownKeys
from .periods import period_start

__all__ = ["Authenticator", "Principal", "client_address"]

_CACHE_LIMIT = 10_000
#: The bus topic of key and account changes: `key:<key id>` or `account:<account id>`.
TOPIC = "keys"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: metadata only (the key itself is never kept)."""

    account_id: str
    key_id: str
    requests_per_minute: int | None
    max_concurrent_videos: int | None
    #: model | management
    kind: str = "model"
    spend_period: str = "monthly"
    #: The models the key may call (None: every model).
    models: frozenset[str] | None = None
    expires_at: float | None = None
    account_disabled: bool = False
    #: The key's default webhook URL (None: none, or disabled by a 410 Gone).
    webhook_url: str | None = field(default=None, repr=False)

    def require_model_key(self, now: float) -> None:
        """Refuse what may not call /v1: a management key, a disabled account, an expired
        key."""
        if self.kind != "model":
            raise InvalidApiKey(
                f"a management key ({MANAGEMENT_PREFIX}...) manages keys and cannot call "
                "models: use an API key (rk_live_...)"
            )
        if self.account_disabled:
            raise AccountDisabled("this account is disabled; contact the operator of this gateway")
        if self.expires_at is not None and self.expires_at <= now:
            raise KeyExpired("this API key has expired")

    def require_model(self, model: str) -> None:
        if self.models is not None and model not in self.models:
            raise ModelNotAllowed(
                "this API key may not use this model (see its allowlist on the keys page)",
                param="model",
            )

    def allows(self, model: str) -> bool:
        return self.models is None or model in self.models

    def spend(self, now: float) -> KeySpend:
        """What a credit hold made now counts against: this key's current period."""
        return KeySpend(self.key_id, period_start(self.spend_period, now))


def client_address(connection: HTTPConnection) -> str | None:
    """The client's address as the server sees it (the proxy's headers, when trusted)."""
    return connection.client.host if connection.client is not None else None


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise InvalidApiKey(
            "no API key: send it as `Authorization: Bearer rk_live_...`", code="missing_api_key"
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidApiKey("the Authorization header must be `Bearer <API key>`")
    return token.strip()


#: A token that cannot be one of this gateway's keys (never echoed: it may be a real secret).
NOT_A_KEY = (
    "the API key is not a key of this gateway: its keys start with `rk_live_` (a provider's"
    " key, such as OpenAI's `sk-...`, does not work here); create one on the dashboard's Keys"
    " page"
)
#: One of ours in shape but not in its checksum: cut short or mistyped when copied.
MISTYPED_KEY = (
    "the API key is not valid: it is incomplete or mistyped (check that it was copied whole),"
    " or create a new one on the dashboard's Keys page"
)


class Authenticator:
    def __init__(
        self,
        db: Database,
        *,
        ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        bus: Bus | None = None,
    ) -> None:
        self._db = db
        self._bus = bus
        if bus is not None:
            bus.on(TOPIC, self._heard)
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[Principal, float]] = {}
        #: The lookups in flight, by key hash (`_find`).
        self._lookups: dict[str, asyncio.Task[tuple[ApiKey, bool] | None]] = {}
        #: Counts `forget_all` calls: a lookup that began before one is not cached.
        self._generation = 0
        #: The keys used since the last write of their last use (`last_used`).
        self.usage = KeyUsage()
        #: Digests found to be no key, and each address's budget of such lookups (`misses`).
        self.unknown = UnknownKeys()

    async def authenticate(
        self, authorization: str | None, address: str | None = None
    ) -> Principal:
        """The key's principal. `address`, the client's: a budget of lookups that found no key
        (`misses`)."""
        token = bearer_token(authorization)
        key_hash = hash_key(token)
        now = self._clock()
        cached = self._cache.get(key_hash)
        if cached is not None and cached[1] > now:
            return cached[0]  # only a well-formed key was ever cached: not checked again
        if not is_well_formed(token):
            # Refused on its shape and checksum alone: no database work for garbage. Most often
            # a provider's key (OPENAI_API_KEY) an OpenAI client sent for want of ours.
            raise InvalidApiKey(MISTYPED_KEY if token.startswith("rk_") else NOT_A_KEY)
        if self.unknown.known(key_hash, now):
            raise InvalidApiKey("the API key is not valid or has been revoked")
        if cached is None and address is not None:  # a key seen valid here is looked up
            wait = self.unknown.wait(address, now)
            if wait is not None:
                raise RateLimited(
                    "too many requests with keys that are not valid; retry later",
                    retry_after=wait,
                )
        generation = self._generation
        found = await self._find(key_hash)
        if found is None:
            self._cache.pop(key_hash, None)
            self.unknown.remember(key_hash, address, now)
            raise InvalidApiKey("the API key is not valid or has been revoked")
        row, account_disabled = found
        if account_disabled:
            self._cache.pop(key_hash, None)
            raise AccountDisabled(
                "this key's account is disabled; contact the operator of this service"
            )
        principal = Principal(
            row.account_id,
            row.id,
            row.requests_per_minute,
            row.max_concurrent_videos,
            kind=row.kind,
            spend_period=row.spend_period,
            models=parse_allowlist(row.model_allowlist),
            expires_at=row.expires_at,
            account_disabled=account_disabled,
            webhook_url=row.webhook_url if row.webhook_disabled_at is None else None,
        )
        if generation != self._generation:
            return principal  # read before a change in this process: answers only this request
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key_hash] = (principal, now + self._ttl)
        return principal

    async def _find(self, key_hash: str) -> tuple[ApiKey, bool] | None:
        """The key's row, by one lookup shared with whoever asks for it meanwhile. Shielded: a
        caller that is cancelled leaves the lookup to the others."""
        lookup = self._lookups.get(key_hash)
        if lookup is None:
            lookup = asyncio.ensure_future(self._read(key_hash))
            self._lookups[key_hash] = lookup
            lookup.add_done_callback(functools.partial(self._looked_up, key_hash))
        return await asyncio.shield(lookup)

    async def _read(self, key_hash: str) -> tuple[ApiKey, bool] | None:
        async with self._db.read() as session:
            return await repository.find_active(session, key_hash)

    def _looked_up(self, key_hash: str, lookup: asyncio.Task[tuple[ApiKey, bool] | None]) -> None:
        if self._lookups.get(key_hash) is lookup:
            del self._lookups[key_hash]
        if not lookup.cancelled():
            lookup.exception()  # retrieved: its callers (if any are left) have it

    async def confirm(self, principal: Principal, now: float) -> None:
        """Refuse `principal`'s key unless the database says now that it is in force and its
        account open and enabled: for the management API, where a key cached here may belong
        to an account another process has just deleted or disabled (a key or a webhook created
        on it, the account's data read). One indexed read; /v1 has the credit hold for that."""
        async with self._db.read() as session:
            disabled = await repository.standing(session, principal.key_id, now)
        if disabled is None:
            self._cache.clear()
            raise InvalidApiKey("the API key is not valid or has been revoked")
        if disabled:
            self._cache.clear()
            raise AccountDisabled("this account is disabled; contact the operator of this gateway")

    def forget_all(self) -> None:
        """Called after a revocation in this process, so it takes effect at once here: the
        requests that come after it look the key up afresh, and what a lookup already under way
        read is not cached."""
        self._cache.clear()
        self._lookups.clear()
        self._generation += 1

    def changed(self, *, key_id: str | None = None, account_id: str | None = None) -> None:
        """A key was revoked or its limits changed (`key_id`), or an account disabled or
        deleted (`account_id`), by this process: forget here at once (`forget_all`) and tell
        the other processes (`_heard`), after the change is committed."""
        self.forget_all()
        if self._bus is None:
            return
        for kind, ident in (("key", key_id), ("account", account_id)):
            if ident is not None:
                self._bus.soon(self._bus.publish(TOPIC, f"{kind}:{ident}".encode()))

    def _heard(self, data: bytes) -> None:
        """A process changed a key or an account: drop its principals here, and cache nothing
        that a lookup already under way read (it may have read before the change)."""
        kind, _, ident = data.decode().partition(":")
        if kind == "key":
            self._cache = {h: e for h, e in self._cache.items() if e[0].key_id != ident}
        elif kind == "account":
            self._cache = {h: e for h, e in self._cache.items() if e[0].account_id != ident}
        else:
            raise ValueError(f"unknown key change {kind!r}")
        self._lookups.clear()
        self._generation += 1
