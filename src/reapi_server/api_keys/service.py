"""Issuing and revoking keys. Never commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ..models import ApiKey
from . import repository
from .keys import IssuedKey, hash_key, is_well_formed, new_key

__all__ = ["issue_key", "revoke_key"]


async def issue_key(
    session: AsyncSession, account_id: str, *, name: str = "", now: float
) -> tuple[ApiKey, IssuedKey]:
    issued = new_key()
    row = await repository.insert(session, account_id, issued.key_hash, issued.last4, name, now)
    return row, issued


async def revoke_key(session: AsyncSession, key_id_or_key: str, *, now: float) -> bool:
    """Revoke by key id (`key_...`) or by the key itself."""
    if is_well_formed(key_id_or_key):
        return await repository.revoke(
            session, key_id=None, key_hash=hash_key(key_id_or_key), now=now
        )
    return await repository.revoke(session, key_id=key_id_or_key, key_hash=None, now=now)
