"""One-time tokens sent by mail: 256 random bits, stored as SHA-256, bound to a purpose and to
the address they were sent to, single use, expiring. A GET only looks (`peek`): mail scanners
that follow links do not burn them; the POST that acts uses them up (`consume`)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..models import UserToken
from . import repository

__all__ = [
    "CHANGE_EMAIL",
    "RESET_PASSWORD",
    "VERIFY_EMAIL",
    "Purpose",
    "consume",
    "issue",
    "peek",
]

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Purpose:
    name: str
    ttl: float


VERIFY_EMAIL = Purpose("verify_email", ttl=24 * HOUR)
RESET_PASSWORD = Purpose("reset_password", ttl=1 * HOUR)
#: Bound to the NEW address: using it proves that address and moves the account to it.
CHANGE_EMAIL = Purpose("change_email", ttl=24 * HOUR)

#: `secrets.token_urlsafe(32)`: 43 characters of the URL-safe alphabet.
_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


def _hash(token: str) -> str | None:
    if _SHAPE.fullmatch(token) is None:  # tampered or truncated: no need to ask the database
        return None
    return hashlib.sha256(token.encode()).hexdigest()


async def issue(
    session: AsyncSession, *, user_id: str, email: str, purpose: Purpose, now: float
) -> str:
    """A new token (the only copy of its plaintext); earlier unused ones of the same purpose
    stop working, so only the latest link in the user's mailbox does."""
    await repository.delete_unused_tokens(session, user_id, purpose.name)
    token = secrets.token_urlsafe(32)
    await repository.insert_token(
        session,
        token_hash=hashlib.sha256(token.encode()).hexdigest(),
        user_id=user_id,
        purpose=purpose.name,
        email=email,
        now=now,
        expires_at=now + purpose.ttl,
    )
    return token


async def peek(session: AsyncSession, token: str, purpose: Purpose, now: float) -> UserToken | None:
    token_hash = _hash(token)
    if token_hash is None:
        return None
    return await repository.find_token(session, token_hash, purpose.name, now)


async def consume(
    session: AsyncSession, token: str, purpose: Purpose, now: float
) -> UserToken | None:
    token_hash = _hash(token)
    if token_hash is None:
        return None
    return await repository.consume_token(session, token_hash, purpose.name, now)
