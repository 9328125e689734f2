"""Credit rules shared by the image and video workflows. Never commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from reapi._params import Shape
from reapi.catalog import ModelSpec

from ..errors import CreditLimitExceeded, GatewayError, InsufficientCredits
from ..group_commit import Tx
from ..models import MAX_CREDITS
from ..usage import repository as usage_rows
from ..usage.service import UsageRow
from . import repository

__all__ = ["adjust", "grant", "hold_or_record_refusal", "insufficient", "price_of"]


def price_of(spec: ModelSpec, shape: Shape, *, images: int = 1, input_images: int = 0) -> int:
    """Credits for one request as asked, from the server's catalog (never from the client).
    `images` counts outputs; `input_images` the images an edit sends (billed by some makers)."""
    price = spec.price
    if price.unit == "image":
        units = images
    elif price.unit == "second":
        units = shape.seconds or 1
    else:
        units = 1
    return price.cost(units=units, resolution=shape.resolution, input_images=input_images)


async def hold_or_record_refusal(
    tx: Tx,
    usage: UsageRow,
    amount: int,
    *,
    purpose: str,
    expires_at: float | None,
    now: float,
) -> str | None:
    """Hold `amount` for the request and write its pending usage row; or, when the balance is
    short, write the row as refused instead. One transaction either way: the hold id, or None."""
    hold_id = await repository.reserve(
        tx,
        usage.account_id,
        amount,
        purpose=purpose,
        request_id=usage.id,
        expires_at=expires_at,
        now=now,
    )
    # Set in both cases: a group commit may run this op a second time (see group_commit).
    usage.status, usage.error_code = (
        ("pending", None) if hold_id is not None else ("failed", InsufficientCredits.default_code)
    )
    await usage_rows.insert(tx, usage)
    return hold_id


async def grant(session: AsyncSession, account_id: str, amount: int, now: float) -> None:
    """Add credit to an account, within `MAX_CREDITS` (per grant, and for the account's
    balance and held credit together); anything else is refused and nothing is written."""
    if amount <= 0:
        raise ValueError("a grant must be positive")
    if amount > MAX_CREDITS or not await repository.grant(session, account_id, amount, now):
        raise CreditLimitExceeded(
            f"an account may hold at most {MAX_CREDITS:,} credits; this grant would exceed that",
            param="credits",
        )


async def adjust(session: AsyncSession, account_id: str, amount: int, now: float) -> None:
    """An operator's correction of the balance, up or down (ledger kind `adjustment`): never
    below 0, never past `MAX_CREDITS`; anything else is refused and nothing is written."""
    if amount == 0:
        raise GatewayError("an adjustment of 0 credits changes nothing", param="amount")
    if abs(amount) > MAX_CREDITS or not await repository.adjust(session, account_id, amount, now):
        if amount < 0:
            raise GatewayError(
                "the balance is lower than this amount: an adjustment cannot make it negative",
                param="amount",
                code="balance_too_low",
            )
        raise CreditLimitExceeded(
            f"an account may hold at most {MAX_CREDITS:,} credits; this adjustment would exceed"
            " that",
            param="amount",
        )


def insufficient(amount: int) -> InsufficientCredits:
    return InsufficientCredits(
        f"this request costs {amount} credits and the account's balance is lower",
    )
