"""Redeeming a promotion code: the "Promotion code" section (`_promo_redeem.html`), which the
billing page includes with the values of `promo_section`, and its own page
(/dashboard/billing/promo) showing the same section and the codes the account redeemed.

The form posts to /dashboard/billing/promo with the page's CSRF token; a redemption goes back
to the page the form was on (`?done=promo_redeemed#promo`), a refusal is shown beside the field
on this page."""

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
from ..forms import read_form, retry_headers
from ..guards import require_session
from ..templates import render

__all__ = ["BILLING", "PAGE", "promo_section", "router"]

router = APIRouter(include_in_schema=False)

PAGE = "/dashboard/billing/promo"
BILLING = "/dashboard/billing"
#: The pages the section is on, where a redemption goes back to.
_BACK = (BILLING, PAGE)
FIELD = "promo_code"


async def promo_section(
    request: Request,
    current: CurrentSession,
    *,
    errors: dict[str, str] | None = None,
    typed: str = "",
) -> dict[str, Any]:
    """The values `_promo_redeem.html` reads, for the page at `request`'s path."""
    web = web_of(request)
    async with web.db.read() as session:
        account = await account_of(session, current.user.id)
        redeemed = await redemptions_of(session, account.id) if account else []
    return {
        "promo_verified": current.user.email_verified_at is not None,
        "promo_errors": errors or {},
        "promo_typed": typed,
        "promo_back": request.url.path if request.url.path in _BACK else PAGE,
        "promo_redemptions": [
            {"code": code, "credits": row.credits, "at": row.created_at} for row, code in redeemed
        ],
    }


async def _page(
    request: Request,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    typed: str = "",
) -> Response:
    current = require_session(request)
    values = await promo_section(request, current, errors=errors, typed=typed)
    return render(
        request,
        "promo.html",
        status=status,
        headers=headers,
        title="Promotion code",
        errors=errors or {},
        **values,
    )


@router.get(PAGE)
async def promo_page(request: Request) -> Response:
    return await _page(request)


@router.post(PAGE)
async def redeem(request: Request) -> Response:
    current = require_session(request)
    web = web_of(request)
    form = await read_form(request)
    back = form.get("back", PAGE)
    typed = normalise(form.get(FIELD, ""))[:MAX_LENGTH]
    try:
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
    except GatewayError as error:
        # Every refusal here is about the code typed: shown beside its field.
        errors = {FIELD: error.message}
        return await _page(
            request,
            status=error.http_status,
            headers=retry_headers(error),
            errors=errors,
            typed=typed,
        )
    target = back if back in _BACK else PAGE
    return RedirectResponse(f"{target}?done=promo_redeemed#promo", 303)
