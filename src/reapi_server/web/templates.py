"""Rendering pages: Jinja2 with autoescaping, one base layout, values every page needs."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from .context import visitor_of, web_of
from .navigation import navigation

__all__ = ["NOTICES", "render"]

#: Messages shown after a redirect (`?done=<key>`): fixed texts, never echoed input.
NOTICES: Mapping[str, str] = {
    "welcome": "Your account is ready. We sent you an email: open its link to verify your address.",
    # Said where the person lands (Settings), which shows nothing of the next step.
    "verified": "Your email address is verified. Next: create an API key on the Keys page.",
    "verification_sent": "We sent you a new verification link.",
    "signed_out": "You are signed out.",
    "password_changed": "Your password is changed. Your other sessions have been signed out.",
    "password_reset": "Your password is changed. Sign in with it.",
    "session_ended": "That session is signed out.",
    "sessions_ended": "Every other session is signed out.",
    "time_zone_saved": "Your time zone is saved.",
    "output_deleted": "The output is deleted. Its URL no longer works.",
    "outputs_deleted": "Every stored output is deleted. Their URLs no longer work.",
    "newsletter_on": "You will receive the newsletter. Every issue has a link to unsubscribe.",
    "newsletter_off": "You will not receive the newsletter.",
    "two_factor_off": "Two-factor authentication is off. Signing in takes your password only.",
    "email_change_sent": "We sent a link to your new address. Your email changes when you open "
    "it (within 24 hours); until then, keep using the current one.",
    "email_changed": "Your email address is changed. Your other sessions have been signed out.",
    "email_changed_elsewhere": "That account's email address is changed.",
    "email_changed_sign_in": "Your email address is changed. Sign in with the new one.",
    "device_alerts_saved": "Your notification settings are saved.",
    "welcome_verified": "Your account is ready.",
    "identity_linked": "Linked. You can sign in with it from now on.",
    "identity_unlinked": "Unlinked. It no longer signs you in.",
    "account_deleted": "Your account is deleted. We sent a confirmation to your email address.",
    "credits_adjusted": "The credits are adjusted; the ledger and the audit log say so.",
    "account_disabled": "The account is disabled: its keys are refused.",
    "account_enabled": "The account is enabled again: its keys work.",
    "user_deleted": "The person is deleted: keys revoked, sessions ended, their account's data "
    "deleted (payment records kept, detached).",
    "promo_created": "The promotion code is created. People can redeem it on their billing page.",
    "promo_disabled": "The promotion code is withdrawn: it is refused from now on.",
    "promo_redeemed": "The promotion code is redeemed: its credits are in your balance.",
    "auto_top_up_saved": "Your automatic top-up settings are saved.",
    "auto_top_up_off": "Automatic top-up is off.",
    "card_removed": "Your saved card is removed: Stripe no longer keeps it for this account, and "
    "automatic top-up is off.",
    "no_card": "No card is saved.",
    "alerts_saved": "Your low-balance alerts are saved.",
    "key_alerts_saved": "Your key spend alerts are saved.",
}


def when(timestamp: float | None) -> str:
    """A time as pages show it (UTC): `05 Dec 2026, 09:30 UTC`; an em dash for none."""
    if timestamp is None:
        return "\u2014"
    return time.strftime("%d %b %Y, %H:%M UTC", time.gmtime(timestamp))


def number(value: int | float) -> str:
    """Thousands separated: `1,500`."""
    return f"{value:,}"


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("reapi_server.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = when
    environment.filters["number"] = number
    return environment


@cache
def static_version() -> str:
    """Changes when the stylesheet does, so browsers fetch the new one."""
    css = resources.files("reapi_server.web").joinpath("static/app.css").read_bytes()
    return hashlib.sha256(css).hexdigest()[:12]


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    web = web_of(request)
    visitor = visitor_of(request)
    done = request.query_params.get("done", "")
    page = {
        "site_name": web.settings.site_name,
        "user": visitor.user,
        "nav": navigation(
            visitor.user,
            request.url.path,
            docs_url=web.settings.docs_url,
            current=values.pop("nav_current", None),
        ),
        "csrf_token": visitor.csrf_token(web.csrf_key),
        "static_version": static_version(),
        "notice": NOTICES.get(done),
        "errors": {},
        "path": request.url.path,
        "embeds": web.embeds,
        "sign_in_providers": list(web.oauth.providers.values()),
        "docs_url": web.settings.docs_url,
        **values,
    }
    html = _environment().get_template(template).render(page)
    return HTMLResponse(html, status_code=status, headers=dict(headers or {}))
