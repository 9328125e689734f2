"""Reading the web half's forms and turning refusals into messages beside their fields."""

from __future__ import annotations

from starlette.requests import Request

from ..errors import GatewayError
from ..identity.errors import FormInvalid
from ..identity.passwords import MIN_LENGTH, PASSPHRASE_WORDS

__all__ = ["PASSWORD_HINT", "field_errors", "read_form", "retry_headers", "safe_next"]

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
