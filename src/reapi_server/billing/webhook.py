"""`POST /billing/stripe/webhook`: Stripe's deliveries, on the API side of the gateway (no
cookies, no CSRF token: the signature is the proof).

- no webhook secret configured: 404, as if the endpoint did not exist (nothing unsigned is
  ever read, let alone credited);
- a missing, wrong or stale signature, or a body that is not an event: 400;
- stored and applied, or stored and waiting for what it depends on, or not a type we handle:
  200 (the retry loop applies a waiting one);
- stored but not applied because of an error (Stripe or the database unreachable): a 5xx
  (502 for Stripe), so Stripe delivers it again too.

Nothing of the body is logged or kept but the event's id, type and object id.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..errors import NotFound, PayloadTooLarge
from ..json_api.errors import error_response
from .service import MAX_EVENT_BYTES, BadEvent, Billing
from .signatures import BadSignature

__all__ = ["WEBHOOK_PATH", "router"]

log = logging.getLogger("reapi_server.billing")

WEBHOOK_PATH = "/billing/stripe/webhook"

router = APIRouter(include_in_schema=False)


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_EVENT_BYTES:
        raise PayloadTooLarge("a Stripe event is not this large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_EVENT_BYTES:
            raise PayloadTooLarge("a Stripe event is not this large")
    return bytes(body)


@router.post(WEBHOOK_PATH)
async def stripe_webhook(request: Request) -> Response:
    billing: Billing = request.app.state.runtime.billing
    if not billing.webhook_enabled:
        raise NotFound("no such endpoint: billing is not configured on this gateway")
    body = await _body(request)
    refusal: str | None = None
    try:
        applied = await billing.receive(body, request.headers.get("stripe-signature"))
    except (BadSignature, BadEvent) as error:
        refusal = str(error)
    if refusal is not None:
        log.warning("stripe webhook refused", extra={"code": refusal})
        return error_response(400, f"webhook refused: {refusal}", code="invalid_webhook")
    return Response(
        b'{"received":true,"state":"' + applied.state.encode() + b'"}',
        media_type="application/json",
    )
