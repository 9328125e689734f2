"""Credit rules shared by the image and video workflows. Never commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from reapi._params import Shape
from reapi.catalog import ModelSpec

from ..errors import (
    AccountClosed,
    AccountInDispute,
    CreditLimitExceeded,
    GatewayError,
    InsufficientCredits,
)
from ..group_commit import Tx
from ..models import MAX_CREDITS, UsageRecord
from ..usage import repository as usage_rows
from . import repository

__all__ = ["grant", "hold_or_record_refusal", "in_dispute", "insufficient", "price_of"]


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
    usage: UsageRecord,
    amount: int,
    *,
    purpose: str,
    expires_at: float | None,
    now: float,
) -> str | GatewayError:
    """Hold `amount` for the request and write its pending usage row: the hold id. Or the
    refusal, returned (not raised: the op shares a group commit): a short balance or an
    account in a payment dispute, written as the request's usage row; or an account being
    deleted, which nothing is written for. The hold's own UPDATE decides; what stood in its
    way is read only once it refused."""
    hold_id = await repository.reserve(
        tx,
        usage.account_id,
        amount,
        purpose=purpose,
        request_id=usage.id,
        expires_at=expires_at,
        now=now,
    )
    # The row's status is set in both cases: a group commit may run this op a second time.
    if hold_id is not None:
        usage.status, usage.error_code = "pending", None
        await usage_rows.insert(tx, usage)
        return hold_id
    standing = await repository.standing_of(tx, usage.account_id)
    if standing.closed:
        return AccountClosed()
    refusal = in_dispute(standing) or insufficient(amount)
    usage.status, usage.error_code = "failed", refusal.code
    await usage_rows.insert(tx, usage)
    return refusal


def in_dispute(standing: repository.Standing) -> AccountInDispute | None:
    """The refusal of an account on hold for a chargeback, or owing credit since one."""
    if standing.on_hold is not None:
        return AccountInDispute(
            "a payment to this account is disputed with the card issuer; requests are refused"
            " until the dispute is resolved"
        )
    if standing.debt > 0:
        return AccountInDispute(
            f"this account owes {standing.debt} credits after a disputed payment; requests are"
            " refused until credits are bought to cover it"
        )
    return None


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


def insufficient(amount: int) -> InsufficientCredits:
    return InsufficientCredits(
        f"this request costs {amount} credits and the account's balance is lower",
    )
