"""Sign-in with GitHub and Google: start (a form button, CSRF-checked like every POST), the
provider's redirect back, the consent page of a new person, signing in again to confirm it is
you (a step-up's recent sign-in), and linking and unlinking in Settings. The rules are
`oauth.service`'s; every sign-in ends in `complete_sign_in`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from ...errors import GatewayError
from ...oauth.errors import OAuthError, SignInExpired
from ...oauth.providers import Provider
from ...oauth.service import ConsentNeeded, Linked, SignIn
from ..context import client_of, visitor_of, web_of
from ..forms import (
    field_errors,
    newsletter_box,
    newsletter_chosen,
    read_form,
    retry_headers,
    safe_next,
)
from ..guards import require_session
from ..signin import complete_sign_in
from ..sudo import sudo_or_confirm
from ..templates import render
from .settings import settings_with_errors

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _provider(request: Request, name: str) -> Provider:
    """A configured provider, or this installation has no such page."""
    provider = web_of(request).oauth.provider(name)
    if provider is None:
        raise HTTPException(404)
    return provider


def _refusal(request: Request, error: GatewayError) -> Response:
    title = error.title if isinstance(error, OAuthError) else "Sign-in did not work"
    action = error.action if isinstance(error, OAuthError) else ("Back to sign in", "/login")
    return render(
        request,
        "oauth_error.html",
        status=error.http_status,
        headers=retry_headers(error),
        title=title,
        message=error.message,
        action=action,
    )


async def _redirect_to(request: Request, provider: Provider, next_url: str, **kw: Any) -> Response:
    web = web_of(request)
    try:
        url = await web.oauth.start(
            provider, browser_id=visitor_of(request).browser_id, next_url=next_url, **kw
        )
    except GatewayError as error:
        return _refusal(request, error)
    return RedirectResponse(url, status_code=303)


# -- a new person's consent (before /auth/{name}, which would match its path) -----------------


async def _consent_page(request: Request, *, status: int = 200, **values: Any) -> Response:
    pending = await web_of(request).oauth.pending(visitor_of(request).browser_id)
    if pending is None:
        return _refusal(request, SignInExpired(None))
    box = newsletter_box(request, values.pop("newsletter", None))
    return render(request, "oauth_consent.html", status=status, pending=pending, **box, **values)


@router.get("/auth/consent")
async def consent_page(request: Request) -> Response:
    return await _consent_page(request)


@router.post("/auth/consent")
async def consent(request: Request) -> Response:
    form = await read_form(request)
    age, terms = form.get("age_16_plus") == "yes", form.get("accept_terms") == "yes"
    newsletter = newsletter_chosen(request, form)
    try:
        user, _ = await web_of(request).oauth.sign_up(
            visitor_of(request).browser_id,
            age_16_plus=age,
            accept_terms=terms,
            newsletter=newsletter,
            client=client_of(request),
        )
    except OAuthError as error:
        return _refusal(request, error)
    except GatewayError as error:
        # The page's fields are the two boxes; anything else is about the form as a whole.
        errors = {
            (name if name in ("age_16_plus", "accept_terms") else "form"): message
            for name, message in field_errors(error).items()
        }
        return await _consent_page(
            request,
            status=error.http_status,
            headers=retry_headers(error),
            errors=errors,
            age_16_plus=age,
            accept_terms=terms,
            newsletter=newsletter,
        )
    done = "welcome_verified" if user.email_verified_at is not None else "welcome"
    return await complete_sign_in(request, user, f"/settings?done={done}")


@router.post("/auth/consent/cancel")
async def cancel_consent(request: Request) -> Response:
    """Leave without an account: the pending sign-up (the provider's email and id for this
    person) is deleted at once."""
    await web_of(request).oauth.cancel_sign_up(visitor_of(request).browser_id)
    return RedirectResponse("/login", status_code=303)


# -- signing in ------------------------------------------------------------------------------


@router.get("/auth/{name}")
async def start_page(request: Request, name: str) -> Response:
    """Signing in starts with the button on the sign-in page (a POST)."""
    _provider(request, name)
    return RedirectResponse("/login", status_code=303)


@router.post("/auth/{name}")
async def start(request: Request, name: str) -> Response:
    provider = _provider(request, name)
    if visitor_of(request).user is not None:
        return RedirectResponse("/settings", status_code=303)
    form = await read_form(request)
    return await _redirect_to(request, provider, safe_next(form.get("next")))


@router.get("/auth/{name}/callback")
async def callback(request: Request, name: str) -> Response:
    provider = _provider(request, name)
    web = web_of(request)
    visitor = visitor_of(request)
    try:
        outcome = await web.oauth.finish(
            provider,
            dict(request.query_params),
            browser_id=visitor.browser_id,
            current=visitor.user,
        )
    except GatewayError as error:
        return _refusal(request, error)
    if isinstance(outcome, SignIn):
        return await complete_sign_in(request, outcome.user, outcome.next_url)
    if isinstance(outcome, Linked):
        return RedirectResponse("/settings?done=identity_linked#sign-in-methods", status_code=303)
    assert isinstance(outcome, ConsentNeeded)
    return RedirectResponse("/auth/consent", status_code=303)


@router.post("/auth/{name}/reauth")
async def sign_in_again(request: Request, name: str) -> Response:
    """A signed-in user without a password confirms it is them (a step-up) by signing in
    again with a provider linked to them: a new session, then back to the page (`next`)."""
    current = require_session(request)
    provider = _provider(request, name)
    form = await read_form(request)
    next_url = safe_next(form.get("next"))
    return await _redirect_to(request, provider, next_url, user=current.user, reauth=True)


# -- settings: link and unlink -----------------------------------------------------------------


@router.post("/settings/identities/{name}/link")
async def link(request: Request, name: str) -> Response:
    """Another identity to sign in with: after a recent authentication (`web.sudo`), since
    whoever it belongs to can sign in to this account from then on."""
    current = require_session(request)
    provider = _provider(request, name)
    form = await read_form(request)
    doing = f"link a {provider.label} account to sign in with"
    asked = await sudo_or_confirm(request, form.items(), back="/settings", doing=doing)
    if asked is not None:
        return asked
    return await _redirect_to(request, provider, "/settings", user=current.user)


@router.post("/settings/identities/{identity_id}/unlink")
async def unlink(request: Request, identity_id: str) -> Response:
    current = require_session(request)
    try:
        label = await web_of(request).oauth.unlink(current.user, identity_id)
    except OAuthError as error:
        return await settings_with_errors(
            request, status=error.http_status, errors={"identities": error.message}
        )
    if label is None:
        return RedirectResponse("/settings#sign-in-methods", status_code=303)
    return RedirectResponse("/settings?done=identity_unlinked#sign-in-methods", status_code=303)
