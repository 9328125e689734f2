"""Redeeming a promotion code: the "Promotion code" section of the billing page
(`_promo_redeem.html`, filled from `promo_section`) and what its form asks for.

The form posts to /dashboard/billing/promo (`REDEEM`, a route of `pages.billing`, which shows
a refusal on the billing page beside the field); a redemption goes back to the billing page
(`?done=promo_redeemed#promo`). Promotion codes need no Stripe: the section is there with
billing off too. A person who opens the form's address lands on the section."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ...accounts.service import account_of
from ...errors import GatewayError
from ...identity.service import CurrentSession, require_verified
from ...promo.codes import MAX_LENGTH, normalise
from ...promo.service import redeem_for_user, redemptions_of
from ..context import web_of
from ..guards import require_session

__all__ = ["BILLING", "FIELD", "REDEEM", "promo_section", "redeem", "router", "typed_code"]

router = APIRouter(include_in_schema=False)

BILLING = "/dashboard/billing"
REDEEM = BILLING + "/promo"
FIELD = "promo_code"


async def promo_section(
    request: Request,
    current: CurrentSession,
    *,
    errors: dict[str, str] | None = None,
    typed: str = "",
) -> dict[str, Any]:
    """The values `_promo_redeem.html` reads."""
    web = web_of(request)
    async with web.db.read() as session:
        account = await account_of(session, current.user.id)
        redeemed = await redemptions_of(session, account.id) if account else []
    return {
        "promo_verified": current.user.email_verified_at is not None,
        "promo_errors": errors or {},
        "promo_typed": typed,
        "promo_redemptions": [
            {"code": code, "credits": row.credits, "at": row.created_at} for row, code in redeemed
        ],
    }


def typed_code(form: dict[str, str]) -> str:
    """What was typed, as the field shows it again after a refusal (normalised, bounded)."""
    return normalise(form.get(FIELD, ""))[:MAX_LENGTH]


async def redeem(request: Request, current: CurrentSession, form: dict[str, str]) -> None:
    """Redeem the code in `form` for the signed-in person's account; a refusal raises a
    `GatewayError` about the code typed."""
    web = web_of(request)
    require_verified(current.user)
    async with web.db.read() as session:
        account = await account_of(session, current.user.id)
    if account is None:  # every user gets one at sign-up; an operator may have removed it
        raise GatewayError("this user has no account", code="no_account")
    await redeem_for_user(
        web.db,
        account_id=account.id,
        user_id=current.user.id,
        text=form.get(FIELD, ""),
        now=web.clock(),
    )


@router.get(REDEEM)
async def section(request: Request) -> Response:
    require_session(request)
    return RedirectResponse(f"{BILLING}#promo", 303)
