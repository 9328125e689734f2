"""Two-factor authentication: the code page of a pending sign-in (`/login/2fa`), and in
Settings: set up (QR code and key, confirmed by a code), backup codes (shown once; new ones
after a step-up), turn off (after a step-up)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ...errors import GatewayError
from ...identity.service import CurrentSession, StepUp
from ..context import client_of, visitor_of, web_of
from ..forms import field_errors, read_form, retry_headers, safe_next
from ..guards import require_session
from ..qr import qr_svg
from ..signin import sign_in_response
from ..step_up import require_step_up, second_factor_code, step_up_needs
from ..templates import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_SETTINGS = "/settings#two-factor"


def _grouped(secret: str) -> str:
    """ "ABCD EFGH ...": easier to read and type into an app."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


# -- the second step of signing in -----------------------------------------------------------


def _pending(request: Request) -> CurrentSession | None:
    pending = visitor_of(request).pending
    return pending if pending is not None and pending.awaiting_second_factor else None


@router.get("/login/2fa")
async def second_factor_page(request: Request) -> Response:
    if visitor_of(request).user is not None:
        return RedirectResponse("/settings", 303)
    if _pending(request) is None:
        return RedirectResponse("/login", 303)
    next_url = safe_next(request.query_params.get("next"))
    return render(request, "login_2fa.html", next_url=next_url)


@router.post("/login/2fa")
async def second_factor(request: Request) -> Response:
    pending = _pending(request)
    if pending is None:
        return RedirectResponse("/login", 303)
    form = await read_form(request)
    next_url = safe_next(form.get("next"))
    backup = "backup_code" in form and not form.get("code", "").strip()
    try:
        signed_in = await web_of(request).identity.complete_second_factor(
            pending, second_factor_code(form), client_of(request)
        )
    except GatewayError as error:
        if error.code == "invalid_token":  # the pending sign-in was used meanwhile
            return RedirectResponse("/login", 303)
        errors = field_errors(error)
        if backup and "code" in errors:
            errors = {"backup_code": errors.pop("code"), **errors}
        return render(
            request,
            "login_2fa.html",
            status=error.http_status,
            headers=retry_headers(error),
            errors=errors,
            next_url=next_url,
            backup_open=backup,
        )
    return sign_in_response(request, signed_in, next_url)


# -- setting up ------------------------------------------------------------------------------


@router.post("/settings/2fa/setup")
async def begin_setup(request: Request) -> Response:
    current = require_session(request)
    await web_of(request).identity.two_factor.begin(current.user.id)
    return RedirectResponse("/settings/2fa", 303)


async def _setup_page(request: Request, *, status: int = 200, **values: Any) -> Response:
    current = require_session(request)
    web = web_of(request)
    enrolment = await web.identity.two_factor.enrolment(current.user.id)
    if enrolment is None:
        return RedirectResponse(_SETTINGS, 303)
    label = f"QR code to add {web.settings.site_name} to an authenticator app"
    return render(
        request,
        "two_factor_setup.html",
        status=status,
        qr=qr_svg(enrolment.uri, label=label),
        secret=_grouped(enrolment.secret),
        **values,
    )


@router.get("/settings/2fa")
async def setup_page(request: Request) -> Response:
    return await _setup_page(request)


@router.post("/settings/2fa/enable")
async def enable(request: Request) -> Response:
    current = require_session(request)
    form = await read_form(request)
    try:
        codes = await web_of(request).identity.two_factor.enable(
            current, form.get("code", ""), client_of(request)
        )
    except GatewayError as error:
        if error.code == "no_enrolment":
            return RedirectResponse(_SETTINGS, 303)
        return await _setup_page(
            request,
            status=error.http_status,
            headers=retry_headers(error),
            errors=field_errors(error),
        )
    return render(request, "backup_codes.html", codes=codes, first_time=True)


# -- changes behind a step-up ----------------------------------------------------------------


async def _confirm_page(
    request: Request, kind: str, *, status: int = 200, **values: Any
) -> Response:
    if require_session(request).user.totp_enabled_at is None:
        return RedirectResponse(_SETTINGS, 303)
    return render(
        request,
        "two_factor_confirm.html",
        status=status,
        kind=kind,
        step_up=await step_up_needs(request),
        **values,
    )


@router.get("/settings/2fa/disable")
async def disable_page(request: Request) -> Response:
    return await _confirm_page(request, "disable")


async def _stepped_up(request: Request, kind: str) -> StepUp | Response:
    """The step-up proof the confirm page's form gives, or that page again with why not."""
    require_session(request)
    form = await read_form(request)
    try:
        return await require_step_up(request, form)
    except GatewayError as error:
        return await _confirm_page(
            request,
            kind,
            status=error.http_status,
            headers=retry_headers(error),
            errors=field_errors(error),
        )


@router.post("/settings/2fa/disable")
async def disable(request: Request) -> Response:
    proof = await _stepped_up(request, "disable")
    if isinstance(proof, Response):
        return proof
    await web_of(request).identity.two_factor.disable(proof)
    return RedirectResponse("/settings?done=two_factor_off#two-factor", 303)


@router.get("/settings/2fa/backup-codes")
async def backup_codes_page(request: Request) -> Response:
    return await _confirm_page(request, "backup_codes")


@router.post("/settings/2fa/backup-codes")
async def new_backup_codes(request: Request) -> Response:
    proof = await _stepped_up(request, "backup_codes")
    if isinstance(proof, Response):
        return proof
    codes = await web_of(request).identity.two_factor.new_backup_codes(proof)
    return render(request, "backup_codes.html", codes=codes, first_time=False)
