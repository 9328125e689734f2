"""Reading the web half's forms, turning refusals into messages beside their fields, and what
more than one form shows alike (the newsletter box of the sign-up forms)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ..errors import GatewayError
from ..identity.errors import FormInvalid
from ..identity.passwords import MIN_LENGTH, PASSPHRASE_WORDS
from .context import web_of

__all__ = [
    "PASSWORD_HINT",
    "field_errors",
    "newsletter_box",
    "newsletter_chosen",
    "read_form",
    "retry_headers",
    "safe_next",
]

PASSWORD_HINT = (
    f"At least {MIN_LENGTH} characters, or a passphrase of {PASSPHRASE_WORDS} or more words."
)


async def read_form(request: Request) -> dict[str, str]:
    """The form's text fields (files are refused: no form here takes one)."""
    form = await request.form(max_files=0, max_fields=64)
    return {name: value for name, value in form.items() if isinstance(value, str)}


def field_errors(error: GatewayError) -> dict[str, str]:
    """Field name → message; a refusal about no field in particular is under "form"."""
    if isinstance(error, FormInvalid):
        return dict(error.errors)
    return {error.param or "form": error.message}


def retry_headers(error: GatewayError) -> dict[str, str]:
    if error.retry_after is None:
        return {}
    return {"retry-after": str(max(int(error.retry_after + 0.999), 1))}


def safe_next(value: str | None, default: str = "/settings") -> str:
    """A local path to go to after signing in; anything else (another site, a scheme-relative
    `//host`) is replaced by `default`."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


def newsletter_box(request: Request, chosen: bool | None = None) -> dict[str, Any]:
    """The newsletter box of a sign-up form (the sign-up page, a provider's consent page), as
    the operator configured it: none with `off`, ticked at first only with `opt_out`."""
    default = web_of(request).settings.newsletter_default
    return {
        "newsletter_offered": default != "off",
        "newsletter": default == "opt_out" if chosen is None else chosen,
    }


def newsletter_chosen(request: Request, form: dict[str, str]) -> bool:
    """The box was ticked, on an installation that has a newsletter."""
    return form.get("newsletter") == "yes" and web_of(request).subscriptions.offered
