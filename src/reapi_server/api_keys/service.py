"""Issuing, listing, limiting and revoking keys: what the keys page, the management API and the
CLI do, in one place.

A key's webhook settings live here too: its default webhook URL (checked against the SSRF rules
before any transaction, `webhooks.service.check_url`) and its signing secret.

The session-level functions never commit (the CLI and sign-up call them in their own
transactions); `ApiKeys` runs each use case in a transaction of its own and lets this process's
authenticator forget what it cached, so that a change applies here at once (elsewhere within
the cache's two seconds; a spend limit applies everywhere at once, being read by the hold).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from reapi import InvalidRequestError
from reapi.core import translated_async

from ..accounts import repository as accounts
from ..db import Database
from ..errors import GatewayError, InvalidApiKey, NotFound
from ..models import ApiKey
from ..webhooks import service as webhooks
from ..webhooks.service import CheckedUrl
from . import repository, throttle
from .keys import PREFIXES, IssuedKey, hash_key, is_well_formed, new_key
from .limits import LIMIT_FIELDS, KeyLimits, LimitsInvalid
from .paging import KeyCursor
from .periods import current_spend, next_reset, period_start

if TYPE_CHECKING:
    from ..runtime import Runtime

__all__ = [
    "MAX_ACTIVE_KEYS",
    "MAX_NAME_LENGTH",
    "WEBHOOK_URL",
    "ApiKeys",
    "CreatedKey",
    "KeyPage",
    "KeyView",
    "issue_key",
    "keys_service",
    "revoke_key",
    "set_limits",
    "view_of",
]

MAX_NAME_LENGTH = 100
#: Active keys per account: enough for any use, and a bound on what a runaway script makes.
MAX_ACTIVE_KEYS = 200
#: The setting that names a key's default webhook URL (None or "": no default).
WEBHOOK_URL = "webhook_url"

#: Checks a webhook URL against the SSRF rules (it resolves the URL's host).
WebhookCheck = Callable[[str], Awaitable[CheckedUrl]]


_WEBHOOK_REFUSALS = {
    "url_not_allowed": "The webhook URL's host must resolve to public addresses only.",
    "invalid_url": "The webhook URL must be an http or https URL, without a user or password.",
    "string_above_max_length": (
        f"The webhook URL must be at most {webhooks.MAX_URL_LENGTH} characters."
    ),
}


def _webhook_refusal(error: BaseException) -> GatewayError:
    """A URL check's refusal as the keys page and the management API say it (fixed texts)."""
    code = getattr(error, "code", None) or "invalid_url"
    message = _WEBHOOK_REFUSALS.get(code, "The webhook URL is not valid.")
    return GatewayError(message, param=WEBHOOK_URL, code=code)


async def _no_webhooks(url: str) -> CheckedUrl:
    raise GatewayError("this gateway takes no webhook URLs here", param=WEBHOOK_URL)


@dataclass(frozen=True, slots=True)
class KeyView:
    """A key as its owner sees it: metadata, limits and the spend counter. Never the secret."""

    id: str
    name: str
    kind: str
    prefix: str
    last4: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None
    limits: KeyLimits
    #: Credits spent or held in the current period: the counter the limit is checked against.
    spend: int
    #: When the current period began and when it ends (None: `never` resets).
    period_start: float
    resets_at: float | None
    active_videos: int
    expired: bool
    #: Where the key's video jobs announce their end when a request names no `webhook_url`
    #: (None: nowhere), and whether a receiver's 410 Gone disabled it.
    webhook_url: str | None = None
    webhook_disabled: bool = False

    @property
    def active(self) -> bool:
        return self.revoked_at is None and not self.expired

    @property
    def masked(self) -> str:
        """How the key is shown: its prefix and last four characters."""
        return f"{self.prefix}...{self.last4}"

    def as_json(self) -> dict[str, Any]:
        """The management API's shape of a key (times in Unix seconds)."""
        limits = self.limits
        return {
            "object": "api_key",
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "prefix": self.prefix,
            "last4": self.last4,
            "created_at": int(self.created_at),
            "last_used_at": _seconds(self.last_used_at),
            "revoked_at": _seconds(self.revoked_at),
            "status": "revoked" if self.revoked_at else "expired" if self.expired else "active",
            "limits": {
                "spend_limit": limits.spend_limit,
                "spend_period": limits.spend_period,
                "models": list(limits.models) if limits.models is not None else None,
                "expires_at": _seconds(limits.expires_at),
                "requests_per_minute": limits.requests_per_minute,
                "max_concurrent_videos": limits.max_concurrent_videos,
            },
            "spend": {
                "current": self.spend,
                "limit": limits.spend_limit,
                "period": limits.spend_period,
                "period_start": int(self.period_start),
                "resets_at": _seconds(self.resets_at),
            },
            "webhook": {"url": self.webhook_url, "disabled": self.webhook_disabled},
        }


@dataclass(frozen=True, slots=True)
class CreatedKey:
    view: KeyView
    #: Shown once, never stored.
    plaintext: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class KeyPage:
    keys: list[KeyView]
    #: Where the next page starts (None: this is the last).
    next: KeyCursor | None


def _seconds(timestamp: float | None) -> int | None:
    return None if timestamp is None else int(timestamp)


def view_of(key: ApiKey, now: float) -> KeyView:
    period = key.spend_period
    return KeyView(
        id=key.id,
        name=key.name,
        kind=key.kind,
        prefix=PREFIXES.get(key.kind, PREFIXES["model"]),
        last4=key.last4,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
        limits=KeyLimits.of(key),
        spend=current_spend(period, key.period_start, key.period_spend, now),
        period_start=max(period_start(period, now), key.period_start),
        resets_at=next_reset(period, now),
        active_videos=key.active_videos,
        expired=key.expires_at is not None and key.expires_at <= now,
        webhook_url=key.webhook_url,
        webhook_disabled=key.webhook_disabled_at is not None,
    )


def clean_name(name: str) -> str:
    """A key's label: trimmed, at most `MAX_NAME_LENGTH` characters, no control characters."""
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise LimitsInvalid({"name": f"The name must be at most {MAX_NAME_LENGTH} characters."})
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise LimitsInvalid({"name": "The name must not contain control characters."})
    return name


async def issue_key(
    session: AsyncSession,
    account_id: str,
    *,
    name: str = "",
    now: float,
    kind: str = "model",
    limits: KeyLimits | None = None,
    known_models: Collection[str] = (),
) -> tuple[ApiKey, IssuedKey]:
    """A new key of `kind` with `limits` (checked against `known_models`); management keys
    take no limits."""
    if kind not in PREFIXES:
        raise ValueError(f"unknown key kind {kind!r}")
    if kind == "management" and limits is not None and limits != KeyLimits():
        raise LimitsInvalid({"form": "A management key cannot call models: it takes no limits."})
    columns = (limits or KeyLimits()).checked(known_models=known_models, now=now).columns()
    name = clean_name(name)
    if await repository.count_active(session, account_id) >= MAX_ACTIVE_KEYS:
        raise GatewayError(
            f"an account may have at most {MAX_ACTIVE_KEYS} active keys; revoke one first",
            code="too_many_keys",
        )
    issued = new_key(kind)
    row = await repository.insert(
        session, account_id, issued.key_hash, issued.last4, name, now, kind=kind, columns=columns
    )
    return row, issued


async def set_limits(
    session: AsyncSession,
    key: ApiKey,
    changes: Mapping[str, Any],
    *,
    known_models: Collection[str],
    now: float,
) -> None:
    """Change a model key's name and limits: `changes` maps `name` or a limit to its new value
    (None clears a limit); what is not named stays."""
    if key.revoked_at is not None:
        raise GatewayError("this key is revoked: its limits cannot change", code="key_revoked")
    values: dict[str, Any] = {}
    if "name" in changes:
        values["name"] = clean_name(str(changes["name"] or ""))
    limit_changes = {k: v for k, v in changes.items() if k != "name"}
    if limit_changes:
        if key.kind != "model":
            raise LimitsInvalid({"form": "A management key cannot call models: it has no limits."})
        updated = KeyLimits.of(key).changed(limit_changes)
        values.update(
            updated.checked(known_models=known_models, now=now, changed=limit_changes).columns()
        )
    if values:
        await repository.update_key(session, key.id, values)


async def revoke_key(session: AsyncSession, key_id_or_key: str, *, now: float) -> bool:
    """Revoke by key id (`key_...`) or by the key itself."""
    if is_well_formed(key_id_or_key):
        return await repository.revoke(
            session, key_id=None, key_hash=hash_key(key_id_or_key), now=now
        )
    return await repository.revoke(session, key_id=key_id_or_key, key_hash=None, now=now)


class ApiKeys:
    """The key use cases of one account at a time, each in its own transaction."""

    def __init__(
        self,
        db: Database,
        *,
        known_models: Collection[str],
        clock: Callable[[], float],
        on_change: Callable[[str], None] = lambda key_id: None,
        check_webhook: WebhookCheck = _no_webhooks,
        signing_key: bytes | None = None,
    ) -> None:
        self.db = db
        self.known_models = known_models
        self.clock = clock
        #: Called with a key's id once its change (limits, revocation) is committed.
        self.on_change = on_change
        self.check_webhook = check_webhook
        #: The fleet's secret, from which each key's webhook signing secret is derived.
        self.signing_key = signing_key

    async def _webhook(self, url: str | None) -> CheckedUrl | None:
        """The URL checked (None: no default), a refusal naming `webhook_url` otherwise."""
        if url is None or not url.strip():
            return None
        return await translated_async(
            lambda: self.check_webhook(url.strip()), InvalidRequestError, _webhook_refusal
        )

    async def list(self, account_id: str) -> list[KeyView]:
        """Every key of the account, newest first, revoked ones last."""
        async with self.db.read() as session:
            rows = await repository.list_for_account(session, account_id)
        now = self.clock()
        views = [view_of(row, now) for row in rows]
        views.sort(key=lambda v: (v.revoked_at is not None, -v.created_at))
        return views

    async def page(
        self,
        account_id: str,
        *,
        limit: int,
        after: KeyCursor | None = None,
        revoked: bool | None = None,
    ) -> KeyPage:
        """A page of the account's keys (see `paging`); `revoked`: only those, or only the
        others."""
        async with self.db.read() as session:
            rows = await repository.page_for_account(
                session,
                account_id,
                limit=limit + 1,
                after=after.as_tuple() if after else None,
                revoked=revoked,
            )
        now = self.clock()
        views = [view_of(row, now) for row in rows[:limit]]
        last = views[-1] if len(rows) > limit else None
        cursor = KeyCursor(last.revoked_at is not None, last.created_at, last.id) if last else None
        return KeyPage(views, cursor)

    async def _lock_open(self, session: AsyncSession, account_id: str) -> None:
        """First in a transaction that makes something for the account (a key, a webhook
        secret): lock the account (`lock_order`), so that a deletion, which locks it as its
        first step too, commits before this reads it or waits for this to commit; and refuse
        the account if it is closed (deleted meanwhile), as the credit hold refuses its keys."""
        await self.db.lock_accounts(session, account_id)
        if not await accounts.is_open(session, account_id):
            raise InvalidApiKey("the API key is not valid or has been revoked")

    async def get(self, account_id: str, key_id: str) -> KeyView:
        async with self.db.read() as session:
            row = await repository.get_for_account(session, account_id, key_id)
        if row is None:
            raise NotFound("no such key", param="id")
        return view_of(row, self.clock())

    async def create(
        self,
        account_id: str,
        *,
        name: str,
        limits: KeyLimits | None = None,
        kind: str = "model",
        webhook_url: str | None = None,
    ) -> CreatedKey:
        if webhook_url and kind != "model":
            raise _no_management_webhook()
        webhook = await self._webhook(webhook_url)
        now = self.clock()
        async with self.db.write() as session:
            await self._lock_open(session, account_id)
            # Rolled back with the key when it is refused: only keys made are counted.
            await throttle.take(session, account_id, now)
            row, issued = await issue_key(
                session,
                account_id,
                name=name,
                now=now,
                kind=kind,
                limits=limits,
                known_models=self.known_models,
            )
            if webhook is not None:
                await webhooks.set_default_url(session, row.id, webhook)
                await session.refresh(row)
            view = view_of(row, now)
        return CreatedKey(view, issued.plaintext)

    async def update(self, account_id: str, key_id: str, changes: Mapping[str, Any]) -> KeyView:
        """Change the key's name, limits (see `set_limits`) and default webhook URL
        (`webhook_url`: a URL, or None to have none; a 410 Gone's disabling ends with it)."""
        unknown = set(changes) - {"name", WEBHOOK_URL, *LIMIT_FIELDS}
        if unknown:
            raise GatewayError(f"not a key setting: {sorted(unknown)[0][:64]}", param="limits")
        others = {k: v for k, v in changes.items() if k != WEBHOOK_URL}
        new_webhook = WEBHOOK_URL in changes
        # Checked first, outside the transaction: the check resolves the URL's host.
        webhook = await self._webhook(changes[WEBHOOK_URL]) if new_webhook else None
        now = self.clock()
        async with self.db.write() as session:
            row = await repository.get_for_account(session, account_id, key_id)
            if row is None:
                raise NotFound("no such key", param="id")
            if new_webhook and row.kind != "model":
                raise _no_management_webhook()
            await set_limits(session, row, others, known_models=self.known_models, now=now)
            if new_webhook:
                await webhooks.set_default_url(session, key_id, webhook, account_id=account_id)
            await session.refresh(row)
            view = view_of(row, now)
        self.on_change(key_id)
        return view

    async def webhook_secret(self, account_id: str, key_id: str, *, rotate: bool = False) -> str:
        """The secret (`whsec_...`) that signs the key's webhooks, made on first use; `rotate`:
        a new one (the old one keeps signing beside it for `webhook_secret_overlap_seconds`).
        A revoked key's secret can be read (its last jobs may still announce their end), not
        renewed; a management key has none. None is made on an account closed meanwhile."""
        if self.signing_key is None:
            raise GatewayError("this gateway signs no webhooks here", param="id")
        async with self.db.write() as session:
            await self._lock_open(session, account_id)
            row = await repository.get_for_account(session, account_id, key_id)
            if row is None:
                raise NotFound("no such key", param="id")
            if row.kind != "model":
                raise _no_management_webhook()
            if rotate and row.revoked_at is not None:
                raise GatewayError(
                    "this key is revoked: its webhook secret cannot change", code="key_revoked"
                )
            secret = await webhooks.signing_secret(
                session, self.signing_key, key_id, now=self.clock(), rotate=rotate
            )
        assert secret is not None  # the row was there, in this transaction
        return secret

    async def revoke(self, account_id: str, key_id: str) -> KeyView:
        """Revoke the key (a key already revoked stays as it was)."""
        now = self.clock()
        async with self.db.write() as session:
            row = await repository.get_for_account(session, account_id, key_id)
            if row is None:
                raise NotFound("no such key", param="id")
            await repository.revoke(session, key_id=key_id, key_hash=None, now=now)
            await session.refresh(row)
            view = view_of(row, now)
        self.on_change(key_id)
        return view


def _no_management_webhook() -> GatewayError:
    return GatewayError(
        "A management key cannot call models: it has no webhooks.", param=WEBHOOK_URL
    )


def keys_service(rt: Runtime) -> ApiKeys:
    """The key use cases on this process's database, catalog, clock, authenticator, webhook
    rules and fleet secret."""
    fetcher = rt.webhook_fetcher
    return ApiKeys(
        rt.db,
        known_models=frozenset(rt.catalog.models),
        clock=rt.now,
        on_change=lambda key_id: rt.auth.changed(key_id=key_id),
        check_webhook=lambda url: webhooks.check_url(fetcher, url),
        signing_key=rt.fingerprint_secret,
    )
