"""Changing the email address: Settings → Profile → "Change email address" (behind a step-up)
mails a link to the new address and a notice to the current one; the link makes the change."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ...errors import GatewayError
from ...identity.tokens import CHANGE_EMAIL
from ..context import client_of, visitor_of, web_of
from ..emailed_links import link_page
from ..forms import field_errors, read_form, retry_headers
from ..guards import require_session
from ..signin import sign_in_response, signed_out_response
from ..step_up import require_step_up, step_up_needs
from ..templates import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


async def _change_page(request: Request, *, status: int = 200, **values: Any) -> Response:
    values.setdefault("email", "")
    step_up = await step_up_needs(request)
    return render(request, "email_change.html", status=status, step_up=step_up, **values)


@router.get("/settings/email")
async def change_page(request: Request) -> Response:
    require_session(request)
    return await _change_page(request)


@router.post("/settings/email")
async def change(request: Request) -> Response:
    current = require_session(request)
    form = await read_form(request)
    identity = web_of(request).identity
    new_email = form.get("email", "")
    try:
        # The address first: a typo must not cost a code from the app.
        await identity.check_new_email(current.user, new_email)
        proof = await require_step_up(request, form)
        await identity.request_email_change(proof, current, new_email)
    except GatewayError as error:
        return await _change_page(
            request,
            status=error.http_status,
            headers=retry_headers(error),
            errors=field_errors(error),
            email=new_email,
        )
    return RedirectResponse("/settings?done=email_change_sent#profile", 303)


@router.get("/settings/email/confirm")
async def confirm_page(request: Request) -> Response:
    return await link_page(request, "email_change_confirm.html", CHANGE_EMAIL)


@router.post("/settings/email/confirm")
async def confirm(request: Request) -> Response:
    form = await read_form(request)
    try:
        signed_in = await web_of(request).identity.confirm_email_change(
            form.get("token", ""), current=visitor_of(request).session, client=client_of(request)
        )
    except GatewayError as error:
        taken = error.code == "email_taken"
        return render(
            request,
            "email_change_confirm.html",
            status=error.http_status if taken else 400,
            token="",
            valid=False,
            email="",
            taken=taken,
        )
    if signed_in is not None:
        return sign_in_response(request, signed_in, "/settings?done=email_changed#profile")
    if visitor_of(request).session is not None:  # signed in as someone else: left alone
        return RedirectResponse("/settings?done=email_changed_elsewhere", 303)
    return signed_out_response(request, "/login?done=email_changed_sign_in")
