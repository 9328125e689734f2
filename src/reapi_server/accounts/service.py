"""Rules about accounts (used by the CLI today, the dashboard later). Never commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ..credits.service import grant
from ..errors import GatewayError
from ..models import Account
from . import repository

__all__ = ["create_account", "require_account"]


def _normalise(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise GatewayError("that is not an email address", param="email", code="invalid_email")
    return email


async def create_account(
    session: AsyncSession, email: str, *, credits_granted: int, now: float
) -> Account:
    email = _normalise(email)
    if await repository.find_by_email(session, email) is not None:
        raise GatewayError("an account with this email exists", param="email", code="exists")
    account = await repository.insert(session, email, now)
    if credits_granted:
        await grant(session, account.id, credits_granted, now)
    return account


async def require_account(session: AsyncSession, email: str) -> Account:
    account = await repository.find_by_email(session, _normalise(email))
    if account is None:
        raise GatewayError("no account with this email", param="email", code="not_found")
    return account
