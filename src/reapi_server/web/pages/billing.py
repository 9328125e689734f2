"""Dashboard → Billing: the balance, buying a credit pack through Stripe Checkout (verified
users only), the success and cancel pages Checkout returns to, automatic top-up (turning it on,
or changing it while on, is sudo mode: `web.sudo`), removing the saved card (which turns
automatic top-up off: like turning it off, it only takes a power away, so it asks nothing
more than the session and its CSRF token), redeeming a
promotion code (`pages.promo`), and the billing history (every payment, refund and dispute, with
invoices; CSV).

With billing off (no Stripe key, webhook secret or pack configured) the pages say so and offer
nothing to buy; promotion codes need no Stripe and are offered either way."""

from __future__ import annotations

import time
from typing import Any

import anyio
from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from ...accounts.export import to_csv
from ...accounts.service import account_of
from ...billing import views
from ...billing.auto_top_up import AutoTopUpSettings, configure
from ...billing.checkout import start_checkout
from ...billing.operator import parse_money
from ...billing.saved_card import remove_saved_card
from ...billing.service import Billing
from ...billing.settings import CreditPack, decimal_amount, format_money
from ...billing.throttles import success_wait_counters, take_all
from ...errors import GatewayError, RateLimited
from ...identity.service import CurrentSession
from ...models import Account, TopUp
from ..context import client_of, web_of
from ..forms import field_errors, read_form, retry_headers
from ..guards import require_session
from ..sudo import sudo_or_confirm
from ..templates import render
from . import promo

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

PAGE = promo.BILLING
_PAUSE_REASONS = {
    "authentication_required": "your bank asked to confirm the last automatic payment, which "
    "an automatic charge cannot do",
    "insufficient_funds": "your bank declined the last automatic payment for insufficient funds",
    "expired_card": "the saved card has expired",
    "refunded": "a payment was refunded (turn it on again when you want it)",
    "disputed": "a payment is disputed with your bank",
    "charge_refused": "the payment provider refused to charge the saved payment method (it may "
    "have been removed); save one again with your next purchase",
    "amount_mismatch": "the last automatic payment did not match its credit pack and is held "
    "for the operator to review",
}


def _billing(request: Request) -> Billing:
    return web_of(request).runtime.billing


async def _account(request: Request, current: CurrentSession) -> Account:
    async with web_of(request).db.read() as session:
        account = await account_of(session, current.user.id)
    if account is None:  # every user gets one at sign-up; an operator may have removed it
        raise GatewayError("this user has no account", code="no_account")
    return account


def _pack(pack: CreditPack) -> dict[str, Any]:
    return {
        "id": pack.id,
        "name": pack.name,
        "credits": f"{pack.credits:,}",
        "price": pack.price,
        "currency": pack.currency.upper(),
    }


def _packs_by_currency(billing: Billing) -> list[tuple[str, list[dict[str, Any]]]]:
    settings = billing.settings
    return [
        (currency.upper(), [_pack(p) for p in settings.packs if p.currency == currency])
        for currency in settings.currencies
    ]


def _auto_form(billing: Billing, state: views.BillingState) -> dict[str, str]:
    profile = state.profile
    packs = billing.settings.packs
    pack = billing.settings.pack(profile.auto_pack_id or "") if profile else None
    pack = pack or (packs[0] if packs else None)
    cap = profile.auto_monthly_cap if profile and profile.auto_monthly_cap else None
    return {
        "enabled": "yes" if profile and profile.auto_enabled else "",
        "threshold": str(profile.auto_threshold) if profile and profile.auto_threshold else "",
        "pack": pack.id if pack else "",
        "monthly_cap": decimal_amount(cap, pack.currency) if cap and pack else "",
    }


async def _page(
    request: Request,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    promo_errors: dict[str, str] | None = None,
    promo_typed: str = "",
    **values: Any,
) -> Response:
    current = require_session(request)
    billing = _billing(request)
    account = await _account(request, current)
    async with web_of(request).db.read() as session:
        state = await views.billing_state(session, account.id)
        recent = (await views.activity_of(session, account.id))[:5]
    profile = state.profile
    paused = profile.auto_paused_reason if profile is not None else None
    page: dict[str, Any] = {
        "enabled": billing.enabled,
        "verified": current.user.email_verified_at is not None,
        "balance": state.shown_balance,
        "debt": state.debt,
        "on_hold": state.on_hold,
        "currencies": _packs_by_currency(billing),
        "card": profile.card_label if profile is not None else None,
        "has_card": profile is not None and profile.payment_method_id is not None,
        "auto": _auto_form(billing, state),
        "auto_enabled": profile is not None and profile.auto_enabled,
        "paused": _PAUSE_REASONS.get(paused, "your bank declined the last automatic payment")
        if paused
        else None,
        "pack_choices": [_pack(p) for p in billing.settings.packs],
        "recent": recent,
        "errors": {**(errors or {}), **(promo_errors or {})},
        "nav_current": PAGE,
        **await promo.promo_section(request, current, errors=promo_errors, typed=promo_typed),
    }
    page.update(values)
    return render(request, "billing.html", status=status, headers=headers, **page)


@router.get(PAGE)
async def billing_page(request: Request) -> Response:
    return await _page(request)


@router.post(PAGE + "/checkout")
async def buy(request: Request) -> Response:
    current = require_session(request)
    billing = _billing(request)
    form = await read_form(request)
    if not billing.enabled:
        return await _page(request, status=409, errors={"form": "Billing is off."})
    if current.user.email_verified_at is None:
        message = "Verify your email address to buy credits."
        return await _page(request, status=403, errors={"form": message})
    account = await _account(request, current)
    try:
        started = await start_checkout(
            billing,
            account_id=account.id,
            email=current.user.email,
            pack_id=form.get("pack", ""),
            save_card=form.get("save_card") == "yes",
            address=client_of(request).address,
        )
    except GatewayError as error:
        return await _page(
            request,
            status=error.http_status,
            headers=retry_headers(error),
            errors=field_errors(error),
        )
    return RedirectResponse(started.url, status_code=303)


async def _top_up(request: Request) -> tuple[Billing, Account, str]:
    current = require_session(request)
    return (
        _billing(request),
        await _account(request, current),
        request.query_params.get("top_up", ""),
    )


async def _read_top_up(
    request: Request, account_id: str, top_up_id: str
) -> tuple[TopUp, views.BillingState]:
    async with web_of(request).db.read() as session:
        top_up = await views.top_up_of(session, account_id, top_up_id)
        state = await views.billing_state(session, account_id)
    if top_up is None:
        raise HTTPException(404)
    return top_up, state


@router.get(PAGE + "/success")
async def success(request: Request) -> Response:
    """Checkout sends the buyer here once paid; the credit comes with Stripe's webhook, which
    is waited for a few seconds (then the page says it is on its way, and refreshes). Each
    wait is counted (`billing.success_wait_limit`, per account and per address): past the
    limit the page answers at once with 429 and stops refreshing."""
    billing, account, top_up_id = await _top_up(request)
    top_up, state = await _read_top_up(request, account.id, top_up_id)
    stopped: RateLimited | None = None
    if top_up.status == "open" and billing.settings.success_wait_seconds > 0:
        try:
            await take_all(
                billing.db,
                success_wait_counters(billing.settings, account.id, client_of(request).address),
                billing.clock(),
                message="This page stopped checking for the payment.",
                code="too_many_waits",
            )
        except RateLimited as error:
            stopped = error
        deadline = time.monotonic() + billing.settings.success_wait_seconds
        while stopped is None and top_up.status == "open" and time.monotonic() < deadline:
            await anyio.sleep(0.25)
            top_up, state = await _read_top_up(request, account.id, top_up_id)
    outcome = top_up.status if top_up.status != "open" else "late"
    return render(
        request,
        "billing_result.html",
        status=429 if stopped is not None else 200,
        headers=retry_headers(stopped) if stopped is not None else None,
        title="Payment received" if top_up.status == "paid" else "Thank you",
        outcome="stopped" if stopped is not None else outcome,
        product=top_up.product,
        credits=f"{top_up.credits:,}",
        price=format_money(top_up.amount, top_up.currency),
        balance=state.shown_balance,
        nav_current=PAGE,
    )


@router.get(PAGE + "/cancel")
async def cancel(request: Request) -> Response:
    """Checkout sends the buyer here when they leave without paying; a top-up paid meanwhile
    (another tab, a bank debit) says so instead."""
    _, account, top_up_id = await _top_up(request)
    top_up, state = await _read_top_up(request, account.id, top_up_id)
    outcome = top_up.status if top_up.status != "open" else "cancelled"
    return render(
        request,
        "billing_result.html",
        title="Payment received" if outcome == "paid" else "Payment cancelled",
        outcome=outcome,
        product=top_up.product,
        credits=f"{top_up.credits:,}",
        price=format_money(top_up.amount, top_up.currency),
        balance=state.shown_balance,
        nav_current=PAGE,
    )


@router.post(PAGE + "/auto-top-up")
async def auto_top_up(request: Request) -> Response:
    current = require_session(request)
    billing = _billing(request)
    form = await read_form(request)
    account = await _account(request, current)
    entered = {key: form.get(key, "") for key in ("enabled", "threshold", "pack", "monthly_cap")}
    if entered["enabled"] == "yes":
        # It charges the saved card on its own, up to the cap: a stolen session must not set
        # a threshold that is always reached and a cap of millions. Turning it off asks nothing.
        doing = "charge your saved card automatically"
        asked = await sudo_or_confirm(request, form.items(), back=PAGE, doing=doing)
        if asked is not None:
            return asked
    errors: dict[str, str] = {}
    threshold = entered["threshold"].strip().replace(",", "")
    if not threshold.isdigit() or len(threshold) > 15:
        errors["threshold"] = "Enter a number of credits, such as 500."
    pack = billing.settings.pack(entered["pack"])
    cap = 0
    try:
        cap = parse_money(entered["monthly_cap"], pack.currency if pack else "eur")
    except GatewayError:
        errors["monthly_cap"] = "Enter an amount, such as 50.00."
    if not errors:
        try:
            await configure(
                billing,
                account.id,
                AutoTopUpSettings(
                    enabled=entered["enabled"] == "yes",
                    threshold=int(threshold),
                    pack_id=entered["pack"],
                    monthly_cap=cap,
                ),
            )
        except GatewayError as error:
            errors = field_errors(error)
    if errors:
        return await _page(request, status=400, errors=errors, auto=entered)
    done = "auto_top_up_saved" if entered["enabled"] == "yes" else "auto_top_up_off"
    return RedirectResponse(f"{PAGE}?done={done}#auto-top-up", status_code=303)


@router.post(PAGE + "/card/remove")
async def remove_card(request: Request) -> Response:
    current = require_session(request)
    account = await _account(request, current)
    try:
        removed = await remove_saved_card(_billing(request), account.id)
    except GatewayError as error:
        message = "Stripe could not be reached, so your card is still saved. Try again shortly."
        return await _page(
            request,
            status=error.http_status,
            headers=retry_headers(error),
            errors={"card": message},
        )
    done = "card_removed" if removed else "no_card"
    return RedirectResponse(f"{PAGE}?done={done}#auto-top-up", status_code=303)


@router.post(promo.REDEEM)
async def redeem_promo(request: Request) -> Response:
    current = require_session(request)
    form = await read_form(request)
    try:
        await promo.redeem(request, current, form)
    except GatewayError as error:
        # Every refusal here is about the code typed: shown beside its field.
        return await _page(
            request,
            status=error.http_status,
            headers=retry_headers(error),
            promo_errors={promo.FIELD: error.message},
            promo_typed=promo.typed_code(form),
        )
    return RedirectResponse(f"{PAGE}?done=promo_redeemed#promo", status_code=303)


@router.get(PAGE + "/history")
async def history(request: Request) -> Response:
    current = require_session(request)
    account = await _account(request, current)
    async with web_of(request).db.read() as session:
        activity = await views.activity_of(session, account.id)
        state = await views.billing_state(session, account.id)
    return render(
        request,
        "billing_history.html",
        activity=activity,
        balance=state.shown_balance,
        nav_current=PAGE,
    )


@router.get(PAGE + "/history.csv")
async def history_csv(request: Request) -> Response:
    current = require_session(request)
    account = await _account(request, current)
    async with web_of(request).db.read() as session:
        activity = await views.activity_of(session, account.id)
    body = to_csv([item.row() for item in activity], views.ACTIVITY_COLUMNS)
    site = "".join(c if c.isalnum() else "-" for c in web_of(request).settings.site_name.lower())
    day = time.strftime("%Y-%m-%d", time.gmtime(web_of(request).clock()))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="{site or "billing"}-billing-{day}.csv"'
        },
    )
