"""Credit rules shared by the image and video workflows. Never commits."""

from __future__ import annotations

from reapi._params import Shape
from reapi.catalog import ModelSpec

from ..errors import InsufficientCredits
from ..group_commit import Tx
from ..models import UsageRecord
from ..usage import repository as usage_rows
from . import repository

__all__ = ["hold_or_record_refusal", "insufficient", "price_of"]


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


def insufficient(amount: int) -> InsufficientCredits:
    return InsufficientCredits(
        f"this request costs {amount} credits and the account's balance is lower",
    )
