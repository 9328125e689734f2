"""Admin → Billing (admins only, like every /admin page): the latest payments with a refund
form each (through Stripe; the credits come back as for any refund), and the stored Stripe
events with what came of each, and "Apply now" for one not applied yet. Both actions are
audited, and move money: they ask for a recent authentication first (sudo mode, `web.sudo`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ...audit import Actor
from ...billing.operator import (
    list_payments,
    parse_money,
    payment_currency,
    reapply_event,
    refund_payment,
    stored_events,
)
from ...billing.service import Billing
from ...errors import GatewayError
from ..context import web_of
from ..forms import field_errors, read_form
from ..guards import require_admin
from ..sudo import sudo_or_confirm
from ..templates import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

PAGE = "/admin/billing"
_PAYMENTS = 50
_EVENTS = 100
#: What came of an event, in words (`billing.events`: the outcome each change returns).
OUTCOMES = {
    "credited": "credited",
    "pending": "payment pending",
    "failed": "payment failed",
    "expired": "checkout expired",
    "refunded": "refund applied",
    "disputed": "dispute opened",
    "won": "dispute won",
    "lost": "dispute lost",
    "nothing": "no change needed",
    "by_checkout": "left to its checkout",
    "not_ours": "not one of ours",
    "account_deleted": "paid after the account was deleted: refunded",
    "amount_mismatch": "amount mismatch: not credited",
    "review": "paid, not its pack: held for review",
    "other_intent": "a second payment for one top-up: not credited",
    "ignored": "not acted on",
}
_DONE = {
    "refunded": "Refunded through Stripe. Its credits are taken back; the history shows it.",
    "applied": "The event is applied.",
    "waiting": "The event is still waiting for what it depends on: it is applied when that comes.",
    "done": "The event was applied already.",
    "ignored": "The event is of a type billing does not act on: marked ignored.",
}


def _billing(request: Request) -> Billing:
    return web_of(request).runtime.billing


async def _page(
    request: Request,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    failed_payment: str | None = None,
) -> Response:
    require_admin(request)
    billing = _billing(request)
    shown = request.query_params.get("events", "")
    shown = shown if shown in ("unhandled", "all") else "acted"
    payments = await list_payments(billing, limit=_PAYMENTS)
    events, unhandled = await stored_events(
        billing, limit=_EVENTS, unhandled_only=shown == "unhandled", ignored=shown == "all"
    )
    done = request.query_params.get("done", "")
    values: dict[str, Any] = {
        "title": "Billing",
        "enabled": billing.enabled,
        "payments": payments,
        "events": events,
        "unhandled": unhandled,
        "shown": shown,
        "outcomes": OUTCOMES,
        "errors": errors or {},
        "failed_payment": failed_payment,
        "notice": _DONE.get(done),
    }
    return render(request, "admin/billing.html", status=status, **values)


@router.get(PAGE)
async def billing_admin(request: Request) -> Response:
    return await _page(request)


@router.post(PAGE + "/payments/{payment_id}/refund")
async def refund(request: Request, payment_id: str) -> Response:
    actor = Actor.admin(require_admin(request).user.id)
    billing = _billing(request)
    form = await read_form(request)
    asked = await sudo_or_confirm(request, form.items(), back=PAGE, doing="refund a payment")
    if asked is not None:
        return asked
    refused: GatewayError | None = None
    try:
        typed = form.get("amount", "").strip()
        currency = await payment_currency(billing, payment_id)
        amount = parse_money(typed, currency) if typed and currency else None
        await refund_payment(
            billing,
            payment_id,
            amount=amount,
            take_back_spent=form.get("take_back_spent") == "yes",
            actor=actor,
        )
    except GatewayError as error:
        refused = error
    if refused is not None:
        errors = {f"amount-{payment_id}": field_errors(refused).popitem()[1]}
        return await _page(request, status=400, errors=errors, failed_payment=payment_id)
    return RedirectResponse(f"{PAGE}?done=refunded#payments", 303)


@router.post(PAGE + "/events/{event_id}/apply")
async def apply_event(request: Request, event_id: str) -> Response:
    actor = Actor.admin(require_admin(request).user.id)
    form = await read_form(request)
    asked = await sudo_or_confirm(request, form.items(), back=PAGE, doing="apply a Stripe event")
    if asked is not None:
        return asked
    try:
        applied = await reapply_event(_billing(request), event_id, actor)
    except GatewayError as error:
        return await _page(request, status=error.http_status, errors={"form": error.message})
    return RedirectResponse(f"{PAGE}?done={applied.state}#events", 303)
