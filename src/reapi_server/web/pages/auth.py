"""Sign-up, sign-in, sign-out, email verification and password reset."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from starlette.responses import RedirectResponse, Response

from ...errors import GatewayError
from ...identity.service import SignUpForm
from ...identity.tokens import RESET_PASSWORD, VERIFY_EMAIL
from ..context import client_of, visitor_of, web_of
from ..emailed_links import link_page
from ..forms import (
    PASSWORD_HINT,
    field_errors,
    newsletter_box,
    newsletter_chosen,
    read_form,
    retry_headers,
    safe_next,
)
from ..signin import complete_sign_in, sign_in_response, signed_out_response
from ..templates import render
from ..turnstile import RESPONSE_FIELD

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _home_if_signed_in(request: Request) -> Response | None:
    if visitor_of(request).user is not None:
        return RedirectResponse("/settings", status_code=303)
    return None


async def _bot_check(request: Request, form: dict[str, str], action: str) -> None:
    """Turnstile's verdict on this form, when the operator enabled it: before anything else."""
    turnstile = web_of(request).turnstile
    if turnstile is not None:
        token = form.get(RESPONSE_FIELD, "")
        await turnstile.verify(token, remote_ip=client_of(request).address, action=action)


# -- sign-up ---------------------------------------------------------------------------------


def _signup_page(request: Request, *, status: int = 200, **values: Any) -> Response:
    values.setdefault("email", "")
    box = newsletter_box(request, values.pop("newsletter", None))
    return render(
        request, "signup.html", status=status, password_hint=PASSWORD_HINT, **box, **values
    )


@router.get("/signup")
async def signup_page(request: Request) -> Response:
    return _home_if_signed_in(request) or _signup_page(request)


@router.post("/signup")
async def signup(request: Request) -> Response:
    form = await read_form(request)
    web = web_of(request)
    sign_up = SignUpForm(
        email=form.get("email", ""),
        password=form.get("password", ""),
        age_16_plus=form.get("age_16_plus") == "yes",
        accept_terms=form.get("accept_terms") == "yes",
        newsletter=newsletter_chosen(request, form),
    )
    try:
        await _bot_check(request, form, "signup")
        signed_in = await web.identity.sign_up(
            sign_up, client_of(request), replacing=visitor_of(request).session_cookie
        )
    except GatewayError as error:
        return _signup_page(
            request,
            status=error.http_status,
            headers=retry_headers(error),
            errors=field_errors(error),
            email=sign_up.email,
            age_16_plus=sign_up.age_16_plus,
            accept_terms=sign_up.accept_terms,
            newsletter=sign_up.newsletter,
        )
    return sign_in_response(request, signed_in, "/settings?done=welcome")


# -- sign-in and out -------------------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request) -> Response:
    next_url = safe_next(request.query_params.get("next"))
    return _home_if_signed_in(request) or render(request, "login.html", email="", next_url=next_url)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    web = web_of(request)
    email = form.get("email", "")
    next_url = safe_next(form.get("next"))
    try:
        user = await web.identity.authenticate(email, form.get("password", ""), client_of(request))
    except GatewayError as error:
        return render(
            request,
            "login.html",
            status=error.http_status,
            headers=retry_headers(error),
            errors=field_errors(error),
            email=email,
            next_url=next_url,
        )
    return await complete_sign_in(request, user, next_url)


@router.post("/logout")
async def logout(request: Request) -> Response:
    visitor = visitor_of(request)
    if visitor.session_cookie is not None:
        await web_of(request).identity.sign_out(visitor.session_cookie)
    return signed_out_response(request, "/login?done=signed_out")


# -- email verification ----------------------------------------------------------------------


@router.get("/verify")
async def verify_page(request: Request) -> Response:
    return await link_page(request, "verify.html", VERIFY_EMAIL)


@router.post("/verify")
async def verify(request: Request) -> Response:
    form = await read_form(request)
    try:
        await web_of(request).identity.verify_email(form.get("token", ""))
    except GatewayError:
        return render(request, "verify.html", status=400, token="", valid=False, email="")
    signed_in = visitor_of(request).user is not None
    return RedirectResponse("/settings?done=verified" if signed_in else "/login?done=verified", 303)


# -- password reset --------------------------------------------------------------------------


@router.get("/reset")
async def reset_page(request: Request) -> Response:
    return render(request, "reset_request.html", email="", sent=False)


@router.post("/reset")
async def reset_request(request: Request, background: BackgroundTasks) -> Response:
    """The same answer, as fast, whether the address has an account or not: the lookup and
    the mail happen after the response has been sent."""
    form = await read_form(request)
    web = web_of(request)
    email = form.get("email", "")
    try:
        await _bot_check(request, form, "reset")
        normalised = await web.identity.accept_reset_request(email, client_of(request))
    except GatewayError as error:
        return render(
            request,
            "reset_request.html",
            status=error.http_status,
            headers=retry_headers(error),
            errors=field_errors(error),
            email=email,
            sent=False,
        )
    background.add_task(web.identity.send_password_reset, normalised)
    return render(request, "reset_request.html", email="", sent=True)


def _reset_form(request: Request, token: str, *, status: int = 200, **values: Any) -> Response:
    return render(
        request,
        "reset_confirm.html",
        status=status,
        token=token,
        valid=True,
        password_hint=PASSWORD_HINT,
        **values,
    )


@router.get("/reset/confirm")
async def reset_confirm_page(request: Request) -> Response:
    token = request.query_params.get("token", "")
    if await web_of(request).identity.token_email(token, RESET_PASSWORD) is None:
        return render(request, "reset_confirm.html", status=400, token="", valid=False)
    return _reset_form(request, token)


@router.post("/reset/confirm")
async def reset_confirm(request: Request) -> Response:
    form = await read_form(request)
    token = form.get("token", "")
    try:
        signed_in = await web_of(request).identity.reset_password(
            token,
            form.get("password", ""),
            current=visitor_of(request).session,
            client=client_of(request),
        )
    except GatewayError as error:
        if error.code == "invalid_token":
            return render(request, "reset_confirm.html", status=400, token="", valid=False)
        return _reset_form(request, token, status=error.http_status, errors=field_errors(error))
    if signed_in is not None:
        return sign_in_response(request, signed_in, "/settings?done=password_changed")
    return signed_out_response(request, "/login?done=password_reset")
