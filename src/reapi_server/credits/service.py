"""Credit rules shared by the image and video workflows. Never commits."""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncSession

from reapi.catalog import ModelSpec
from reapi.core import Shape

from ..api_keys.periods import next_reset
from ..errors import (
    AccountClosed,
    AccountDisabled,
    AccountInDispute,
    AccountRefundPending,
    CreditLimitExceeded,
    GatewayError,
    InsufficientCredits,
    InvalidApiKey,
    KeyExpired,
    KeySpendLimitReached,
)
from ..group_commit import Tx
from ..models import MAX_CREDITS
from ..usage import repository as usage_rows
from ..usage.row import UsageRow
from . import repository
from .movements import REFUND_HOLD
from .repository import KeySpend, Refusal

__all__ = [
    "adjust",
    "balance_of",
    "grant",
    "hold_or_record_refusal",
    "insufficient",
    "price_of",
    "refusal_error",
]

# Reads the pages and the APIs share, as they are: (balance, reserved) of an account.
balance_of = repository.balance_of


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
    key: KeySpend | None = None,
) -> str | GatewayError:
    """Hold `amount` for the request (counted against `key`) and write its pending usage row;
    or, when refused (the balance, the key's limit, expiry or revocation, a disabled account),
    write the row as refused instead. One transaction either way: the hold id, or the error to
    answer with (returned, not raised: the op shares a group commit). For an account that is
    gone or being deleted nothing is written."""
    # The row's status is set either way: a group commit may run this op a second time.
    usage.status, usage.error_code = "pending", None
    hold_id = await repository.reserve(
        tx,
        usage.account_id,
        amount,
        purpose=purpose,
        request_id=usage.id,
        expires_at=expires_at,
        now=now,
        key=key,
        usage=usage,  # written with the hold
    )
    if hold_id is not None:
        return hold_id
    found = await repository.why_refused(tx, usage.account_id, key)
    if found is None or found.account_closed:
        # Gone or being deleted: nothing more is written about it (its rows are being removed).
        return AccountClosed()
    refusal = refusal_error(found, amount, now)
    usage.status, usage.error_code = "failed", refusal.code
    await usage_rows.insert(tx, usage)
    return refusal


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def refusal_error(found: Refusal | None, amount: int, now: float) -> GatewayError:
    """The answer to a refused hold, most fundamental reason first."""
    if found is None:
        return InvalidApiKey("the API key is not valid or has been revoked")
    if found.account_disabled:
        return AccountDisabled("this account is disabled; contact the operator of this gateway")
    if found.on_hold == REFUND_HOLD:
        return AccountRefundPending(
            "a refund to this account is being applied once its running requests end; new"
            " requests are refused until then (minutes at most)"
        )
    if found.on_hold is not None:
        return AccountInDispute(
            "a payment to this account is disputed with the card issuer; requests are refused"
            " until the dispute is resolved"
        )
    if found.debt > 0:
        return AccountInDispute(
            f"this account owes {found.debt} credits after a disputed payment; requests are"
            " refused until credits are bought to cover it"
        )
    if found.key_unusable:
        return InvalidApiKey("the API key is not valid or has been revoked")
    if found.key_expires_at is not None and found.key_expires_at <= now:
        return KeyExpired(f"this API key expired at {_when(found.key_expires_at)}")
    limit = found.spend_limit
    if limit is not None and found.period_spend + amount > limit:
        reset = next_reset(found.spend_period, now)
        when = f"; it resets at {_when(reset)}" if reset is not None else ""
        per = "" if found.spend_period == "never" else f" per {_PER[found.spend_period]}"
        return KeySpendLimitReached(
            f"this request costs {amount} credits and this key has {found.period_spend} of "
            f"its {limit} credits{per} spent or held{when}"
        )
    return insufficient(amount, found.balance)


_PER = {"daily": "day", "weekly": "week", "monthly": "month"}


async def grant(
    session: AsyncSession, account_id: str, amount: int, now: float, *, kind: str = "grant"
) -> None:
    """Add credit to an account (ledger kind `kind`: an operator's `grant`, a `promo` code),
    within `MAX_CREDITS` (per grant, and for the account's balance and held credit together);
    anything else is refused and nothing is written."""
    if amount <= 0:
        raise ValueError("a grant must be positive")
    if amount > MAX_CREDITS or not await repository.grant(
        session, account_id, amount, now, kind=kind
    ):
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


def insufficient(amount: int, available: int) -> InsufficientCredits:
    """Where to get more is added where the answer is written (`json_api.errors`): it depends
    on the gateway's address and whether it sells credits."""
    return InsufficientCredits(
        f"this request costs {amount:,} credits and the account has {max(available, 0):,}"
        " available (credits held by running requests are not)",
    )
