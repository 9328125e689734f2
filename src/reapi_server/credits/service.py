"""Credit rules shared by the image and video workflows. Never commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from reapi._params import Shape
from reapi.catalog import ModelSpec

from ..errors import InsufficientCredits
from . import repository

__all__ = ["price_of", "reserve_or_refuse"]


def price_of(spec: ModelSpec, shape: Shape, *, images: int = 1) -> int:
    """Credits for one request as asked, from the server's catalog (never from the client)."""
    price = spec.price
    if price.unit == "image":
        units = images
    elif price.unit == "second":
        units = shape.seconds or 1
    else:
        units = 1
    return price.cost(units=units, resolution=shape.resolution)


async def reserve_or_refuse(
    session: AsyncSession,
    account_id: str,
    amount: int,
    *,
    purpose: str,
    request_id: str,
    expires_at: float | None,
    now: float,
) -> str:
    hold_id = await repository.reserve(
        session,
        account_id,
        amount,
        purpose=purpose,
        request_id=request_id,
        expires_at=expires_at,
        now=now,
    )
    if hold_id is None:
        raise InsufficientCredits(
            f"this request costs {amount} credits and the account's balance is lower",
        )
    return hold_id
