"""Rules about accounts (the CLI, sign-up, the pages). Never commits.

A person (`identity`'s user) owns one account today, made with the user at sign-up or by an
operator (`reapi-server accounts create`); memberships carry a role so that teams can come
later without touching the money tables."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ..credits.service import grant
from ..errors import GatewayError
from ..identity import repository as users
from ..identity.emails import normalise_email
from ..models import Account
from . import repository

__all__ = ["account_of", "create_account", "open_account", "owned_account_id", "require_account"]


async def open_account(
    session: AsyncSession, user_id: str, *, credits_granted: int = 0, now: float
) -> Account:
    """A new account owned by `user_id`."""
    account = await repository.insert(session, now)
    await repository.add_member(
        session, user_id=user_id, account_id=account.id, role="owner", now=now
    )
    if credits_granted:
        await grant(session, account.id, credits_granted, now)
    return account


async def create_account(
    session: AsyncSession, email: str, *, credits_granted: int, now: float
) -> Account:
    """An operator's account: a user with this email (no password yet: "reset password"
    sets one, and proves the address) owning a new account."""
    email = normalise_email(email)
    if await users.find_user_by_email(session, email) is not None:
        raise GatewayError("an account with this email exists", param="email", code="exists")
    user = await users.insert_user(session, email=email, password_hash=None, now=now)
    return await open_account(session, user.id, credits_granted=credits_granted, now=now)


async def require_account(session: AsyncSession, email: str) -> Account:
    account = await repository.find_owned_by_email(session, normalise_email(email))
    if account is None:
        raise GatewayError("no account with this email", param="email", code="not_found")
    return account


async def owned_account_id(session: AsyncSession, user_id: str) -> str | None:
    """The id of the account `user_id` owns (the first, should there ever be several): one
    query, for pages that need only the id."""
    owned = await repository.owned_account_ids(session, user_id)
    return owned[0] if owned else None


async def account_of(session: AsyncSession, user_id: str) -> Account | None:
    """The account `user_id` owns (the first, should there ever be several)."""
    owned = await repository.owned_account_ids(session, user_id)
    return await repository.get(session, owned[0]) if owned else None
