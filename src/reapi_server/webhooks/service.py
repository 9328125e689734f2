"""A key's webhook settings: its default URL and its signing secret. For the CLI and the
dashboard; each function runs in the caller's transaction and never commits.

A URL is checked (`check_url`: http(s), public addresses only) before it is stored, outside any
transaction (the check resolves its host); `set_default_url` takes only a checked one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from reapi import InvalidRequestError
from reapi.core import AsyncFetcher

from . import repository
from .signing import derive_secret, new_salt

__all__ = ["MAX_URL_LENGTH", "CheckedUrl", "check_url", "set_default_url", "signing_secret"]

MAX_URL_LENGTH = 2048
PARAM = "webhook_url"


@dataclass(frozen=True, slots=True)
class CheckedUrl:
    """A webhook URL that passed `check_url` (at delivery, each attempt checks it again)."""

    url: str

    def __repr__(self) -> str:  # its query may be a receiver's token
        return "CheckedUrl(...)"


async def check_url(fetcher: AsyncFetcher, url: str) -> CheckedUrl:
    """The URL, once it is http(s) without credentials and its host resolves to public
    addresses only (or the networks `webhook_allow_networks` lists); an `InvalidRequestError`
    naming `webhook_url` (never the URL) otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequestError(
            f"{PARAM} must be at most {MAX_URL_LENGTH} characters",
            param=PARAM,
            code="string_above_max_length",
        )
    await fetcher.check(url, param=PARAM)
    return CheckedUrl(url)


async def set_default_url(
    session: AsyncSession,
    key_id: str,
    url: CheckedUrl | None,
    *,
    account_id: str | None = None,
) -> bool:
    """Set the key's default webhook URL (None: no default), enabling it again if a 410 Gone
    had disabled it. False when there is no such key (of `account_id`, when given)."""
    return await repository.set_default(
        session, key_id, url.url if url is not None else None, account_id=account_id
    )


async def signing_secret(
    session: AsyncSession,
    fleet_secret: bytes,
    key_id: str,
    *,
    now: float,
    rotate: bool = False,
    account_id: str | None = None,
) -> str | None:
    """The key's signing secret (`whsec_...`), made on first use; `rotate`: a new one (the old
    one keeps signing beside it for `webhook_secret_overlap_seconds`). None: no such key."""
    exists, salts = await repository.key_salts(session, key_id, account_id=account_id)
    if not exists:
        return None
    if rotate and salts is not None:
        await repository.rotate_salt(session, key_id, new_salt(), now)
    elif salts is None:
        await repository.set_salt_if_missing(session, key_id, new_salt())
    _, salts = await repository.key_salts(session, key_id)
    assert salts is not None
    return derive_secret(fleet_secret, key_id, salts.salt)
