"""The page an emailed link opens (verify an address, confirm a new one): it shows a button, and
only its POST uses the link's token, because mail scanners open links too."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from ..identity.tokens import Purpose
from .context import web_of
from .templates import render

__all__ = ["link_page"]


async def link_page(request: Request, template: str, purpose: Purpose) -> Response:
    """`template` with the link's token and the address it is for; 400 when the link is not
    (or no longer) valid for `purpose`."""
    token = request.query_params.get("token", "")
    email = await web_of(request).identity.token_email(token, purpose)
    return render(
        request,
        template,
        status=200 if email else 400,
        token=token,
        valid=email is not None,
        email=email or "",
    )
