"""All SQL of sign-in with a provider: linked identities and the requests under way. Nothing
here commits; the caller's unit of work does."""

from __future__ import annotations

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..ids import new_id
from ..models import OAuthIdentity, OAuthRequest

__all__ = [
    "count_identities",
    "delete_expired_requests",
    "delete_identity",
    "delete_request",
    "delete_requests_of_browser",
    "find_identity",
    "find_request",
    "identity_of_user",
    "insert_identity",
    "insert_request",
    "latest_request_of_browser",
    "list_identities",
    "requests_of_user",
]


def _changed(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


# -- identities ----------------------------------------------------------------------------------


async def find_identity(session: AsyncSession, provider: str, subject: str) -> OAuthIdentity | None:
    result = await session.execute(
        select(OAuthIdentity).where(
            OAuthIdentity.provider == provider, OAuthIdentity.subject == subject
        )
    )
    return result.scalar_one_or_none()


async def identity_of_user(
    session: AsyncSession, user_id: str, provider: str
) -> OAuthIdentity | None:
    result = await session.execute(
        select(OAuthIdentity).where(
            OAuthIdentity.user_id == user_id, OAuthIdentity.provider == provider
        )
    )
    return result.scalar_one_or_none()


async def list_identities(session: AsyncSession, user_id: str) -> list[OAuthIdentity]:
    result = await session.execute(
        select(OAuthIdentity)
        .where(OAuthIdentity.user_id == user_id)
        .order_by(OAuthIdentity.created_at, OAuthIdentity.provider)
    )
    return list(result.scalars())


async def count_identities(session: AsyncSession, user_id: str) -> int:
    result = await session.execute(
        select(func.count()).select_from(OAuthIdentity).where(OAuthIdentity.user_id == user_id)
    )
    return int(result.scalar_one())


async def insert_identity(
    session: AsyncSession,
    *,
    user_id: str,
    provider: str,
    subject: str,
    email: str | None,
    now: float,
) -> OAuthIdentity:
    row = OAuthIdentity(
        id=new_id("oid"),
        provider=provider,
        subject=subject,
        email=email,
        user_id=user_id,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def delete_identity(session: AsyncSession, user_id: str, identity_id: str) -> bool:
    """Delete one of the user's identities (only theirs)."""
    result = await session.execute(
        delete(OAuthIdentity).where(
            OAuthIdentity.id == identity_id, OAuthIdentity.user_id == user_id
        )
    )
    return _changed(result) == 1


# -- requests under way --------------------------------------------------------------------------


async def insert_request(session: AsyncSession, row: OAuthRequest) -> None:
    session.add(row)
    await session.flush()


async def find_request(session: AsyncSession, key_hash: str) -> OAuthRequest | None:
    return await session.get(OAuthRequest, key_hash, populate_existing=True)


async def requests_of_user(session: AsyncSession, user_id: str) -> list[OAuthRequest]:
    """The links and sign-ins again this signed-in user started and did not finish."""
    result = await session.execute(
        select(OAuthRequest)
        .where(OAuthRequest.user_id == user_id)
        .order_by(OAuthRequest.created_at, OAuthRequest.key_hash)
    )
    return list(result.scalars())


async def delete_request(session: AsyncSession, key_hash: str, browser_hash: str) -> bool:
    """Use the request up, once: of two concurrent callbacks, one gets True."""
    result = await session.execute(
        delete(OAuthRequest).where(
            OAuthRequest.key_hash == key_hash, OAuthRequest.browser_hash == browser_hash
        )
    )
    return _changed(result) == 1


async def latest_request_of_browser(
    session: AsyncSession, browser_hash: str, purpose: str, now: float
) -> OAuthRequest | None:
    result = await session.execute(
        select(OAuthRequest)
        .where(
            OAuthRequest.browser_hash == browser_hash,
            OAuthRequest.purpose == purpose,
            OAuthRequest.expires_at > now,
        )
        .order_by(OAuthRequest.created_at.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def delete_requests_of_browser(session: AsyncSession, browser_hash: str, purpose: str) -> int:
    result = await session.execute(
        delete(OAuthRequest).where(
            OAuthRequest.browser_hash == browser_hash, OAuthRequest.purpose == purpose
        )
    )
    return _changed(result)


async def delete_expired_requests(session: AsyncSession, now: float) -> int:
    return _changed(
        await session.execute(delete(OAuthRequest).where(OAuthRequest.expires_at <= now))
    )
