"""Promotion code rules: creating and withdrawing codes (for `backoffice.promo`, which audits
them), and redeeming one (the billing page).

A redemption is one transaction: the redemption row (UNIQUE code and account: a second one is
refused), one use taken from the code by a conditional UPDATE (never more than `max_uses`), the
credit through `credits` (ledger kind `promo`), and the account's low-balance alerts armed
again if the credit lifts the balance over them. Any refusal rolls all of it back."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..accounts import repository as accounts
from ..alerts import repository as alerts
from ..api_keys.limits import LimitsInvalid, parse_expiry
from ..credits import service as credits
from ..db import Database
from ..errors import AccountDisabled, RateLimited
from ..identity.errors import FormInvalid
from ..identity.throttle import MINUTE, Counter, Rule, Throttle
from ..ids import new_id
from ..models import MAX_CREDITS, PromoCode, PromoRedemption
from . import repository
from .codes import MAX_LENGTH, MIN_LENGTH, generate, normalise, well_formed
from .errors import CodeExists, PromoRefused

__all__ = [
    "NOTE_MAX",
    "REDEEM_FAILURES_PER_USER",
    "CodeTerms",
    "Redeemed",
    "codes",
    "create_code",
    "disable_code",
    "parse_terms",
    "redeem",
    "redeem_for_user",
    "redemptions_of",
]

#: The longest note an operator may keep with a code.
NOTE_MAX = 200
#: Wrong codes a person may type per hour: guessing codes is not a way to get credit.
REDEEM_FAILURES_PER_USER = Rule("promo_user", limit=10, window=60 * MINUTE)


_CODE_SHAPE = f"A code is {MIN_LENGTH} to {MAX_LENGTH} letters, digits, hyphens or underscores."


@dataclass(frozen=True, slots=True)
class CodeTerms:
    """What an operator asks for: the code's text (None: generate one), the credits each
    redemption gives, how many accounts may redeem it (None: any number, once each), when it
    expires (None: never), a note."""

    code: str | None
    credits: int
    max_uses: int | None = None
    expires_at: float | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Redeemed:
    code: str
    credits: int


def _count(text: str) -> int | None:
    """A whole number as typed ("10,000" too); None when it is not one."""
    cleaned = text.strip().replace(",", "").replace("_", "").replace(" ", "")
    if not (cleaned.isascii() and cleaned.isdigit()) or len(cleaned) > 16:
        return None
    return int(cleaned, 10)


def parse_terms(
    *, code: str, credits: str, max_uses: str = "", expires: str = "", note: str = ""
) -> CodeTerms:
    """A code's terms as typed in the admin form or on the command line: an empty code is
    generated, empty uses is no limit, an empty expiry never; an expiry is a date
    (`YYYY-MM-DD`: its first second, UTC) or an ISO 8601 date and time. `FormInvalid` names
    each field that cannot be read."""
    errors: dict[str, str] = {}
    if code.strip() and not well_formed(normalise(code)):
        errors["code"] = _CODE_SHAPE
    amount = _count(credits)
    if amount is None:
        errors["credits"] = "Enter a whole number of credits, like 500."
    uses = _count(max_uses) if max_uses.strip() else None
    if max_uses.strip() and uses is None:
        errors["max_uses"] = "Enter a whole number of uses, or leave it empty for no limit."
    expires_at: float | None = None
    if expires.strip():
        try:
            expires_at = parse_expiry(expires, "expires_at")
        except LimitsInvalid as error:
            errors["expires_at"] = error.message
    if errors:
        raise FormInvalid(errors)
    return CodeTerms(code.strip() or None, amount or 0, uses, expires_at, note)


def checked_terms(terms: CodeTerms, now: float) -> CodeTerms:
    """`terms` with the code normalised (or generated), or `FormInvalid` naming each field
    that is wrong."""
    errors: dict[str, str] = {}
    code = normalise(terms.code) if terms.code else generate()
    if not well_formed(code):
        errors["code"] = _CODE_SHAPE
    if not 1 <= terms.credits <= MAX_CREDITS:
        errors["credits"] = f"Give between 1 and {MAX_CREDITS:,} credits."
    if terms.max_uses is not None and not 1 <= terms.max_uses <= 2**31 - 1:
        errors["max_uses"] = "Allow 1 use or more, or leave it empty for no limit."
    if terms.expires_at is not None and terms.expires_at <= now:
        errors["expires_at"] = "The expiry must be in the future."
    note = terms.note.strip()
    if len(note) > NOTE_MAX or not note.isprintable():
        errors["note"] = f"The note must be one line of at most {NOTE_MAX} characters."
    if errors:
        raise FormInvalid(errors)
    return CodeTerms(code, terms.credits, terms.max_uses, terms.expires_at, note)


async def create_code(
    session: AsyncSession, terms: CodeTerms, *, created_by: str | None, now: float
) -> PromoCode:
    terms = checked_terms(terms, now)
    assert terms.code is not None
    code = PromoCode(
        id=new_id("promo"),
        code=terms.code,
        credits=terms.credits,
        max_uses=terms.max_uses,
        expires_at=terms.expires_at,
        note=terms.note,
        created_at=now,
        created_by=created_by,
    )
    if not await repository.add_code(session, code):
        raise CodeExists()
    found = await repository.get(session, code.id)
    assert found is not None
    return found


async def codes(session: AsyncSession, *, limit: int) -> list[PromoCode]:
    """Every code, the newest first (the admin page, the command line)."""
    return await repository.all_codes(session, limit=limit)


async def redemptions_of(
    session: AsyncSession, account_id: str
) -> list[tuple[PromoRedemption, str]]:
    """(redemption, the code's text) of an account, the newest first."""
    return await repository.redemptions_of(session, account_id)


async def disable_code(session: AsyncSession, code_id: str, now: float) -> bool:
    """Withdraw a code: refused from now on. False when it was withdrawn already."""
    return await repository.set_disabled(session, code_id, now)


def _why_refused(code: PromoCode, now: float) -> PromoRefused:
    """The same refusal whatever the reason (`PromoRefused`); the reason is kept on it."""
    if code.disabled_at is not None:
        return PromoRefused.not_redeemable("withdrawn")
    if code.expires_at is not None and code.expires_at <= now:
        return PromoRefused.not_redeemable("expired")
    return PromoRefused.not_redeemable("used_up")


async def redeem(
    db: Database, *, account_id: str, user_id: str | None, text: str, now: float
) -> Redeemed:
    """Redeem the code typed as `text` for the account, or `PromoRefused` saying why not
    (nothing written then)."""
    typed = normalise(text)
    if not well_formed(typed):  # no lookup for what cannot be a code
        raise PromoRefused.not_redeemable("unknown")
    async with db.write() as session:
        # The account first, then the code's row (`lock_order`): requests lock accounts only.
        await db.lock_accounts(session, account_id)
        account = await accounts.get(session, account_id)
        if account is None or account.disabled_at is not None:
            raise AccountDisabled("This account is disabled: it cannot redeem promotion codes.")
        code = await repository.by_code(session, typed)
        if code is None:
            raise PromoRefused.not_redeemable("unknown")
        if code.disabled_at is not None or (code.expires_at is not None and code.expires_at <= now):
            raise _why_refused(code, now)
        redemption = PromoRedemption(
            id=new_id("redeem"),
            code_id=code.id,
            account_id=account_id,
            user_id=user_id,
            credits=code.credits,
            created_at=now,
        )
        if not await repository.claim_redemption(session, redemption):
            raise PromoRefused.already()
        if not await repository.take_use(session, code.id, now):
            # Someone took the last use (or withdrew it) since it was read: say which.
            found = await repository.get(session, code.id)
            assert found is not None
            raise _why_refused(found, now)
        await credits.grant(session, account_id, code.credits, now, kind="promo")
        await alerts.rearm_balances(session, account_id)
        return Redeemed(code.code, code.credits)


async def redeem_for_user(
    db: Database, *, account_id: str, user_id: str, text: str, now: float
) -> Redeemed:
    """`redeem` for a person on the billing page: after `REDEEM_FAILURES_PER_USER` refusals in
    an hour, they wait (429) before trying again."""
    counter = Counter(REDEEM_FAILURES_PER_USER, f"{REDEEM_FAILURES_PER_USER.name}:{user_id}")
    # Counted before it is tried (a burst of guesses at once cannot all pass a check made
    # before any refusal was counted), given back when it was not a refusal.
    async with db.write() as session:
        taken = await Throttle.take(session, counter, now)
        wait = None if taken else await Throttle.retry_after(session, [counter], now)
    if not taken:
        raise RateLimited(
            "Too many promotion codes were refused. Try again later.",
            code="too_many_attempts",
            param="code",
            retry_after=wait or REDEEM_FAILURES_PER_USER.window,
        )
    try:
        redeemed = await redeem(db, account_id=account_id, user_id=user_id, text=text, now=now)
    except PromoRefused as refused:
        failure = refused
    else:
        async with db.write() as session:
            await Throttle.give_back(session, counter)
        return redeemed
    raise failure
